#!/bin/sh
# intake_lists.sh - 10,000 items LPUSHed on a configured list all reach the
# stream and are applied once, even with a kill -9 of sukid while it moves
# them.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID"

start_redis
CONF=$T/sukid.conf
INTAKE_EXTRA='lists = [ "crm:events", "other:events" ]; batch = 100;' \
    write_conf "$CONF"

N=10000
gen_events 9000 --cmd lpush --key crm:events
gen_events 1000 --cmd lpush --key other:events --start 9000
start_sukid a "$CONF"
wait_for 20 '[ "$(rcli XLEN suki:events)" -gt 0 ]' || fail "nothing moved"
stop_sukid a KILL
echo "killed with $(rcli LLEN crm:events) items left on the list," \
    "$(rcli XLEN suki:events) in the stream"
[ "$(rcli LLEN crm:events)" -gt 0 ] || echo "note: the move had finished"
start_sukid a "$CONF"
wait_for 40 '[ "$(stat applied)" -ge '$N' ] && [ "$(group_pending)" = 0 ]' ||
    fail "applied $(stat applied) of $N"
[ "$(stat applied)" = $N ] || fail "applied $(stat applied), want $N"
[ "$(rcli XLEN suki:events)" = $N ] || fail "stream has $(rcli XLEN suki:events)"
[ "$(rcli LLEN crm:events)$(rcli LLEN other:events)" = 00 ] || fail "lists not empty"
[ "$(clients_not_once $N)" = 0 ] ||
    fail "$(clients_not_once $N) clients without exactly one event"
ok "$N list items moved and applied once"

# a late push is picked up by the idle poller (<= 100 ms back-off)
rcli LPUSH crm:events '{"type":"a.b","client":"late"}' >/dev/null
wait_for 5 '[ "$(rcli HGET suki:client-events late)" = 1 ]' ||
    fail "late list item not applied"
# a key of the wrong type is reported and skipped, the other list still moves
rcli SET other:events x >/dev/null
rcli LPUSH crm:events '{"type":"a.b","client":"late2"}' >/dev/null
wait_for 5 '[ "$(rcli HGET suki:client-events late2)" = 1 ]' ||
    fail "list not moved next to a wrong-typed key"
wait_for 5 'grep -q "other:events is not a list" "$T/sukid-a.log"' ||
    fail "wrong-typed list not reported"
ok "idle polling and wrong-typed keys"
stop_sukid a || fail "exit status $?"
