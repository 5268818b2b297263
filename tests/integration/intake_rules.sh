#!/bin/sh
# intake_rules.sh - the intake with rules: an event's profile fields are
# seen by the rules of later events of the same batch (the job is due at
# 09:00 in the client's new time zone, not the global one); the job, its
# body and the client's job set are written with the acknowledgement; an
# `unless` event cancels it. A rule whose plugin fails leaves the event
# unapplied and pending with the plugin's error, until it turns poison.
# With a backlog read ahead in small batches, a time zone set a few batches
# earlier is still seen; a client whose profile key is not a hash fails
# only its own events.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID" "$SUKICTL"
mkdir -p "$T/plug"
for so in plugins/.libs/followup.so tests/fixtures/plugins/.libs/failing.so; do
    [ -f "$top_builddir/$so" ] || fail "$so not built"
    ln -s "$top_builddir/$so" "$T/plug/"
done

start_redis
# The meeting is ten days from now, so its follow-up is always in the future
# and never fires during the test: 10:00 in Manila on day D, three days
# later at 09:00 Manila = D+3 01:00Z (in New York, the global zone, it would
# be 14:00Z).
day=$(TZ=Asia/Manila date -d '+10 days' +%F)
at="${day}T10:00:00+08:00"
at_ms=$(($(date -d "$at" +%s) * 1000))
due_day=$(date -d "$day +3 days" +%F)
due_iso="${due_day}T01:00:00Z"
due_ms=$(($(date -d "$due_iso" +%s) * 1000))
CONF=$T/sukid.conf
PLUGINS_DIR=$T/plug TEMPLATES_DIR=$top_srcdir/conf/templates \
INTAKE_EXTRA='max_deliveries = 2;' write_conf "$CONF" '
timezone = "America/New_York";
rules = ( { name = "fu"; use = "followup"; on = [ "meeting.held" ];
            after = "3d"; at_local = "09:00"; unless = [ "contact.*" ];
            notify = [ "manager" ]; template = "followup-reminder"; },
          { name = "boom"; use = "failing"; mode = "eio"; on = [ "boom.*" ];
            notify = [ "manager" ];
            template = "followup-reminder"; } );'
"$SUKID" -t -c "$CONF" || fail "config refused"

# both events in the stream before sukid starts: one batch
rcli XADD suki:events '*' event '{"type":"client.created","client":"acme","id":"a1","manager":"m@acme.ph","data":{"timezone":"Asia/Manila"}}' >/dev/null
msid=$(rcli XADD suki:events '*' event '{"type":"meeting.held","client":"acme","id":"a2","at":"'"$at"'"}')
start_sukid a "$CONF"
wait_for 10 '[ "$(stat applied)" = 2 ]' || fail "applied $(stat applied)"
[ "$(rcli ZCARD suki:jobs)" = 1 ] || fail "jobs: $(rcli ZCARD suki:jobs)"
key=$(rcli ZRANGE suki:jobs 0 0)
due=$(rcli ZSCORE suki:jobs "$key")
[ "$due" = "$due_ms" ] ||
    fail "due $due ($(date -u -d @$((due / 1000)))), want $due_iso"
# the compact body: due time and event (its client is the key's); the
# rule's template, channel and notify list are not repeated; the meeting is
# dated after its arrival, so it is ordered by its arrival ("o")
body=$(rcli HGET suki:job:acme "$key")
echo "$body" | grep -qx "{\"d\":$due_ms,\"o\":${msid%-*},\"e\":{\"t\":\"meeting.held\",\"a\":$at_ms,\"i\":\"a2\"}}" ||
    fail "job body: $body"
[ "$(rcli HKEYS suki:job:acme)" = "$key" ] || fail "client job hash"
sukictl client acme | grep -q "$due_iso  *$key" ||
    fail "sukictl client: $(sukictl client acme)"
ok "job $key scheduled in the client's time zone from the same batch"

rcli XADD suki:events '*' event '{"type":"contact.call","client":"acme","id":"a3"}' >/dev/null
wait_for 10 '[ "$(rcli ZCARD suki:jobs)" = 0 ]' || fail "job not cancelled"
[ "$(rcli EXISTS suki:job:acme)" = 0 ] || fail "job body left"
ok "unless event cancelled it"

sid=$(rcli XADD suki:events '*' event '{"type":"boom.now","client":"acme","id":"b1"}')
rcli XADD suki:events '*' event '{"type":"meeting.held","client":"other"}' >/dev/null
wait_for 10 '[ "$(stat applied)" = 4 ]' || fail "event after the failing one"
wait_for 5 '[ -n "$(rcli HGET suki:lasterr "$sid")" ]' || fail "no last error"
rcli HGET suki:lasterr "$sid" | grep -q boom || fail "last error: $(rcli HGET suki:lasterr "$sid")"
[ "$(rcli HGET suki:client-events acme)" = 3 ] || fail "failed event applied"
wait_for 20 '[ "$(stat poison)" = 1 ]' || fail "failing event not poison"
rcli XRANGE suki:dead - + | grep -q '^poison: delivered 3 times; last error: .*boom' ||
    fail "poison reason: $(rcli XRANGE suki:dead - +)"
