#!/bin/sh
# intake_order.sh - events applied out of order: the event's `at` decides,
# not the order of arrival (docs/ARCHITECTURE.md, "Events out of order").
# An entry read by a consumer that died is claimed and applied after newer
# events of its client, and producers deliver out of order:
#  - a contract.signed older than the applied contract.terminated schedules
#    no renewal alerts; one older than a contract.updated does not move the
#    alerts back;
#  - an older client.updated does not overwrite a newer profile field (the
#    fields only it sets are written), neither in Redis nor in the view the
#    rules of later events of the same batch see;
#  - a follow-up whose `unless` contact (later `at`) arrived first is not
#    scheduled, and a contact older than the meeting does not cancel it;
#  - in order, everything behaves as before, and an event dated after its
#    arrival is ordered by its arrival;
#  - an event refused for good (dead-lettered) lends its profile fields to
#    no later event of the batch;
#  - past intake.order_window the markers are gone and events apply in the
#    order they arrive.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID" "$SUKICTL"
mkdir -p "$T/plug"
for so in followup renewal; do
    [ -f "$top_builddir/plugins/.libs/$so.so" ] || fail "$so.so not built"
    ln -s "$top_builddir/plugins/.libs/$so.so" "$T/plug/"
done

start_redis
RULES='
timezone = "America/New_York";
rules = ( { name = "fu"; use = "followup"; on = [ "meeting.held" ];
            after = "3d"; at_local = "09:00"; unless = [ "contact.*" ];
            notify = [ "manager" ]; template = "followup-reminder"; },
          { name = "ren"; use = "renewal"; on = [ "contract.signed", "contract.updated" ];
            before = [ "30d", "7d" ]; unless = [ "contract.terminated" ];
            notify = [ "manager" ]; template = "renewal-alert"; },
          { name = "refuse"; use = "followup"; on = [ "client.created" ];
            after = "1d"; notify = [ "manager" ]; template = "followup-reminder"; } );'
CONF=$T/sukid.conf
PLUGINS_DIR=$T/plug TEMPLATES_DIR=$top_srcdir/conf/templates CLAIM_IDLE=3s \
    write_conf "$CONF" "$RULES"
"$SUKID" -t -c "$CONF" || fail "config refused"

iso() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
H2=$(iso '-2 hours')
H1=$(iso '-1 hour')
E60=$(date -u -d '+60 days' +%F)
E90=$(date -u -d '+90 days' +%F)
ev() { rcli XADD suki:events '*' event "$1" >/dev/null; }
signed() { ev '{"type":"contract.signed","client":"'"$1"'","at":"'"$2"'","data":{"contract":"K","ends_at":"'"${3:-$E60}"'"}}'; }
updated() { ev '{"type":"contract.updated","client":"'"$1"'","at":"'"$2"'","data":{"contract":"K","ends_at":"'"$3"'"}}'; }
terminated() { ev '{"type":"contract.terminated","client":"'"$1"'","at":"'"$2"'","data":{"contract":"K"}}'; }
meeting() { ev '{"type":"meeting.held","client":"'"$1"'","at":"'"$2"'"}'; }
contact() { ev '{"type":"contact.call","client":"'"$1"'","at":"'"$2"'"}'; }

# An entry read by a consumer that then died: claimed once idle for
# claim_idle (3 s), after the newer events behind it were applied.
rcli XGROUP CREATE suki:events sukid 0 MKSTREAM >/dev/null
signed ghost "$H2"
[ "$(rcli XREADGROUP GROUP sukid dead-consumer COUNT 1 STREAMS suki:events '>' | grep -c contract.signed)" = 1 ] ||
    fail "the dead consumer did not read the entry"
terminated ghost "$H1"
# producers out of order, and the same in order
terminated c-late "$H1"
signed c-late "$H2"
signed c-inorder "$H2"
terminated c-inorder "$H1"
signed c-live "$H2"
updated c-moved "$H1" "$E90"
signed c-moved "$H2" "$E60"
# the newer event's 30d alert has passed; the older one would name it
updated c-slot "$H1" "$(date -u -d '+20 days' +%F)"
signed c-slot "$H2" "$E60"
ev '{"type":"client.updated","client":"p1","at":"'"$H1"'","data":{"email":"new@p1.example","timezone":"Asia/Manila"}}'
ev '{"type":"client.updated","client":"p1","at":"'"$H2"'","data":{"email":"old@p1.example","name":"P One","timezone":"America/Chicago"}}'
# dated a year ahead: ordered by its arrival, so it does not outrank the
# next event
ev '{"type":"client.updated","client":"p2","at":"'"$(iso '+1 year')"'","data":{"email":"ahead@p2.example"}}'
ev '{"type":"client.updated","client":"p2","data":{"email":"now@p2.example"}}'
DAY=$(TZ=Asia/Manila date -d '+10 days' +%F)
meeting p1 "${DAY}T10:00:00+08:00"
contact f-late "$H1"
meeting f-late "$H2"
meeting f-early "$H1"
contact f-early "$H2"
meeting f-inorder "$H2"
contact f-inorder "$H1"
meeting f-live "$H2"
meeting f-again "$H1"
meeting f-again "$H2"
# refused for good: its job key is too long, so it is dead-lettered; the
# meeting after it in the same batch must not see its time zone
long=$(printf 'x%.0s' $(seq 1 600))
ev '{"type":"client.created","client":"r1","data":{"timezone":"Asia/Manila","ticket":"'"$long"'"}}'
meeting r1 "${DAY}T10:00:00+08:00"
start_sukid a "$CONF"
wait_for 20 '[ "$(stat applied)" = 26 ]' || fail "applied $(stat applied), want 26"
[ "$(stat invalid)" = 1 ] || fail "invalid $(stat invalid)"
[ "$(group_pending)" = 0 ] || fail "pending $(group_pending)"

