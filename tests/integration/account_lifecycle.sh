#!/bin/bash
# account_lifecycle.sh - a whole account's life against a real redis-server
# and a real SMTP server, with the shipped plugins and templates and the
# durations shortened to seconds: client created -> meeting held -> proposal
# sent -> call -> contract signed -> contract end moved -> complaint opened
# -> resolved -> order fulfilled. Asserts the exact set of messages, their
# recipients and times (within a tolerance), and that every cancelled or
# moved reminder did not fire.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$PY"
"$PY" -c 'import aiosmtpd' 2>/dev/null || { echo "FAIL: cannot run here: python module aiosmtpd not found"; exit 1; }

start_redis
"$PY" "$top_srcdir/tests/integration/smtp_server.py" --dir "$T/mail" \
    --port 0 --port-file "$T/smtp.port" >"$T/smtp.log" 2>&1 &
lib_track $!
wait_for 10 '[ -s "$T/smtp.port" ]' || fail "smtp server did not start"
SMTP_PORT=$(cat "$T/smtp.port")

CONF=$T/sukid.conf
cat >"$CONF" <<CONFEOF
redis = { url = "redis://127.0.0.1:$REDIS_PORT/0"; };
intake = { claim_idle = "2s"; block = "200ms"; };
scheduler = { lease = "10s"; };
plugins = { dir = "$top_builddir/plugins/.libs"; };
templates = { dir = "$top_srcdir/conf/templates"; };
timezone = "Asia/Manila";
transports = { email = { url = "smtp://127.0.0.1:$SMTP_PORT"; starttls = "off";
                         from = "Accounts <accounts@example.ph>";
                         retry_initial = "1s"; retry_max = "2s"; }; };
roles = { head-of-sales = "lead@example.ph"; };
rules = (
  { name = "follow-up"; use = "followup"; on = [ "meeting.held", "proposal.sent" ];
    after = "4s"; unless = [ "contact.*", "deal.*" ]; notify = [ "manager" ];
    template = "followup-reminder"; },
  { name = "renewal"; use = "renewal"; on = [ "contract.signed", "contract.updated" ];
    anchor = "ends_at"; before = [ "12s", "6s" ]; unless = [ "contract.terminated" ];
    notify = [ "manager", "client" ]; template = "renewal-alert"; },
  { name = "escalation"; use = "followup"; on = [ "complaint.opened" ]; after = "3s";
    unless = [ "complaint.resolved" ]; notify = [ "role:head-of-sales" ];
    template = "complaint-escalation"; },
  { name = "referral"; use = "followup"; on = [ "order.fulfilled" ]; after = "2s";
    notify = [ "client" ]; template = "referral-request"; }
);
http = { listen = ""; };
CONFEOF
"$SUKID" -t -c "$CONF" >"$T/check.out" 2>&1 ||
    { cat "$T/check.out"; fail "config rejected"; }
start_sukid a "$CONF"

now() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }
ev() { rcli XADD suki:events '*' event "$1" >/dev/null; }

