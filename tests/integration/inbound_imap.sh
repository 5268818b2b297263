#!/bin/sh
# inbound_imap.sh - replies and bounces read back from a real Dovecot
# (dovecot_lib.sh: its own config in $T, IMAPS with a self-signed
# certificate) by sukid's poller, mail put there with imaplib APPEND:
#   1. an out-of-office reply to a client-facing message does nothing
#      (counted), and the client's real reply becomes contact.email for
#      that client, which cancels the follow-up (unless contact.*);
#   2. a 5.x.x DSN for a campaign message suppresses the address and
#      becomes email.bounced; the next campaign skips the address; a
#      4.x.x one is counted only;
#   3. a complaint (ARF) suppresses and becomes email.complained;
#   4. malformed mail (truncated MIME, 10,000 parts, a 20 MB message, bad
#      encodings) is counted and skipped, and what follows is still read;
#   5. kill -9 while 300 replies are being processed: after a restart
#      every one was turned into exactly one event;
#   6. sukictl inbound status and suki_inbound_messages_total say so.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/dovecot_lib.sh"
need redis-server redis-cli curl "$SUKID" "$SUKICTL"
P=$SUKI_PREFIX
mkdir -p "$T/plug" "$T/templates" "$T/spool"
ln -s "$top_builddir/plugins/.libs/followup.so" "$T/plug/" ||
    fail "followup.so not built"
cat >"$T/templates/thanks.en.tmpl" <<'EOT'
subject: Thank you for meeting us, {{client.name}}
--- text
Thank you for your time today.
EOT
cat >"$T/templates/nudge.en.tmpl" <<'EOT'
subject: No answer yet from {{client.name}}
--- text
{{client.name}} has not answered; call them.
EOT
cat >"$T/templates/promo.en.tmpl" <<'EOT'
subject: An offer for {{client.name}}
--- text
An offer. Unsubscribe: {{unsubscribe_url}}
EOT

start_redis
start_dovecot
printf 'secret\n' >"$T/imap.pass"
chmod 600 "$T/imap.pass"
HTTP_PORT=$(free_port)
CONF=$T/sukid.conf
cat >"$CONF" <<EOC
redis = { url = "redis://127.0.0.1:$REDIS_PORT/0"; prefix = "$P";
          command_timeout = "5s"; connect_timeout = "2s"; };
intake = { stream = "$P:events"; block = "200ms"; claim_idle = "1s"; };
plugins = { dir = "$T/plug"; };
templates = { dir = "$T/templates"; };
transports = { email = { url = "spool://$T/spool";
                         from = "Tindahan <test@example.com>"; }; };
rules = (
  { name = "thanks"; use = "followup"; on = [ "meeting.held" ];
    after = "1s"; notify = [ "client" ]; template = "thanks"; },
  { name = "nudge"; use = "followup"; on = [ "meeting.held" ];
    after = "2h"; unless = [ "contact.*" ]; notify = [ "manager" ];
    template = "nudge"; } );
http = { listen = "127.0.0.1:$HTTP_PORT";
         public_url = "http://127.0.0.1:$HTTP_PORT"; };
inbound = { url = "imaps://127.0.0.1:$IMAPS_PORT/INBOX"; username = "suki";
            password_file = "$T/imap.pass"; ca_file = "$T/dc/cert.pem";
            poll = "1s"; timeout = "10s"; };
# with report counters too: counting a reminder keeps the sent record
reports = { monthly = { timezone = "Asia/Manila"; }; };
daemon = { shutdown_timeout = "5s"; log_level = "info"; };
EOC
cp "$top_srcdir"/conf/templates/monthly-report.*.tmpl "$T/templates/"
"$SUKID" -t -c "$CONF" || fail "config refused"

n() { rcli HGET "$P:inbound" "n:$1"; }
ev_count() { rcli XRANGE "$P:events" - + | grep -c "\"type\":\"$1\""; }
# the Message-ID of the spooled message to $1 about $2 (a subject word)
msgid_to() {
    for f in "$T"/spool/*.eml; do
        grep -qi "^To: .*$1" "$f" && grep -q "^Subject: .*$2" "$f" &&
            sed -n 's/^Message-ID: *//p' "$f" | tr -d '\r' && return 0
    done
    return 1
}

start_sukid a "$CONF"
# the "other" message start_dovecot put there is read first
wait_for 15 '[ "$(n other)" = 1 ]' ||
    fail "the poller did not read the mailbox: $(rcli HGETALL $P:inbound)"
ok "the poller reads the mailbox over IMAPS"

# ---- 1. replies ---------------------------------------------------------
rcli XADD "$P:events" '*' event '{"type":"client.created","client":"c1","manager":"mgr@tindahan.ph","data":{"name":"Maria","email":"maria@example.ph"}}' >/dev/null
rcli XADD "$P:events" '*' event '{"type":"meeting.held","client":"c1","id":"m1"}' >/dev/null
wait_for 15 'msgid_to maria@example.ph "Thank you"' ||
    fail "no thank-you message to the client"
