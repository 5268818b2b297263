#!/bin/bash
# bench_sched.sh - scheduler figures on a real redis-server and a real sukid
# (build without sanitizers, e.g. configure CFLAGS="-O2 -g"):
#
#   1. lateness: 20,000 jobs due in one 2-second window, spool transport;
#      p50/p99/max of each delivery's lateness (spool file mtime - due;
#      mtime has the kernel's ~4 ms granularity) and, with
#      LATE_LOG_LEVEL=debug (default info, what production runs with; debug
#      costs a log line per job), of each fire (the line "fired: late N ms")
#   2. throughput: 20,000 jobs already overdue: jobs fired and delivered
#      per second (first fire to last job completed)
#   3. Redis memory per scheduled job: INFO used_memory before/after loading
#      100,000 jobs (10,000 clients), with and without the stored event;
#      then with one job per client (the per-client hash costs most there)
#   4. sukid RSS with 1,000,000 jobs scheduled (loaded with redis-cli --pipe)
#
# usage: top_builddir=/path/to/build bench/bench_sched.sh
# Prints figures; never fails on them (run by hand, not by make check).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$(pwd)}
export top_srcdir top_builddir
. "$top_srcdir/tests/integration/sched_lib.sh"
need redis-cli redis-server
JOBS=$top_srcdir/tests/integration/sched_jobs.py

start_redis --appendonly no
P=$SUKI_PREFIX
CONF=$T/sukid.conf
# The spool: $T/spool (disk; dispatch fsyncs each file and the directory) or
# SPOOL=/dev/shm/... (tmpfs: fsync is free, the scheduler is what is timed).
SPOOL=${SPOOL:-$T/spool}
mkdir -p "$SPOOL"
[ "$SPOOL" = "$T/spool" ] || trap 'rm -rf "$SPOOL"; lib_cleanup' EXIT
spool_count() { find "$SPOOL" -maxdepth 1 -name '*.eml' | wc -l; }
PARTS=${PARTS:-1 2 3 4}
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

pct()
{
    # pct FILE - p50 p99 max of the numbers in FILE
    sort -n "$1" | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a"; exit }
        i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
        i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
        printf "p50 %d ms, p99 %d ms, max %d ms (n=%d)", v[i50], v[i99], v[NR], NR }'
}
load() { "$PY" "$JOBS" --prefix "$P" --rule sched-test "$@" | redis-cli -p "$REDIS_PORT" --pipe >/dev/null; }
used_memory() { rcli INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }

echo "== suki scheduler benchmark ($(nproc) cores, redis $(redis-server --version | cut -d' ' -f3 | cut -d= -f2), spool $SPOOL)"

# ---- 1. lateness of 20,000 jobs due within 2 s ------------------------
N=20000
RSS_PEAK=n/a AGENT_PEAK=n/a
if part 1; then
LOG_LEVEL=${LATE_LOG_LEVEL:-info} \
    EMAIL="url = \"spool://$SPOOL\"; max_connections = 8;" sched_conf "$CONF"
