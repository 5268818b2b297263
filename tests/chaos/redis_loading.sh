#!/bin/sh
# redis_loading.sh - Redis killed -9 (appendfsync always) while an SMTP
# server holds the final "." of several reminders, then answering -LOADING
# for about 6 s while it loads its data set (6,000 keys at 1 ms each:
# key-load-delay, which stands for a large production AOF), three times
# the jobs' 2 s lease. Meanwhile the server answers the "."s, the agent
# cannot set the sent markers and the scheduler cannot settle; events keep
# coming (the producer retries on -LOADING). The markers and settles must
# wait for Redis, not be dropped, and no job may go out again: every
# reminder exactly once, every event applied once, nothing pending.
# CI: 2 restarts. SOAK_LONG=1: 6.
. "$top_srcdir/tests/chaos/chaos_lib.sh"
ROUNDS=2
[ "${SOAK_LONG:-0}" = 1 ] && ROUNDS=6

start_redis --appendfsync always --enable-debug-command local \
    --key-load-delay 1000 --loading-process-events-interval-bytes 1024
# the ballast goes into the AOF's base file, loaded at every restart
rcli DEBUG POPULATE 6000 ballast: 16 >/dev/null
rcli BGREWRITEAOF >/dev/null
wait_for 20 'rcli INFO persistence | grep -q "^aof_rewrite_in_progress:0"' ||
    fail "AOF rewrite did not end"
chaos_smtpd --mode slow --delay 2
CONF=$T/sukid.conf
SCHED_EXTRA='lease = "2s";' MAX_CONN=16 SMTP_TIMEOUT=20s \
    chaos_conf "$CONF"
start_sched a "$CONF"
produce 20 0 100
chaos_quiet 30
chaos_mark

next=20
r=0
while [ $r -lt $ROUNDS ]; do
    produce_bg 40 "$next" 20
    next=$((next + 40))
    # reminders are in DATA at the server: kill Redis under them
    wait_for 20 '[ $(($(smtpd_count "^MAIL") - $(smtpd_count "^DATA"))) -ge 4 ]' ||
        fail "no reminders held at the server"
    stop_redis kill
    t0=$(now_ms)
    _redis_spawn # returns once it has loaded
    r=$((r + 1))
    echo "round $r: Redis loaded in $(($(now_ms) - t0)) ms"
    produce_wait
done
grep -q 'cannot set sent marker .*LOADING' "$T/sukid-a.log" ||
    fail "no server answered a reminder while Redis was loading"
ok "$ROUNDS restarts into -LOADING with reminders held at the server"
chaos_end 90
ok "-LOADING for several leases mid-send: every reminder once, no event lost"
