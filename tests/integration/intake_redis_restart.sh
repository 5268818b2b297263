#!/bin/sh
# intake_redis_restart.sh - Redis (AOF) restarted while sukid is working
# through a backlog: sukid reconnects by itself and nothing is lost or
# applied twice.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID"

start_redis
CONF=$T/sukid.conf
CLAIM_IDLE=60s INTAKE_EXTRA="batch = 64;" write_conf "$CONF"
start_sukid a "$CONF"

N1=30000
N2=5000
gen_events $N1
# restart mid-stream: sukid has started but not finished
wait_for 20 '[ "$(stat applied)" -gt 0 ]' || fail "nothing applied"
restart_redis
echo "restarted redis at applied=$(stat applied)"
gen_events $N2 --start $N1
N=$((N1 + N2))
# claim_idle is 60s: only the reconnect path (re-reading this consumer's
# own pending entries) can finish in time
wait_for 40 '[ "$(stat applied)" -ge '$N' ] && [ "$(group_pending)" = 0 ]' ||
    fail "applied $(stat applied) of $N, pending $(group_pending)"
[ "$(stat applied)" = $N ] || fail "applied $(stat applied), want $N"
[ "$(clients_not_once $N)" = 0 ] ||
    fail "$(clients_not_once $N) clients without exactly one event"
grep -q "redis intake: connected" "$T/sukid-a.log" || fail "no reconnect"
[ "$(grep -c 'consumer group ready' "$T/sukid-a.log")" -ge 2 ] ||
    fail "intake did not set up again after the restart"
kill -0 "$SUKID_PID" || fail "sukid died"
ok "redis restarted mid-stream: $N events applied once"
stop_sukid a || fail "exit status $?"