start_sched a "$CONF"
START=$(($(now_ms) + 4000))
load --count $N --due $START --spread 2000 --clients 2000 --event
[ "$(zcard)" = $N ] || fail "not loaded"
wait_for 120 '[ "$(zcard)" = 0 ]' || fail "$(zcard) jobs left"
wait_for 30 '[ "$(spool_count)" = $N ]' || fail "$(spool_count) messages"
sed -n 's/.* fired: late \(-\?[0-9]*\) ms.*/\1/p' "$T/sukid-a.log" >"$T/late1"
echo "1. $N jobs due within 2 s (log level ${LATE_LOG_LEVEL:-info}):"
[ -s "$T/late1" ] && echo "   fire lateness:     $(pct "$T/late1")"
"$PY" - "$SPOOL" "$START" 2000 $N >"$T/dlate1" <<'EOF'
import os, re, sys
d, start, spread, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for f in os.listdir(d):
    if not f.endswith(".eml"):
        continue
    p = os.path.join(d, f)
    with open(p, "rb") as fh:
        m = re.search(rb"X-Suki-Job: sched-test:c\d+:s(\d+):", fh.read(4096))
    i = int(m.group(1))
    due = start + i * spread // n
    print(int(os.stat(p).st_mtime_ns // 1000000 - due))
EOF
echo "   delivery lateness: $(pct "$T/dlate1")"
RSS_PEAK=$(sed -n 's/^VmHWM:[[:space:]]*//p' /proc/"$SUKID_PID"/status)
AGENT_PEAK=$(sed -n 's/^VmHWM:[[:space:]]*//p' /proc/"$(agent_pid a)"/status)
stop_sukid a
mv "$T/sukid-a.log" "$T/part1.log"; rm -rf "$SPOOL"; mkdir -p "$SPOOL"
fi

# ---- 2. throughput: 20,000 overdue jobs --------------------------------
if part 2; then
rcli FLUSHALL >/dev/null
RCPU0=$(rcli INFO cpu | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%d", s * 1000000 }')
load --count $N --due $(($(now_ms) - 60000)) --spread 1000 --clients 2000 --event
LOG_LEVEL=info EMAIL="url = \"spool://$SPOOL\"; max_connections = 8;" \
    sched_conf "$CONF"
T0=$(now_ms)
start_sched a "$CONF"
wait_for 120 '[ "$(zcard)" = 0 ]' || fail "$(zcard) jobs left"
T1=$(now_ms)
wait_for 30 '[ "$(spool_count)" = $N ]' || fail "$(spool_count) messages"
FIRST=$(grep -m1 "scheduler: ready" "$T/sukid-a.log" | "$PY" -c '
import sys, datetime
t = datetime.datetime.strptime(sys.stdin.readline().split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
print(int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))')
echo "2. $N overdue jobs: all fired, sent and completed in $((T1 - FIRST)) ms" \
    "(polling granularity 50 ms): $((N * 1000 / (T1 - FIRST))) jobs/s"
# CPU per job, less sensitive to other load on the machine than wall time
TICKS=$(awk '{ print $14 + $15 }' /proc/"$SUKID_PID"/stat)
AGENT=$(awk '{ print $14 + $15 }' /proc/"$(agent_pid a)"/stat)
HZ=$(getconf CLK_TCK)
RCPU=$(rcli INFO cpu | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%d", s * 1000000 }')
echo "   CPU per job: sukid $((TICKS * 1000000 / HZ / N)) us," \
    "its delivery agent (the spool writer) $((AGENT * 1000000 / HZ / N)) us," \
    "redis $(((RCPU - RCPU0) / N)) us (incl. its share of loading)"
stop_sukid a
rm -rf "$SPOOL"; mkdir -p "$SPOOL"
fi

# ---- 3. Redis memory per job ------------------------------------------
if part 3; then
for lp in "" 1024; do
for cl in 10000 100000; do
for ev in --event ""; do
    [ -n "$lp" ] && [ -z "$ev" ] && continue
    rcli FLUSHALL >/dev/null
    rcli CONFIG SET hash-max-listpack-value "${lp:-64}" >/dev/null
    M0=$(used_memory)
    load --count 100000 --due $(($(now_ms) + 86400000)) --spread 86400000 \
        --clients $cl $ev
    M1=$(used_memory)
    BODY=$(($(rcli HGET "$P:job:c5" "sched-test:c5:s5:" | wc -c) - 1))
    what="with the stored event"
    [ -n "$ev" ] || what="without an event"
    echo "3. 100,000 jobs, $((100000 / cl)) per client, $what" \
        "(body $BODY B)${lp:+, hash-max-listpack-value $lp}:" \
        "$(((M1 - M0) / 100000)) B of Redis memory per job"
done
done
done
rcli CONFIG SET hash-max-listpack-value 64 >/dev/null
fi

# ---- 4. sukid RSS with 1,000,000 jobs scheduled ------------------------
if part 4; then
rcli FLUSHALL >/dev/null
[ -f "$CONF" ] || sched_conf "$CONF"
for k in 0 1 2 3 4 5 6 7 8 9; do
    "$PY" "$JOBS" --prefix "$P" --rule sched-test \
        --count 100000 --due $(($(now_ms) + 86400000 + k * 1000000)) \
        --spread 1000000 --clients 100000 --key-prefix "b$k-" |
        redis-cli -p "$REDIS_PORT" --pipe >/dev/null
done
echo "4. $(zcard) jobs scheduled, Redis used_memory $(($(used_memory) / 1048576)) MiB"
start_sched a "$CONF"
sleep 3
RSS=$(sed -n 's/^VmRSS:[[:space:]]*//p' /proc/"$SUKID_PID"/status)
echo "   sukid RSS: $RSS (peak during test 1: $RSS_PEAK; its delivery agent's" \
    "peak then: $AGENT_PEAK)"
stop_sukid a
fi
exit 0
