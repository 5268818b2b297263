#!/bin/sh
# bench_intake.sh - intake throughput: push 200,000 events first, then time
# the drain by one and by two sukid (events/s), sample sukid's memory during
# the drain (VmHWM), and measure the Redis XADD ceiling with
# redis-benchmark on the same server. Prints figures; asserts nothing.
#
#   top_srcdir=/work/main top_builddir=/work/build-bench \
#       sh bench/bench_intake.sh [N]
#
# Use a build without sanitizers (configure CFLAGS=-O2).
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli redis-benchmark "$SUKID"
N=${1:-200000}

start_redis --appendonly no
CONF=$T/sukid.conf
# RULES=1 loads the shipped rules (conf/sukid.conf) and plugins, so every
# generated meeting.held event (each for a new client) also schedules its
# follow-up job: the worst case. MIX=1 (implies RULES=1) pushes a CRM's day
# instead: DESIGN's event types in turn for 19,997 clients, so profiles
# exist, some events schedule (up to 4 renewal alerts), some cancel, some
# only update the profile.
EXTRA=
GEN=
if [ "${MIX:-0}" = 1 ]; then
    RULES=1
    GEN="--mix 19997"
fi
if [ "${RULES:-0}" = 1 ]; then
    PLUGINS_DIR=$top_builddir/plugins/.libs
    TEMPLATES_DIR=$top_srcdir/conf/templates
    EXTRA=$(awk '/^roles = \{/,/^\};/; /^rules = \(/,/^\);/' \
        "$top_srcdir/conf/sukid.conf")
fi
LOG_LEVEL=notice write_conf "$CONF" "$EXTRA"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# drain K: push N events, start K daemons, wait until all are applied.
drain()
{
    rcli FLUSHALL >/dev/null
    # shellcheck disable=SC2086
    gen_events "$N" $GEN
    [ "$(rcli XLEN suki:events)" = "$N" ] || fail "push: $(rcli XLEN suki:events)"
    t0=$(now_ms)
    pids=""
    for k in $(seq 1 "$1"); do
        "$SUKID" -c "$CONF" >>"$T/sukid-bench$k.log" 2>&1 &
        pids="$pids $!"
        lib_track $!
    done
    hwm=0
    while [ "$(stat applied)" -lt "$N" ]; do
        for p in $pids; do
            h=$(awk '/^VmHWM/ { print $2 }' /proc/"$p"/status 2>/dev/null)
            [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
        done
        sleep 0.02
    done
    t1=$(now_ms)
    rss=$(for p in $pids; do awk '/^VmRSS/ { print $2 }' /proc/"$p"/status; done | sort -n | tail -1)
    for p in $pids; do kill "$p"; wait "$p"; lib_untrack "$p"; done
    ms=$((t1 - t0))
    echo "sukid x$1: $N events in $ms ms = $((N * 1000 / ms)) events/s;" \
        "max VmHWM ${hwm} kB, VmRSS at the end ${rss} kB"
}

echo "intake benchmark: $N events, batch 256, $(nproc) cores, rules ${RULES:-0}, mix ${MIX:-0}"
drain 1
drain 2
rcli FLUSHALL >/dev/null
echo "redis-benchmark ceiling (XADD, pipeline 64):"
redis-benchmark -p "$REDIS_PORT" -n "$N" -P 64 -q XADD bench '*' event \
    '{"type":"meeting.held","client":"c12345","data":{"n":12345}}' | tr '\r' '\n' | grep -v '^$' | tail -1
