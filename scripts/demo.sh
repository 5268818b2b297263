#!/bin/sh
# demo.sh - run suki on its embedded defaults: install what is missing,
# build, start a throwaway redis-server on a private unix socket, push the
# example events, and run sukid in the foreground with the example
# configuration and the spool transport. Reminders appear as .eml files in
# _demo/spool/. Ctrl-C stops sukid and Redis.
#
# SUKI_DEMO_HTTP (default 127.0.0.1:9187, the port README's curl uses) is
# where /metrics and /healthz listen.
set -eu
cd "$(dirname "$0")/.."
TOP=$(pwd)
HTTP=${SUKI_DEMO_HTTP:-127.0.0.1:9187}
sh scripts/deps.sh
[ -x configure ] || autoreconf -fi
mkdir -p _build/demo
if [ ! -f _build/demo/Makefile ]; then
    (cd _build/demo && "$TOP/configure" CFLAGS="-O2 -g" >configure.out 2>&1) ||
        { cat _build/demo/configure.out; exit 1; }
fi
make -C _build/demo -j"$(nproc 2>/dev/null || echo 2)" >_build/demo/build.out 2>&1 ||
    { cat _build/demo/build.out; exit 1; }

DEMO=$TOP/_demo
RUN=$(mktemp -d /tmp/suki-demo.XXXXXX)
mkdir -p "$DEMO/spool"
REDIS_PID=
cleanup() {
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null
    rm -rf "$RUN"
}
trap cleanup EXIT INT TERM

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
    -e "s|/usr/lib/suki/plugins|$TOP/_build/demo/plugins/.libs|" \
    -e "s|/etc/suki/templates|$TOP/conf/templates|" \
    -e "s|spool:///var/lib/suki/spool|spool://$DEMO/spool|" \
    -e "s|listen = \"127.0.0.1:9187\"|listen = \"$HTTP\"|" \
    conf/sukid.conf > "$DEMO/sukid.conf"
_build/demo/sukid -t -c "$DEMO/sukid.conf"

# Example events, with times relative to now so that some reminders are due
# at once and others later; pushed the way a producer would, with redis-cli.
d() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
sed -e "s|@NOW@|$(d now)|g" \
    -e "s|@HOURS_AGO_24_PLUS_20S@|$(d '24 hours ago 20 seconds')|g" \
    -e "s|@DAYS_AGO_14@|$(d '14 days ago')|g" \
    -e "s|@DAYS_AGO_4@|$(d '4 days ago')|g" \
    -e "s|@DAYS_AHEAD_3@|$(d '3 days')|g" \
    -e "s|@DATE_IN_100_DAYS@|$(date -u -d '100 days' +%Y-%m-%d)|g" \
    conf/examples/events.jsonl |
while IFS= read -r ev; do
    redis-cli -s "$RUN/redis.sock" XADD suki:events '*' event "$ev" >/dev/null
done
echo "pushed $(wc -l < conf/examples/events.jsonl) example events (one of them deliberately bad)"
echo "reminders go to $DEMO/spool/; in another shell try:"
echo "  _build/demo/sukictl -c $DEMO/sukid.conf status"
echo "  _build/demo/sukictl -c $DEMO/sukid.conf jobs"
echo "  _build/demo/sukictl -c $DEMO/sukid.conf dead list"
echo "  curl -s $HTTP/metrics"
echo "Ctrl-C stops sukid and Redis."
_build/demo/sukid -c "$DEMO/sukid.conf" || true
