#!/bin/bash
# bench_ha.sh - high-availability figures on real redis-servers, sentinels
# and sukid (build without sanitizers, e.g. configure CFLAGS="-O2 -g").
# One part per run, so that an outer timer can alternate settings:
#
#   intake    drain of N (50,000) pushed events by K (1) sukid, a primary
#             with one replica, redis.min_replicas = MR (0): events/s
#   sched     N (10,000) overdue jobs fired, sent to a tmpfs spool and
#             settled by K (1) sukid, one replica, min_replicas = MR:
#             jobs/s
#   failover  a primary, two replicas, three sentinels (down-after 2 s),
#             one sukid, a producer at 200 events/s; the primary killed
#             (-9): ms from the kill to the first event applied on the new
#             primary, ROUNDS (3) times
#   scale     intake and sched for K = 1, 2, 4 sukid on one Redis, and
#             the Redis main thread's CPU share while they run
#
# usage: top_builddir=/path/to/build bash bench/bench_ha.sh PART
# Prints figures; never fails on them (run by hand, not by make check).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$(pwd)}
export top_srcdir top_builddir
. "$top_srcdir/tests/integration/sched_lib.sh"
need redis-cli redis-server redis-sentinel
PART=${1:-intake}
MR=${MR:-0}
K=${K:-1}
P=$SUKI_PREFIX
now_ms() { echo $(($(date +%s%N) / 1000000)); }
redis_cpu_us() { redis-cli -p "$1" INFO cpu | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%d", s * 1000000 }'; }

# replica PORT_OF_PRIMARY - start a replica; sets RP
replica()
{
    RP=$(free_port)
    mkdir -p "$T/r$RP"
    redis-server --port "$RP" --bind 127.0.0.1 --dir "$T/r$RP" --save '' \
        --appendonly no --replicaof 127.0.0.1 "$1" --logfile "$T/redis-$RP.log" \
        >/dev/null 2>&1 &
    lib_track $!
    eval "RPID_$RP=$!"
    wait_for 20 'redis-cli -p $RP INFO replication | grep -q master_link_status:up' ||
        fail "replica $RP did not sync"
}

# start_k CONF - start K sukid on CONF; sets PIDS
start_k()
{
    PIDS=""
    for k in $(seq 1 "$K"); do
        "$SUKID" -c "$1" >>"$T/sukid-$k.log" 2>&1 &
        PIDS="$PIDS $!"
        lib_track $!
    done
}
stop_k()
{
    for p in $PIDS; do kill "$p"; wait "$p" 2>/dev/null; lib_untrack "$p"; done
}

intake_run()
{
    N=${N:-50000}
    rcli FLUSHALL >/dev/null
    LOG_LEVEL=notice REDIS_EXTRA="min_replicas = $MR;" sched_conf "$T/sukid.conf"
    gen_events "$N"
    [ "$(rcli XLEN "$P:events")" = "$N" ] || fail "push: $(rcli XLEN "$P:events")"
    c0=$(redis_cpu_us "$REDIS_PORT")
    t0=$(now_ms)
    start_k "$T/sukid.conf"
    wait_for 600 '[ "$(stat applied)" -ge $N ]' || fail "applied $(stat applied) of $N"
    t1=$(now_ms)
    c1=$(redis_cpu_us "$REDIS_PORT")
    stop_k
    ms=$((t1 - t0))
    echo "intake K=$K min_replicas=$MR: $N events in $ms ms = $((N * 1000 / ms)) events/s;" \
        "redis CPU $(((c1 - c0) / 1000)) ms ($(((c1 - c0) / 10 / ms))% of the wall time)"
}

sched_run()
{
    N=${N:-10000}
    rcli FLUSHALL >/dev/null
    SPOOL=$(mktemp -d /dev/shm/suki-bench-spool.XXXXXX)
    trap 'rm -rf "$SPOOL"; lib_cleanup' EXIT
    "$PY" "$top_srcdir/tests/integration/sched_jobs.py" --prefix "$P" --rule sched-test \
        --count "$N" --due $(($(now_ms) - 60000)) --spread 1000 --clients 2000 --event |
        redis-cli -p "$REDIS_PORT" --pipe >/dev/null
    [ "$(zcard)" = "$N" ] || fail "loaded $(zcard) of $N"
    LOG_LEVEL=notice REDIS_EXTRA="min_replicas = $MR;" \
        EMAIL="url = \"spool://$SPOOL\"; max_connections = 8;" sched_conf "$T/sukid.conf"
    c0=$(redis_cpu_us "$REDIS_PORT")
    t0=$(now_ms)
    start_k "$T/sukid.conf"
    wait_for 600 '[ "$(zcard)" = 0 ]' || fail "$(zcard) jobs left"
    t1=$(now_ms)
    c1=$(redis_cpu_us "$REDIS_PORT")
    n=$(find "$SPOOL" -maxdepth 1 -name '*.eml' | wc -l)
    stop_k
    rm -rf "$SPOOL"
    ms=$((t1 - t0))
    echo "sched K=$K min_replicas=$MR: $N overdue jobs fired, sent ($n in the spool) and settled" \
        "in $ms ms (from the start of sukid) = $((N * 1000 / ms)) jobs/s;" \
        "redis CPU $(((c1 - c0) / 1000)) ms ($(((c1 - c0) / 10 / ms))%)"
}

failover_run()
{
    P0=$REDIS_PORT
    replica "$P0"
    replica "$P0"
    SPORTS=""
    for i in 1 2 3; do
        sp=$(free_port)
        mkdir -p "$T/s$sp"
        printf '%s\n' "port $sp" "bind 127.0.0.1" "dir $T/s$sp" \
            "logfile $T/sentinel-$sp.log" "sentinel monitor suki 127.0.0.1 $P0 2" \
            "sentinel down-after-milliseconds suki 2000" \
            "sentinel failover-timeout suki 4000" >"$T/s$sp/sentinel.conf"
        redis-sentinel "$T/s$sp/sentinel.conf" >/dev/null 2>&1 &
        lib_track $!
        SPORTS="$SPORTS $sp"
    done
    S1=$(echo $SPORTS | cut -d' ' -f1)
    wait_for 30 '[ "$(redis-cli -p $S1 SENTINEL master suki | grep -A1 "^num-other-sentinels$" | tail -1)" = 2 ]' ||
        fail "the sentinels did not find each other"
    SLIST=$(echo $SPORTS | sed 's/\([0-9]*\)/"127.0.0.1:\1"/g; s/ /, /g')
    LOG_LEVEL=notice REDIS_EXTRA="sentinels = [ $SLIST ]; master = \"suki\"; min_replicas = $MR;" \
        sched_conf "$T/sukid.conf"
    start_k "$T/sukid.conf"
    wait_for 20 'grep -q "consumer group ready" "$T/sukid-1.log"' || fail "sukid not ready"
    "$PY" "$top_srcdir/tests/integration/ha_producer.py" \
        --sentinels "$(echo $SPORTS | tr ' ' ,)" --master suki --stream "$P:events" \
        --count 100000 --rate 200 --confirmed "$T/confirmed" >"$T/producer.log" 2>&1 &
    PROD=$!
    lib_track $PROD
    sleep 3
    t0=$(now_ms)
    stop_redis kill
    NEW=""
    while :; do
        a=$(redis-cli -p "$S1" SENTINEL get-master-addr-by-name suki | tail -1)
        if [ "$a" != "$P0" ] && [ -n "$a" ]; then
            NEW=$a
            break
        fi
        sleep 0.02
    done
    t1=$(now_ms)
    base=$(redis-cli -p "$NEW" HGET "$P:stats" events_applied)
    while [ "$(redis-cli -p "$NEW" HGET "$P:stats" events_applied)" = "$base" ]; do
        sleep 0.02
    done
    t2=$(now_ms)
    kill "$PROD"
    lib_untrack "$PROD"
    stop_k
    echo "failover min_replicas=$MR: primary killed; sentinels name $NEW after $((t1 - t0)) ms;" \
        "first event applied on it $((t2 - t0)) ms after the kill"
}

case $PART in
intake)
    start_redis --appendonly no
    replica "$REDIS_PORT"
    intake_run
    ;;
sched)
    start_redis --appendonly no
    replica "$REDIS_PORT"
    sched_run
    ;;
failover)
    for r in $(seq 1 "${ROUNDS:-3}"); do
        (
            T=$(mktemp -d "${TMPDIR:-/tmp}/suki-bench.XXXXXX")
            trap lib_cleanup EXIT
            LIB_PIDS=""
            REDIS_PORT=""
            start_redis --appendonly no
            failover_run
        )
    done
    ;;
scale)
    start_redis --appendonly no
    echo "scale-out on one Redis ($(nproc) cores; every sukid and Redis share them)"
    for K in 1 2 4; do intake_run; done
    for K in 1 2 4; do sched_run; done
    ;;
*)
    echo "usage: bench_ha.sh intake|sched|failover|scale" >&2
    exit 64
    ;;
esac
exit 0
