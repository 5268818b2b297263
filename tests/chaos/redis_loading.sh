#!/bin/sh
# redis_loading.sh - Redis answering -LOADING for about 6 s (6,000 keys
# loaded at 1 ms each: key-load-delay, which stands for a large production
# data set), three times the jobs' 2 s lease, while an SMTP server holds
# the final "." of several reminders. In turn: Redis killed -9
# (appendfsync always) and restarted, so sukid's links reconnect into the
# loading; and DEBUG RELOAD, so the links stay up and every command on them
# (settles, sent markers, applies) is answered -LOADING. Meanwhile the server answers the "."s, the agent
# cannot set the sent markers and the scheduler cannot settle; events keep
# coming (the producer retries on -LOADING). The markers and settles must
# wait for Redis, not be dropped, and no job may go out again: every
# reminder exactly once, every event applied once, nothing pending.
# CI: one of each. SOAK_LONG=1: 3 of each.
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
    t0=$(now_ms)
    if [ $((r % 2)) = 0 ]; then
        how="killed -9 and restarted"
        stop_redis kill
        # (not restart_redis: its 10 s for PONG are too short on a busy
        # host, and a loading Redis answers PING with -LOADING)
        eval "exec redis-server $REDIS_ARGS" >/dev/null 2>&1 &
        REDIS_PID=$!
        lib_track $REDIS_PID
        wait_for 60 '[ "$(rcli PING)" = PONG ]' || fail "Redis did not load in 60 s"
    else
        # the links stay up: their commands are answered -LOADING
        how="DEBUG RELOAD"
        rcli DEBUG RELOAD >/dev/null || fail "DEBUG RELOAD failed"
    fi
    r=$((r + 1))
    ms=$(($(now_ms) - t0))
    echo "round $r: Redis $how, loaded in $ms ms"
    [ "$ms" -ge 4000 ] || fail "Redis loaded in $ms ms: not two leases"
    produce_wait
done
grep -q 'cannot set sent marker .*LOADING' "$T/sukid-a.log" ||
    fail "no server answered a reminder while Redis was loading"
ok "$ROUNDS spells of -LOADING with reminders held at the server"
chaos_end 90
ok "-LOADING for several leases mid-send: every reminder once, no event lost"
