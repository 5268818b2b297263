#!/bin/sh
# lease_lapsed.sh - Redis is killed -9 (appendfsync always) and loads for
# about 4 s (a data set at key-load-delay), two leases, while a slow server
# holds three reminders (8 s to answer the final "."): the leases cannot be
# renewed and run out in Redis. When Redis was back, the scheduler's claim
# (sent at once when the link comes up) returned those jobs, still being
# sent by this very daemon, and fired them again: each message went out
# twice. Now a claimed job that is in flight here
# keeps its one transfer (and the new lease): three messages, once each.
. "$top_srcdir/tests/integration/sched_lib.sh"
need redis-server redis-cli "$SUKID"

start_redis --appendfsync always --enable-debug-command local \
    --key-load-delay 1000 --loading-process-events-interval-bytes 1024
# the ballast goes into the AOF's base file, loaded at every restart
rcli DEBUG POPULATE 4000 ballast: 16 >/dev/null
rcli BGREWRITEAOF >/dev/null
wait_for 20 'rcli INFO persistence | grep -q "^aof_rewrite_in_progress:0"' ||
    fail "AOF rewrite did not end"
slow_smtpd 8
CONF=$T/sukid.conf
SCHED_EXTRA='lease = "2s";' \
    EMAIL="url = \"smtp://127.0.0.1:$SP\"; starttls = \"off\"; timeout = \"30s\";" \
    sched_conf "$CONF"
add_jobs --count 3 --due $(($(now_ms) - 1000))
start_sched a "$CONF"
wait_for 10 '[ "$(mail_count)" -ge 3 ]' || fail "the reminders did not reach the server"
t0=$(now_ms)
stop_redis kill
# (a loading Redis answers PING with -LOADING)
eval "exec redis-server $REDIS_ARGS" >/dev/null 2>&1 &
REDIS_PID=$!
lib_track $REDIS_PID
wait_for 60 '[ "$(rcli PING)" = PONG ]' || fail "Redis did not load in 60 s"
ms=$(($(now_ms) - t0))
echo "Redis loaded in $ms ms"
[ "$ms" -ge 3000 ] || fail "Redis loaded in $ms ms: the leases did not run out"
wait_for 30 '[ "$(zcard)" = 0 ]' || fail "$(zcard) jobs left"
sleep 3 # a second copy would be at the server by now
[ "$(mail_count)" = 3 ] || fail "the server got $(mail_count) transactions, want 3"
[ "$(smtpd_count '^DATA .* 250')" = 3 ] || fail "the server took $(smtpd_count '^DATA .* 250') messages"
grep -q 'taken back, not sent again' "$T/sukid-a.log" ||
    fail "the claim did not return the jobs in flight: the test proves nothing"
ok "leases run out while Redis restarted and loaded mid-send: each reminder once"
stop_sukid a || fail "exit status $?"