[ "$(group_pending)" = 0 ] || fail "pending $(group_pending)"
[ "$(rcli EXISTS suki:seen:b1)" = 0 ] || fail "failed event marked as seen"
ok "plugin failure: not applied, last error kept, poison after 2 deliveries"

# A request the host refuses for what the event says (a 600-byte subject
# makes the job key too long) is refused again on every retry: it is
# dead-lettered as invalid at once, with the event, not retried into poison.
long=$(printf 'x%.0s' $(seq 1 600))
lid=$(rcli XADD suki:events '*' event '{"type":"meeting.held","client":"acme","data":{"ticket":"'"$long"'"}}')
wait_for 10 '[ "$(stat invalid)" = 1 ]' || fail "long subject: invalid $(stat invalid)"
rcli XRANGE suki:dead - + | grep -q 'job key too long' ||
    fail "long subject: dead letter $(rcli XRANGE suki:dead - +)"
rcli XRANGE suki:dead - + | grep -q "$lid" || fail "long subject: source"
rcli XRANGE suki:dead - + | grep -q "\"ticket\":\"$long\"" || fail "long subject: payload"
[ "$(stat poison)" = 1 ] || fail "long subject: poison $(stat poison)"
[ "$(group_pending)" = 0 ] || fail "long subject: pending $(group_pending)"
ok "a refused request is dead-lettered at once"
stop_sukid a || fail "exit status $?"

# Read ahead: batches of 4 and a backlog of 60 events, so the profiles of
# a batch are read before the applies of the batches before it run.
rcli FLUSHALL >/dev/null
CONF2=$T/sukid2.conf
PLUGINS_DIR=$T/plug TEMPLATES_DIR=$top_srcdir/conf/templates \
INTAKE_EXTRA='batch = 4; max_deliveries = 2;' write_conf "$CONF2" '
timezone = "America/New_York";
rules = ( { name = "fu"; use = "followup"; on = [ "meeting.held" ];
            after = "3d"; at_local = "09:00";
            notify = [ "manager" ]; template = "followup-reminder"; } );'
rcli SET suki:client:broken oops >/dev/null
rcli SET suki:job:jbroken oops >/dev/null
bad= jbad=
for i in $(seq 1 60); do
    case $i in
    5) ev='{"type":"client.updated","client":"z","data":{"timezone":"Asia/Manila"}}' ;;
    10) ev='{"type":"meeting.held","client":"z","at":"'"$at"'"}' ;;
    22) ev='{"type":"meeting.held","client":"broken"}' ;;
    30) ev='{"type":"meeting.held","client":"jbroken","id":"j1"}' ;;
    40) ev='{"type":"meeting.held","client":"acme:ph 2"}' ;;
    *) ev="{\"type\":\"meeting.held\",\"client\":\"f$i\"}" ;;
    esac
    sid=$(rcli XADD suki:events '*' event "$ev")
    [ "$i" = 22 ] && bad=$sid
    [ "$i" = 30 ] && jbad=$sid
done
start_sukid b "$CONF2"
wait_for 10 '[ "$(stat applied)" = 58 ]' || fail "read ahead: applied $(stat applied)"
zkey=$(rcli HKEYS suki:job:z)
[ "$(rcli ZSCORE suki:jobs "$zkey")" = "$due_ms" ] ||
    fail "time zone from an earlier batch not seen: due $(rcli ZSCORE suki:jobs "$zkey")"
[ "$(rcli ZCARD suki:jobs)" = 57 ] || fail "jobs: $(rcli ZCARD suki:jobs)"
# a client id escaped in job keys names its job hash the same way
[ "$(rcli HLEN 'suki:job:acme%3Aph%202')" = 1 ] || fail "escaped client's job hash"
[ "$(rcli HGET suki:client-events 'acme:ph 2')" = 1 ] || fail "escaped client's profile"
wait_for 5 '[ -n "$(rcli HGET suki:lasterr "$bad")" ]' || fail "broken: no last error"
rcli HGET suki:lasterr "$bad" | grep -q "cannot read the client's profile: WRONGTYPE" ||
    fail "broken: last error $(rcli HGET suki:lasterr "$bad")"
# a job hash of the wrong type: the event is not applied at all (its
# profile counter and de-duplication marker are not written either)
wait_for 5 '[ -n "$(rcli HGET suki:lasterr "$jbad")" ]' || fail "jbroken: no last error"
rcli HGET suki:lasterr "$jbad" | grep -q "cannot apply: key suki:job:jbroken is a string" ||
    fail "jbroken: last error $(rcli HGET suki:lasterr "$jbad")"
[ -z "$(rcli HGET suki:client-events jbroken)" ] || fail "jbroken: half applied"
[ "$(rcli EXISTS suki:seen:j1)" = 0 ] || fail "jbroken: marked as seen"
ok "read ahead: earlier batches' profiles seen; a broken profile or job hash fails its own event only"
stop_sukid b || fail "exit status $?"
