#!/bin/sh
# demo_anytime.sh - scripts/demo.sh (on this build) shows what it promises
# whatever the time of day or the weekday: run with the clock at 03:00 and
# 14:00 Asia/Manila on a Wednesday, 14:00 on a Sunday and 08:00 on a
# Monday, the spool gets the number of messages the demo announced (and no
# more), its HTTP listener answers where it says, and by default that is
# the port README's curl uses.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli curl "$SUKID" "$SUKICTL"
# The demo, its Redis and its sukid all run on a clock moved to the time
# wanted (Redis's clock decides when a job is due, so it must move too).
SHIFT_LIB=$top_builddir/tests/chaos/.libs/clockshift.so
[ -f "$SHIFT_LIB" ] || fail "$SHIFT_LIB not built"

# The documented port: README's curl, the shipped config, the demo default.
readme=$(grep -o 'curl -s 127.0.0.1:[0-9]*/metrics' "$top_srcdir/README.md" | head -1)
[ -n "$readme" ] || fail "no curl .../metrics line in README"
port=$(echo "$readme" | sed 's|.*:\([0-9]*\)/metrics|\1|')
grep -q "SUKI_DEMO_HTTP:-127.0.0.1:$port}" "$top_srcdir/scripts/demo.sh" ||
    fail "demo.sh does not listen on README's port $port by default"
grep -q "listen = \"127.0.0.1:$port\"" "$top_srcdir/conf/sukid.conf" ||
    fail "conf/sukid.conf does not listen on README's port $port"
ok "demo, shipped config and README agree on port $port"

# the shim is preloaded before the sanitizer runtime
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
export ASAN_OPTIONS
# timeout leads its own process group: the demo, Redis and sukid; killed
# whole when the test ends early.
DEMO_PG=
trap 'rc=$?; [ -n "$DEMO_PG" ] && kill -9 -"$DEMO_PG" 2>/dev/null; (exit $rc); lib_cleanup' EXIT

# run_at 'DATE HH:MM' NAME - the demo with the clock at that Manila time.
run_at() {
    stamp=$(date -u -d "TZ=\"Asia/Manila\" $1" '+%Y-%m-%d %H:%M:%S')
    dir=$T/$2
    log=$T/demo-$2.log
    http=127.0.0.1:$(free_port)
    mkdir -p "$dir"
    shift_s=$(($(date -u -d "$stamp" +%s) - $(date +%s)))
    SUKI_DEMO_BUILD=$top_builddir SUKI_DEMO_DIR=$dir SUKI_DEMO_HTTP=$http \
        LD_PRELOAD=$SHIFT_LIB SUKI_CLOCK_SHIFT=$shift_s TZ=UTC timeout 120 \
        sh "$top_srcdir/scripts/demo.sh" >"$log" 2>&1 &
    pid=$!
    DEMO_PG=$pid
    # (wait_for evals its condition: no positional parameters in it)
    wait_for 30 'grep -q "^due now" "$log"' ||
        fail "$2: demo did not start: $(cat "$log")"
    want=$(sed -n 's/^due now.*: \([0-9]*\) messages.*/\1/p' "$log")
    [ "${want:-0}" -ge 3 ] || fail "$2: the demo promises ${want:-no} messages"
    wait_for 30 '[ "$(ls "$dir"/spool/*.eml 2>/dev/null | wc -l)" -ge "$want" ]' ||
        fail "$2 ($1 Manila): $(ls "$dir"/spool | wc -l) messages, want $want"
    curl -sf "$http/metrics" | grep -q '^suki_jobs_fired_total' ||
        fail "$2: no metrics on $http"
    sleep 2 # nothing else is due now
    got=$(ls "$dir"/spool/*.eml | wc -l)
    [ "$got" = "$want" ] || fail "$2: $got messages, want $want"
    jobs=$(LD_PRELOAD=$SHIFT_LIB SUKI_CLOCK_SHIFT=$shift_s "$SUKICTL" -c "$dir/sukid.conf" jobs)
    kill -TERM $pid
    wait $pid
    DEMO_PG=
    echo "$jobs" | grep -q 'contract-renewal' || fail "$2: no renewal alert pending"
    JOBS=$jobs
    ok "$2 ($1 Asia/Manila): the $want messages promised"
}

wed=$(date -d 'next wednesday' +%Y-%m-%d)
sun=$(date -d 'next sunday' +%Y-%m-%d)
run_at "$wed 03:00" night
grep -q 'meeting follow-up' "$T/demo-night.log" || fail "night: follow-up not promised"
run_at "$wed 14:00" day
grep -q 'meeting follow-up' "$T/demo-day.log" || fail "day: follow-up not promised"
# From Sunday morning to Monday 09:00 the last working-day 09:00 is more
# than the rule's max_lateness ago: the follow-up waits for Monday 09:00.
mon=$(date -d "$sun 12:00 1 day" +%Y-%m-%d)
run_at "$sun 14:00" sunday
echo "$JOBS" | grep -q "^${mon}T01:00:00Z *follow-up-after-meeting" ||
    fail "sunday: the follow-up is not pending for Monday 09:00: $JOBS"
run_at "$mon 08:00" monday
echo "$JOBS" | grep -q "^${mon}T01:00:00Z *follow-up-after-meeting" ||
    fail "monday 08:00: the follow-up is not pending for 09:00: $JOBS"
ok "Sunday and early Monday: the follow-up waits for Monday 09:00"
