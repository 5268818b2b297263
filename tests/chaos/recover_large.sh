#!/bin/sh
# recover_large.sh - a consumer dies holding 20,000 pending entries; with
# intake.batch = 10000 one recovery pass claims 10,000 ids (one XCLAIM of
# them all went past Lua's unpack() limit of about 8,000, so recovery failed
# for ever). Every event is applied exactly once and nothing stays pending.
# The scheduler takes batches of 10,000 due jobs as configured (it was
# clamped to 2,000 without a word) and sends every one once.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID"

start_redis
CONF=$T/sukid.conf
INTAKE_EXTRA='batch = 10000; max_deliveries = 5;' \
    write_conf "$CONF"

N=20000
gen_events $N
rcli XGROUP CREATE suki:events sukid 0 MKSTREAM >/dev/null
# the dead consumer read them all and never acknowledged
[ "$(rcli XREADGROUP GROUP sukid ghost COUNT $N STREAMS suki:events '>' |
    grep -c '^event$')" = $N ] || fail "ghost read"
[ "$(group_pending)" = $N ] || fail "pending $(group_pending) before"
sleep 1.2
start_sukid a "$CONF"
wait_for 60 '[ "$(stat applied)" = $N ]' ||
    fail "applied $(stat applied) of $N; pending $(group_pending)"
[ "$(group_pending)" = 0 ] || fail "pending $(group_pending)"
[ "$(clients_not_once $N)" = 0 ] || fail "applied twice: $(clients_not_once $N)"
grep -q 'ERR\|unpack' "$T/sukid-a.log" && fail "script errors in the log"
ok "20,000 pending entries of a dead consumer recovered in batches of 10,000"
stop_sukid a || fail "exit status $?"
