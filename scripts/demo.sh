#!/bin/sh
# demo.sh - run suki on its embedded defaults: install what is missing,
# build, start a throwaway redis-server on a private unix socket, push the
# example events, and run sukid in the foreground with the example
# configuration and the spool transport. Reminders appear as .eml files in
# _demo/spool/. Ctrl-C stops sukid and Redis.
#
# Environment: SUKI_DEMO_HTTP (default 127.0.0.1:9187, the port README's
# curl uses) is where /metrics and /healthz listen; SUKI_DEMO_DIR (default
# _demo) holds the config and the spool; SUKI_DEMO_BUILD names a build
# directory to use as it is (no package install, no build), as the test of
# the demo does.
set -eu
cd "$(dirname "$0")/.."
TOP=$(pwd)
if [ -n "${SUKI_DEMO_BUILD:-}" ]; then
    BUILD=$SUKI_DEMO_BUILD
else
    BUILD=$TOP/_build/demo
    sh scripts/deps.sh
    [ -x configure ] || autoreconf -fi
    mkdir -p "$BUILD"
    if [ ! -f "$BUILD/Makefile" ]; then
        (cd "$BUILD" && "$TOP/configure" CFLAGS="-O2 -g" >configure.out 2>&1) ||
            { cat "$BUILD/configure.out"; exit 1; }
    fi
    make -C "$BUILD" -j"$(nproc 2>/dev/null || echo 2)" >"$BUILD/build.out" 2>&1 ||
        { cat "$BUILD/build.out"; exit 1; }
fi
HTTP=${SUKI_DEMO_HTTP:-127.0.0.1:9187}

DEMO=${SUKI_DEMO_DIR:-$TOP/_demo}
RUN=$(mktemp -d /tmp/suki-demo.XXXXXX)
mkdir -p "$DEMO/spool"
# what is in the spool is this run's mail
rm -f "$DEMO"/spool/*.eml
REDIS_PID=
cleanup() {
    if [ -n "$REDIS_PID" ]; then
        kill "$REDIS_PID" 2>/dev/null || true
        # Redis may still be writing into $RUN when it is removed
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

redis-server --port 0 --unixsocket "$RUN/redis.sock" --unixsocketperm 700 \
    --save '' --appendonly no --dir "$RUN" --logfile "$RUN/redis.log" &
REDIS_PID=$!
n=50
until redis-cli -s "$RUN/redis.sock" ping >/dev/null 2>&1; do
    n=$((n - 1)); [ "$n" -gt 0 ] || { echo "redis did not start"; exit 1; }
    sleep 0.1
done

# The example configuration, pointed at this build, this Redis and a spool
# directory you can look into.
sed -e "s|redis://127.0.0.1:6379/0|unix://$RUN/redis.sock|" \
    -e "s|/usr/lib/suki/plugins|$BUILD/plugins/.libs|" \
    -e "s|/etc/suki/templates|$TOP/conf/templates|" \
    -e "s|spool:///var/lib/suki/spool|spool://$DEMO/spool|" \
    -e "s|listen = \"127.0.0.1:9187\"|listen = \"$HTTP\"|" \
    conf/sukid.conf > "$DEMO/sukid.conf"
"$BUILD/sukid" -t -c "$DEMO/sukid.conf"

# Example events, with times derived from now, so that the same reminders
# are due at once whatever the hour or the weekday: several rules send at a
# local time of day ("at_local") or count business days, so a fixed offset
# from now would put them tonight or on Monday. Local means the example
# clients' zone.
TZL=Asia/Manila
d() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
# local DATE HH:MM -> RFC 3339 UTC of that local time
local_at() { d "TZ=\"$TZL\" $1 $2"; }
day_before() { date -d "$1 12:00 1 day ago" +%Y-%m-%d; }
day_after() { date -d "$1 12:00 1 day" +%Y-%m-%d; }
weekend() { [ "$(date -d "$1 12:00" +%u)" -gt 5 ]; }
TODAY=$(TZ=$TZL date +%Y-%m-%d)
NOW_HM=$(TZ=$TZL date +%H%M)
# latest HH:MM -> the latest local date whose HH:MM is not after now
latest() {
    _d=$TODAY
    [ "$NOW_HM" -lt "$(echo "$1" | tr -d :)" ] && _d=$(day_before "$_d")
    echo "$_d"
}
# referral-request: 14 days after the order, at 10:00 -> the latest 10:00
ORDER_AT=$(local_at "$(date -d "$(latest 10:00) 12:00 14 days ago" +%Y-%m-%d)" 10:00)
# follow-up-after-meeting: 3 business days after the meeting, at 09:00, and
# dropped when more than max_lateness (2d) late. The latest working-day
# 09:00 is within that (47 h, to keep a margin) except from Sunday about
# 08:00 to Monday 09:00, when the follow-up waits for Monday instead
# (sukictl jobs shows it).
FU=$(latest 09:00)
while weekend "$FU"; do FU=$(day_before "$FU"); done
FU_NOW=yes
if [ $(($(date +%s) - $(date -d "$(local_at "$FU" 09:00)" +%s))) -gt 169200 ]; then
    FU=$TODAY
    [ "$NOW_HM" -lt 900 ] || FU=$(day_after "$FU")
    while weekend "$FU"; do FU=$(day_after "$FU"); done
    FU_NOW=
fi
MEET=$FU
n=3
while [ $n -gt 0 ]; do
    MEET=$(day_before "$MEET")
    weekend "$MEET" || n=$((n - 1))
done
MEETING_AT=$(local_at "$MEET" 11:00)
sed -e "s|@NOW@|$(d now)|g" \
    -e "s|@COMPLAINT_AT@|$(d '24 hours ago 5 seconds')|g" \
    -e "s|@ORDER_AT@|$ORDER_AT|g" \
    -e "s|@MEETING_AT@|$MEETING_AT|g" \
    -e "s|@DAYS_AHEAD_3@|$(d '3 days')|g" \
    -e "s|@DATE_IN_100_DAYS@|$(date -u -d '100 days' +%Y-%m-%d)|g" \
    conf/examples/events.jsonl |
while IFS= read -r ev; do
    redis-cli -s "$RUN/redis.sock" XADD suki:events '*' event "$ev" >/dev/null
done
echo "pushed $(wc -l < conf/examples/events.jsonl) example events (one of them deliberately bad)"
# What to expect; tests/integration/demo_anytime.sh holds the demo to it.
if [ -n "$FU_NOW" ]; then
    echo "due now, in $DEMO/spool/ within seconds: 4 messages (a referral request, a"
    echo "  meeting follow-up, a complaint escalation to two people after 5 s)"
else
    echo "due now, in $DEMO/spool/ within seconds: 3 messages (a referral request, a"
    echo "  complaint escalation to two people after 5 s); the meeting follow-up"
    echo "  waits for the next working day, 09:00 $TZL"
fi
echo "due later (sukictl jobs): renewal alerts, meeting preparation"
echo "in another shell try:"
echo "  $BUILD/sukictl -c $DEMO/sukid.conf status"
echo "  $BUILD/sukictl -c $DEMO/sukid.conf jobs"
echo "  $BUILD/sukictl -c $DEMO/sukid.conf dead list"
echo "  curl -s $HTTP/metrics"
echo "Ctrl-C stops sukid and Redis."
"$BUILD/sukid" -c "$DEMO/sukid.conf" || true