MID=$(msgid_to maria@example.ph "Thank you")
NUDGE=$(rcli ZRANGE "$P:jobs" 0 -1 | grep '^nudge:c1:')
[ -n "$NUDGE" ] || fail "no follow-up job"
# the record, after the report's "counted" mark (sched-settle.lua's I op)
wait_for 5 '[ "$(rcli GET "$P:sent:$MID")" = "$(printf "c\nthanks:c1::")" ]' ||
    fail "the sent record of $MID is '$(rcli GET "$P:sent:$MID")'; counters: $(rcli --scan --pattern "$P:report:*" | xargs -r -n1 redis-cli -p $REDIS_PORT HGETALL | tr "\n" " ")"

imap_fill ooo "$MID" maria@example.ph || fail "APPEND ooo"
wait_for 15 '[ "$(n autoreply)" = 1 ]' || fail "out-of-office not counted"
sleep 1
[ -n "$(rcli ZSCORE "$P:jobs" "$NUDGE")" ] ||
    fail "the out-of-office reply cancelled the follow-up"
[ "$(ev_count contact.email)" = 0 ] || fail "an out-of-office became an event"
ok "an out-of-office reply is counted and cancels nothing"

imap_fill reply "$MID" maria@example.ph "Re: Thank you for meeting us" ||
    fail "APPEND reply"
wait_for 15 '[ "$(n reply)" = 1 ]' || fail "reply not counted: $(rcli HGETALL $P:inbound)"
wait_for 10 '[ -z "$(rcli ZSCORE "$P:jobs" "$NUDGE")" ]' ||
    fail "the reply did not cancel the follow-up $NUDGE"
ev=$(rcli XRANGE "$P:events" - + | grep '"type":"contact.email"')
echo "$ev" | grep -q '"client":"c1"' || fail "contact.email not for c1: $ev"
echo "$ev" | grep -q '"direction":"in"' || fail "no direction in: $ev"
echo "$ev" | grep -q '"summary":"Re: Thank you for meeting us"' || fail "summary: $ev"
echo "$ev" | grep -q '"id":"inbound:[0-9a-f]\{64\}"' || fail "id: $ev"
echo "$ev" | grep -q '"rule":"thanks"' || fail "rule: $ev"
ok "the client's reply is contact.email (direction in) and cancels the follow-up"

# ---- 2. bounces ---------------------------------------------------------
for i in 2 3 4; do
    rcli HSET "$P:client:c$i" name "Client $i" email "c$i@example.org" segment retail >/dev/null
done
"$SUKICTL" -c "$CONF" campaign create spring --template promo --audience segment=retail >/dev/null ||
    fail "campaign create"
wait_for 20 '[ "$(ls "$T"/spool/*.eml | wc -l)" -ge 4 ] && msgid_to c2@example.org offer && msgid_to c3@example.org offer && msgid_to c4@example.org offer' ||
    fail "campaign messages not sent"
C2=$(msgid_to c2@example.org offer) C3=$(msgid_to c3@example.org offer) C4=$(msgid_to c4@example.org offer)
imap_fill dsn "$C2" c2@example.org 5.1.1 || fail "APPEND dsn"
wait_for 15 '[ "$(n bounce)" = 1 ]' || fail "bounce not counted: $(rcli HGETALL $P:inbound)"
[ "$(rcli SISMEMBER "$P:suppressed" c2@example.org)" = 1 ] || fail "c2 not suppressed"
ev=$(rcli XRANGE "$P:events" - + | grep '"type":"email.bounced"')
echo "$ev" | grep -q '"client":"c2"' || fail "email.bounced: $ev"
echo "$ev" | grep -q '"address":"c2@example.org"' || fail "address: $ev"
echo "$ev" | grep -q '"status":"5.1.1"' || fail "status: $ev"
echo "$ev" | grep -q '"diagnostic":"550 5.1.1 <c2@example.org>: Recipient address rejected"' || fail "diagnostic: $ev"
echo "$ev" | grep -q '"campaign":"spring"' || fail "campaign: $ev"
imap_fill dsn "$C4" c4@example.org 4.4.1 || fail "APPEND dsn 4"
wait_for 15 '[ "$(n delay)" = 1 ]' || fail "delay not counted"
[ "$(rcli SISMEMBER "$P:suppressed" c4@example.org)" = 0 ] || fail "a 4.x.x suppressed"
[ "$(ev_count email.bounced)" = 1 ] || fail "a 4.x.x became an event"
ok "a 5.x.x DSN suppresses and is email.bounced; a 4.x.x is counted only"