jobs() { rcli HKEYS "suki:job:$1" | grep . | sort | tr '\n' ' '; }
[ -z "$(jobs ghost)" ] || fail "claimed contract.signed after its termination: $(jobs ghost)"
[ -z "$(jobs c-late)" ] || fail "older contract.signed after the termination: $(jobs c-late)"
[ -z "$(jobs c-inorder)" ] || fail "in order: $(jobs c-inorder)"
[ "$(jobs c-live)" = "ren:c-live:K:30d ren:c-live:K:7d " ] || fail "live contract: $(jobs c-live)"
rcli HGET suki:job:c-moved ren:c-moved:K:30d | grep -q "\"ends_at\":\"$E90\"" ||
    fail "older contract.signed moved the alerts back: $(rcli HGET suki:job:c-moved ren:c-moved:K:30d)"
[ "$(jobs c-slot)" = "ren:c-slot:K:7d " ] || fail "older contract.signed revived a passed alert: $(jobs c-slot)"
ok "renewal: an older contract.signed neither revives terminated alerts nor moves updated ones"

[ "$(rcli HGET suki:client:p1 email)" = new@p1.example ] ||
    fail "older client.updated overwrote the email: $(rcli HGET suki:client:p1 email)"
[ "$(rcli HGET suki:client:p1 timezone)" = Asia/Manila ] ||
    fail "older client.updated overwrote the time zone: $(rcli HGET suki:client:p1 timezone)"
[ "$(rcli HGET suki:client:p1 name)" = "P One" ] || fail "the older event's own field not written"
# 09:00 in Manila three days after the meeting (the newer zone), in the view
# the rules of the same batch saw
due_ms=$(($(date -d "$(date -d "$DAY +3 days" +%F)T01:00:00Z" +%s) * 1000))
[ "$(rcli ZSCORE suki:jobs fu:p1::)" = "$due_ms" ] ||
    fail "the rules saw the older time zone: due $(rcli ZSCORE suki:jobs fu:p1::), want $due_ms"
[ "$(rcli HGET suki:client:p2 email)" = now@p2.example ] ||
    fail "an event dated ahead outranked a later one: $(rcli HGET suki:client:p2 email)"
ok "profile: per field, the newer event's value stays"

[ -z "$(jobs f-late)" ] || fail "follow-up scheduled after a later contact: $(jobs f-late)"
[ "$(jobs f-early)" = "fu:f-early:: " ] || fail "an older contact cancelled the follow-up: $(jobs f-early)"
[ -z "$(jobs f-inorder)" ] || fail "in order: $(jobs f-inorder)"
[ "$(jobs f-live)" = "fu:f-live:: " ] || fail "follow-up: $(jobs f-live)"
h1ms=$(($(date -d "$H1" +%s) * 1000))
rcli HGET suki:job:f-again fu:f-again:: | grep -q "\"a\":$h1ms" ||
    fail "an older meeting replaced the newer one's follow-up: $(rcli HGET suki:job:f-again fu:f-again::)"
ok "follow-up: only a contact after the meeting cancels it, whatever arrives first"

# (the global zone, New York: the meeting is on the day before there)
nyday=$(TZ=America/New_York date -d "${DAY}T10:00:00+08:00" +%F)
r1due=$(($(date -d "TZ=\"America/New_York\" $(date -d "$nyday +3 days" +%F) 09:00" +%s) * 1000))
[ "$(rcli ZSCORE suki:jobs fu:r1::)" = "$r1due" ] ||
    fail "a dead-lettered event's time zone was seen: due $(rcli ZSCORE suki:jobs fu:r1::), want $r1due"
[ -z "$(rcli HGET suki:client:r1 timezone)" ] || fail "dead-lettered profile written"
ok "a dead-lettered event's profile fields are not seen by later events"

# ghost, c-late, c-moved, c-slot, p1, f-late, f-early and f-again each
# lost a part to a newer event
[ "$(stat outdated)" = 8 ] || fail "outdated $(stat outdated), want 8"
[ "$(rcli TTL suki:at:ren:c-late:K:)" -gt 2500000 ] || fail "marker TTL: $(rcli TTL suki:at:ren:c-late:K:)"
stop_sukid a || fail "exit status $?"

# Past the window the markers are gone: the older contract.signed is
# applied as it arrives.
rcli FLUSHALL >/dev/null
CONF2=$T/sukid2.conf
PLUGINS_DIR=$T/plug TEMPLATES_DIR=$top_srcdir/conf/templates \
    INTAKE_EXTRA='order_window = "3s";' write_conf "$CONF2" "$RULES"
start_sukid b "$CONF2"
terminated w2 "$H1"
signed w2 "$H2"
terminated w "$H1"
wait_for 10 '[ "$(stat applied)" = 3 ]' || fail "window: applied $(stat applied)"
[ -z "$(jobs w2)" ] || fail "window: within it: $(jobs w2)"
[ "$(rcli EXISTS suki:at:ren:w:K:)" = 1 ] || fail "window: no marker"
wait_for 10 '[ "$(rcli EXISTS suki:at:ren:w:K:)" = 0 ]' || fail "window: marker kept"
signed w "$H2"
wait_for 10 '[ "$(stat applied)" = 4 ]' || fail "window: applied $(stat applied)"
[ "$(jobs w)" = "ren:w:K:30d ren:w:K:7d " ] || fail "window: past it: $(jobs w)"
ok "past order_window events apply in arrival order"
stop_sukid b || fail "exit status $?"
