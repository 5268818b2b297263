#!/bin/sh
# intake_poison.sh - an event that cannot be applied stays pending with its
# last error (P:lasterr), comes back through recovery, and after
# max_deliveries goes to P:dead as poison with that error; other events
# keep flowing meanwhile. Also: entries of a consumer that died are claimed.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID"

start_redis
CONF=$T/sukid.conf
INTAKE_EXTRA='max_deliveries = 3;' write_conf "$CONF"

# entries a dead consumer took and never acknowledged
rcli XGROUP CREATE suki:events sukid 0 MKSTREAM >/dev/null
gen_events 50 --start 100
rcli XREADGROUP GROUP sukid dead-one COUNT 50 STREAMS suki:events '>' >/dev/null
[ "$(group_pending)" = 50 ] || fail "setup: 50 pending"

start_sukid a "$CONF"
wait_for 10 '[ "$(stat applied)" = 50 ]' || fail "orphaned entries not claimed"
[ "$(clients_not_once 50 100)" = 0 ] || fail "claimed entries not applied once"
ok "entries of a dead consumer claimed and applied"

# the profile key of "victim" is not a hash: its events that write the
# profile cannot apply
rcli SET suki:client:victim oops >/dev/null
sid=$(rcli XADD suki:events '*' event '{"type":"client.updated","client":"victim","id":"v1","data":{"name":"V"}}')
gen_events 100
wait_for 10 '[ "$(stat applied)" = 150 ]' || fail "other events stalled"
wait_for 5 '[ -n "$(rcli HGET suki:lasterr "$sid")" ]' || fail "no last error"
rcli HGET suki:lasterr "$sid" | grep -q 'cannot apply: key suki:client:victim is a string' ||
    fail "last error: $(rcli HGET suki:lasterr "$sid")"
ok "failing event left pending with its last error"

wait_for 20 '[ "$(stat poison)" = 1 ]' || fail "not dead-lettered as poison"
[ "$(group_pending)" = 0 ] || fail "poison entry still pending"
[ -z "$(rcli HGET suki:lasterr "$sid")" ] || fail "last error not cleared"
dead=$(rcli XRANGE suki:dead - +)
echo "$dead" | grep -q "^poison: delivered 4 times; last error: cannot apply" ||
    fail "poison reason: $dead"
echo "$dead" | grep -qx "$sid" || fail "poison source"
echo "$dead" | grep -q '"client":"victim"' || fail "poison payload"
[ "$(stat applied)" = 150 ] || fail "poison applied"
kill -0 "$SUKID_PID" || fail "sukid died"
ok "poison after max_deliveries, with its last error"
stop_sukid a || fail "exit status $?"