# ---- 3. complaints --------------------------------------------------------
imap_fill arf "$C3" c3@example.org || fail "APPEND arf"
wait_for 15 '[ "$(n complaint)" = 1 ]' || fail "complaint not counted"
[ "$(rcli SISMEMBER "$P:suppressed" c3@example.org)" = 1 ] || fail "c3 not suppressed"
ev=$(rcli XRANGE "$P:events" - + | grep '"type":"email.complained"')
echo "$ev" | grep -q '"client":"c3"' || fail "email.complained: $ev"
echo "$ev" | grep -q '"feedback_type":"abuse"' || fail "feedback type: $ev"
ok "a complaint suppresses and is email.complained"

"$SUKICTL" -c "$CONF" campaign create autumn --template promo --audience segment=retail >/dev/null ||
    fail "campaign create autumn"
wait_for 20 '[ "$("$SUKICTL" -c "$CONF" --json campaign status autumn | "$PY" -c "import json,sys; print(json.load(sys.stdin)[\"state\"])")" = completed ]' ||
    fail "autumn did not complete"
[ "$(rcli HGET "$P:cledger:autumn" c2)" = skipped:suppressed ] ||
    fail "the next campaign did not skip the bounced address: $(rcli HGET "$P:cledger:autumn" c2)"
[ "$(rcli HGET "$P:cledger:autumn" c3)" = skipped:suppressed ] ||
    fail "the next campaign did not skip the complainant"
[ "$(rcli HGET "$P:cledger:autumn" c4)" = sent ] || fail "c4 not sent"
ok "the next campaign skips the bounced and the complaining address"

# ---- 4. malformed mail ------------------------------------------------------
imap_fill malformed || fail "APPEND malformed"
imap_fill other || fail "APPEND other"
wait_for 60 '[ "$(n malformed)" = 4 ] && [ "$(n other)" = 2 ]' ||
    fail "malformed mail stalled the poller: $(rcli HGETALL $P:inbound)"
grep -q "malformed (larger than the limit)" "$T/sukid-a.log" || fail "20 MB not refused"
grep -q "malformed (too many MIME parts)" "$T/sukid-a.log" || fail "10,000 parts not refused"
grep -q "malformed (truncated)" "$T/sukid-a.log" || fail "truncation not seen"
ok "malformed mail is counted and skipped, and the next message is read"

# ---- 5. kill -9 while processing -------------------------------------------
before=$(ev_count contact.email)
imap_fill replies 300 "$MID" maria@example.ph || fail "APPEND replies"
wait_for 60 '[ "$(n reply)" -ge 20 ]' || fail "replies not being processed"
stop_sukid a KILL
got=$(n reply)
[ "$got" -lt 301 ] || fail "all replies were done before the kill ($got)"
start_sukid a "$CONF"
wait_for 90 '[ "$(n reply)" = 301 ]' ||
    fail "after the restart: $(n reply) replies, want 301"
after=$(ev_count contact.email)
[ $((after - before)) = 300 ] ||
    fail "$((after - before)) contact.email events for 300 replies"
dup=$(rcli XRANGE "$P:events" - + | grep -o '"id":"inbound:[0-9a-f]*"' | sort | uniq -d | wc -l)
[ "$dup" = 0 ] || fail "$dup event ids twice"
ok "kill -9 during processing ($got of 301 done): every reply is one event"

# ---- 6. status and metrics ----------------------------------------------------
s=$("$SUKICTL" -c "$CONF" inbound status) || fail "inbound status"
echo "$s" | grep -q "reply  *301" || fail "status: $s"
echo "$s" | grep -q "malformed  *4" || fail "status: $s"
echo "$s" | grep -q "last UID done 31[0-9]" || fail "status: $s"
j=$("$SUKICTL" -c "$CONF" --json inbound status) || fail "inbound status --json"
echo "$j" | "$PY" -c 'import json,sys; o=json.load(sys.stdin); k=o["kinds"]; assert (k["reply"],k["bounce"],k["delay"],k["complaint"],k["autoreply"],k["malformed"]) == (301,1,1,1,1,4), o; assert o["polling"] and o["error"] == "", o' ||
    fail "status --json: $j"
m=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '$1 == "suki_inbound_messages_total{kind=\"reply\"}" { print $2 }')
[ -n "$m" ] && [ "$m" -gt 0 ] || fail "metric: '$m'"
# nothing was deleted: every message is still there, and \Seen
"$PY" - "$IMAPS_PORT" "$T/dc/cert.pem" <<'EOP' || fail "mailbox check"
import imaplib, ssl, sys
m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[1]), ssl_context=ssl.create_default_context(cafile=sys.argv[2]))
m.login("suki", "secret")
typ, d = m.select("INBOX")
total = int(d[0])
typ, d = m.search(None, "UNSEEN")
unseen = len(d[0].split())
assert total == 311 and unseen == 0, (total, unseen)
EOP
ok "sukictl inbound status, the metric; nothing deleted, all flagged"
stop_sukid a || fail "sukid did not exit 0"
grep -q "ERROR: AddressSanitizer" "$T/sukid-a.log" && fail "ASan"
exit 0