T0=$(date +%s)
ENDS1=$(date -u -d "@$((T0 + 20))" +%Y-%m-%dT%H:%M:%SZ)
ENDS2=$(date -u -d "@$((T0 + 25))" +%Y-%m-%dT%H:%M:%SZ)
ev '{"type":"client.created","client":"acme","data":{"name":"Acme Trading","email":"buyer@acme.example","manager":"maria@example.ph","locale":"en"}}'
ev '{"type":"client.created","client":"bayan","data":{"name":"Bayanihan Coop","email":"opisina@bayan.example","manager":"jose@example.ph","locale":"tl"}}'
ev "{\"type\":\"meeting.held\",\"client\":\"acme\",\"at\":\"$(now)\",\"data\":{\"summary\":\"Q1 plan\"}}"
ev "{\"type\":\"meeting.held\",\"client\":\"bayan\",\"at\":\"$(now)\",\"data\":{\"summary\":\"intro\"}}"
sleep 0.5
ev "{\"type\":\"proposal.sent\",\"client\":\"acme\",\"at\":\"$(now)\",\"data\":{\"amount\":120000,\"currency\":\"PHP\"}}"
ev "{\"type\":\"contract.signed\",\"client\":\"acme\",\"at\":\"$(now)\",\"data\":{\"contract\":\"C-1\",\"ends_at\":\"$ENDS1\"}}"
ev "{\"type\":\"complaint.opened\",\"client\":\"acme\",\"at\":\"$(now)\",\"data\":{\"ticket\":\"T-1\",\"severity\":\"high\",\"summary\":\"late delivery\"}}"
ev "{\"type\":\"complaint.opened\",\"client\":\"acme\",\"at\":\"$(now)\",\"data\":{\"ticket\":\"T-2\",\"severity\":\"low\",\"summary\":\"invoice address\"}}"
ev "{\"type\":\"order.fulfilled\",\"client\":\"acme\",\"at\":\"$(now)\",\"data\":{\"order\":\"SO-5\"}}"
sleep 1
# A call to acme cancels its pending follow-up; resolving T-1 cancels its
# escalation only; the contract end moves 5 s later (so do its alerts).
ev "{\"type\":\"contact.call\",\"client\":\"acme\",\"at\":\"$(now)\",\"data\":{\"direction\":\"out\"}}"
ev "{\"type\":\"complaint.resolved\",\"client\":\"acme\",\"at\":\"$(now)\",\"data\":{\"ticket\":\"T-1\"}}"
ev "{\"type\":\"contract.updated\",\"client\":\"acme\",\"at\":\"$(now)\",\"data\":{\"contract\":\"C-1\",\"ends_at\":\"$ENDS2\"}}"

wait_for 10 '[ "$(stat applied)" = 12 ]' ||
    fail "events not applied: $(rcli HGETALL suki:stats | tr '\n' ' ')"
"$SUKICTL" -c "$CONF" jobs >"$T/jobs.txt" 2>&1
cat "$T/jobs.txt"

# Everything due fires within ~25 s of T0; then give stray ones time.
wait_for 40 '[ $(ls "$T"/mail/msg-*.json 2>/dev/null | wc -l) -ge 6 ]' ||
    fail "only $(ls "$T"/mail/msg-*.json 2>/dev/null | wc -l) messages"
wait_for 10 '[ "$(rcli ZCARD suki:jobs)" = 0 ]' ||
    fail "jobs left: $(rcli ZRANGE suki:jobs 0 -1)"
sleep 2

# One line per delivery: seconds-after-T0 recipient rule subject
"$PY" - "$T/mail" "$T0" >"$T/got.txt" <<'PYEOF'
import email, email.policy, glob, json, os, sys
d, t0 = sys.argv[1], int(sys.argv[2])
for meta in sorted(glob.glob(d + "/msg-*.json")):
    m = json.load(open(meta))
    eml = meta[:-5] + ".eml"
    msg = email.message_from_binary_file(open(eml, "rb"),
                                         policy=email.policy.default)
    job = str(msg["X-Suki-Job"] or "?:?:?")
    parts = job.split(":")
    for r in m["rcpt_tos"]:
        print(round(os.path.getmtime(eml) - t0), r, parts[0],
              parts[2] if len(parts) > 2 else "?")
PYEOF
cat "$T/got.txt"
# expect SECONDS RECIPIENT RULE SUBJECT: exactly one such delivery, at
# SECONDS +-3 after T0.
expect() {
    n=$(awk -v s="$1" -v r="$2" -v u="$3" -v j="$4" \
        '$2 == r && $3 == u && $4 == j && $1 >= s - 3 && $1 <= s + 3' \
        "$T/got.txt" | wc -l)
    [ "$n" -eq 1 ] ||
        fail "want one $3/$4 to $2 at ~$1 s, got $n: $(cat "$T/got.txt")"
}
expect 4 jose@example.ph follow-up ""
expect 2 buyer@acme.example referral SO-5
expect 3 lead@example.ph escalation T-2
expect 13 maria@example.ph renewal C-1
expect 13 buyer@acme.example renewal C-1
expect 19 maria@example.ph renewal C-1
expect 19 buyer@acme.example renewal C-1
total=$(wc -l <"$T/got.txt")
[ "$total" -eq 7 ] || fail "want exactly 7 deliveries, got $total"
ok "7 deliveries to the right people at the right times"
ok "cancelled (call, resolved ticket) and moved (contract end) reminders did not fire"
stop_sukid a || fail "sukid did not stop cleanly"
