#!/bin/sh
# bench_report.sh - what the monthly reports cost. Prints figures; asserts
# nothing. Use builds without sanitizers (configure CFLAGS=-O2).
#
#   top_srcdir=. OLD=/path/to/main-build NEW=/path/to/this-build \
#       sh bench/bench_report.sh intake [N] [ROUNDS]
#     intake with the shipped rules and a CRM's day (sukitest.py gen --mix,
#     19,997 clients of 1,000 managers), drained by one sukid: OLD (a build
#     without the counters) and NEW with reports.monthly on, alternated
#     ROUNDS times (default 5), events/s each and the ratio NEW/OLD per
#     round, then the medians. NEW without reports runs too (counters off).
#   top_srcdir=. NEW=/path/to/this-build sh bench/bench_report.sh send [M] [C]
#     M managers (1,000) with C clients each (100), a month of counters
#     (20 events per client): the time from a report run's start until
#     every manager's report and the roll-up are delivered (spool), and the
#     Redis bytes per manager-month (MEMORY USAGE of the counter keys).
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${NEW:?NEW=build directory}
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli
mode=${1:-intake}

start_redis --appendonly no
now_ms() { echo $(($(date +%s%N) / 1000000)); }
RULES=$(awk '/^roles = \{/,/^\};/; /^rules = \(/,/^\);/' "$top_srcdir/conf/sukid.conf")
REPORTS='reports = { monthly = { day = 1; at = "08:00"; timezone = "Asia/Manila"; }; };'

# drain LABEL BUILD CONF N: push N events, one sukid of BUILD drains them;
# prints events/s and sets RATE
drain()
{
    rcli FLUSHALL >/dev/null
    gen_events "$4" --mix 19997 --managers 1000
    t0=$(now_ms)
    "$2/sukid" -c "$3" >>"$T/sukid-$1.log" 2>&1 &
    pid=$!
    lib_track $pid
    while [ "$(stat applied)" -lt "$4" ]; do sleep 0.02; done
    t1=$(now_ms)
    kill $pid
    wait $pid
    lib_untrack $pid
    RATE=$(($4 * 1000 / (t1 - t0)))
    echo "  $1: $4 events in $((t1 - t0)) ms = $RATE events/s"
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

if [ "$mode" = intake ]; then
    OLD=${OLD:?OLD=build directory without the counters}
    N=${2:-100000}
    R=${3:-5}
    PLUGINS_DIR=$top_builddir/plugins/.libs TEMPLATES_DIR=$top_srcdir/conf/templates \
        LOG_LEVEL=notice write_conf "$T/off.conf" "$RULES"
    PLUGINS_DIR=$top_builddir/plugins/.libs TEMPLATES_DIR=$top_srcdir/conf/templates \
        LOG_LEVEL=notice write_conf "$T/on.conf" "$RULES
$REPORTS"
    # the old build with its own plugins
    sed "s|$top_builddir/plugins|$OLD/plugins|" "$T/off.conf" >"$T/old.conf"
    echo "report counters, intake: $N events a run, $R rounds, $(nproc) cores"
    olds="" news="" offs="" ratios=""
    for r in $(seq 1 "$R"); do
        echo "round $r"
        drain old "$OLD" "$T/old.conf" "$N"; o=$RATE
        drain new-reports-on "$NEW" "$T/on.conf" "$N"; n=$RATE
        drain new-reports-off "$NEW" "$T/off.conf" "$N"; f=$RATE
        olds="$olds $o" news="$news $n" offs="$offs $f"
        ratios="$ratios $((n * 1000 / o))"
    done
    echo "median events/s: old $(echo "$olds" | median), new with counters" \
        "$(echo "$news" | median), new without $(echo "$offs" | median);" \
        "median ratio new-with/old (per mille): $(echo "$ratios" | median)"
    exit 0
fi

echo "unknown mode $mode" >&2
exit 2
