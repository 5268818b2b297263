#!/bin/sh
# bench_timeline.sh - what the client timelines (console.timeline) cost the
# intake: a CRM's day of events (sukitest.py gen --mix, with ids and
# summaries; the shipped rules and plugins) drained by one sukid with
# console.timeline = 0 and = 20, alternated A B A B ... so a drift of the
# machine's speed hits both. Per run: wall time, and the CPU time of
# redis-server (utime + stime from /proc, per 100k events: steadier than
# the wall time on a shared machine); medians at the end. Prints figures;
# asserts nothing.
#
#   top_srcdir=/work/main top_builddir=/work/build-o2 \
#       sh bench/bench_timeline.sh [N [ROUNDS]]
#
# Use a build without sanitizers (configure CFLAGS=-O2).
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID"
N=${1:-100000}
ROUNDS=${2:-5}

start_redis --appendonly no
PLUGINS_DIR=$top_builddir/plugins/.libs
TEMPLATES_DIR=$top_srcdir/conf/templates
RULES=$(awk '/^roles = \{/,/^\};/; /^rules = \(/,/^\);/' "$top_srcdir/conf/sukid.conf")
for tl in 0 20; do
    LOG_LEVEL=notice write_conf "$T/tl$tl.conf" "$RULES
console = { timeline = $tl; };"
done

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# redis-server's CPU time so far, in clock ticks
rticks() { awk '{ print $14 + $15 }' /proc/"$REDIS_PID"/stat; }
HZ=$(getconf CLK_TCK)

# run TL: push N events, drain them with one sukid at console.timeline = TL;
# appends "wall_ms redis_ms_per_100k" to $T/res.TL
run()
{
    rcli FLUSHALL >/dev/null
    gen_events "$N" --mix 19997 --ids
    [ "$(rcli XLEN suki:events)" = "$N" ] || fail "push: $(rcli XLEN suki:events)"
    c0=$(rticks)
    t0=$(now_ms)
    "$SUKID" -c "$T/tl$1.conf" >>"$T/sukid-tl$1.log" 2>&1 &
    pid=$!
    lib_track $pid
    while [ "$(stat applied)" -lt "$N" ]; do sleep 0.02; done
    t1=$(now_ms)
    c1=$(rticks)
    kill "$pid"
    wait "$pid"
    lib_untrack "$pid"
    keys=$(rcli --scan --pattern 'suki:timeline:*' | wc -l)
    mem=$(rcli INFO memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r')
    rms=$(((c1 - c0) * 1000 / HZ * 100000 / N))
    echo "timeline $1: $N events in $((t1 - t0)) ms ($((N * 1000 / (t1 - t0))) events/s)," \
        "redis-server CPU $rms ms per 100k events, $keys timeline keys, used_memory $mem"
    echo "$((t1 - t0)) $rms" >>"$T/res.$1"
}

echo "timeline benchmark: $N events (mix), $ROUNDS rounds of timeline 0 / 20, $(nproc) cores"
for r in $(seq 1 "$ROUNDS"); do
    run 0
    run 20
done
med() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for tl in 0 20; do
    echo "timeline $tl: median wall $(cut -d' ' -f1 "$T/res.$tl" | med) ms," \
        "median redis-server CPU $(cut -d' ' -f2 "$T/res.$tl" | med) ms per 100k events"
done
