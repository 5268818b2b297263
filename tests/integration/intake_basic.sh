#!/bin/sh
# intake_basic.sh - 10,000 events are each applied exactly once; events
# whose id was already applied are counted as duplicates and not applied
# again; SIGTERM stops cleanly with nothing pending.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID"

start_redis
CONF=$T/sukid.conf
write_conf "$CONF"
start_sukid a "$CONF"

gen_events 10000 --ids
wait_for 60 '[ "$(stat applied)" -ge 10000 ]' ||
    fail "applied $(stat applied) of 10000"
[ "$(stat applied)" = 10000 ] || fail "applied $(stat applied), want 10000"
[ "$(clients_not_once 10000)" = 0 ] ||
    fail "$(clients_not_once 10000) clients without exactly one event"
ok "10000 events applied once each"

# 500 repeats of applied ids: duplicates, not applied again
gen_events 500 --ids --start 2000
wait_for 30 '[ "$(stat duplicate)" -ge 500 ]' ||
    fail "duplicates $(stat duplicate), want 500"
[ "$(stat duplicate)" = 500 ] || fail "duplicates $(stat duplicate)"
[ "$(stat applied)" = 10000 ] || fail "applied $(stat applied) after repeats"
[ "$(clients_not_once 10000)" = 0 ] || fail "a repeat was applied again"
ok "500 repeated ids counted as duplicates"

# profile fields and the marker of an applied event
[ "$(rcli EXISTS suki:seen:e42)" = 1 ] || fail "no de-duplication marker"
ttl=$(rcli PTTL suki:seen:e42)
[ "$ttl" -gt 600000000 ] || fail "marker TTL $ttl, want ~7d"
rcli XADD suki:events '*' event \
    '{"type":"client.created","client":"acme","manager":"m@x.ph","data":{"name":"Acme","email":"a@acme.ph","tags":["vip","ph"]}}' >/dev/null
wait_for 10 '[ "$(rcli HGET suki:client:acme name)" = Acme ]' ||
    fail "profile not stored"
[ "$(rcli HGET suki:client:acme tags)" = vip,ph ] || fail "tags"
[ "$(rcli HGET suki:client:acme manager)" = m@x.ph ] || fail "manager"
ok "client.created stored the profile"

# consent: the profile's address (or data.email) is suppressed and lifted
rcli XADD suki:events '*' event '{"type":"consent.unsubscribed","client":"acme"}' >/dev/null
wait_for 10 '[ "$(rcli SISMEMBER suki:suppressed a@acme.ph)" = 1 ]' ||
    fail "consent.unsubscribed did not suppress the profile address"
rcli XADD suki:events '*' event '{"type":"consent.unsubscribed","client":"acme","data":{"email":"Boss@Acme.PH"}}' >/dev/null
wait_for 10 '[ "$(rcli SISMEMBER suki:suppressed boss@acme.ph)" = 1 ]' ||
    fail "consent.unsubscribed did not suppress data.email (lower-cased)"
rcli XADD suki:events '*' event '{"type":"consent.subscribed","client":"acme"}' >/dev/null
wait_for 10 '[ "$(rcli SISMEMBER suki:suppressed a@acme.ph)" = 0 ]' ||
    fail "consent.subscribed did not lift the suppression"
[ "$(rcli SCARD suki:suppressed)" = 1 ] || fail "suppressed: $(rcli SMEMBERS suki:suppressed)"
ok "consent.unsubscribed / consent.subscribed"

wait_for 10 '[ "$(group_pending)" = 0 ]' || fail "pending $(group_pending)"
stop_sukid a || fail "sukid exit status $? on SIGTERM"
grep -q "this process applied 10004 events (500 duplicate" "$T/sukid-a.log" ||
    fail "stop summary missing"
[ "$(stat invalid)" = 0 ] || fail "invalid $(stat invalid)"
ok "clean stop"
