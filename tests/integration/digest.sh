#!/bin/bash
# digest.sh - digests against a real redis-server and a real SMTP server,
# with the shipped plugins and templates and durations cut to seconds: the
# held reminders of digest = true rules for managers and roles go out as
# one message per recipient at digests.at (set to the next minute that is
# at least 30 s away, in Asia/Manila), each item once, while two sukid run
# and one of them is killed -9 between hold and send; the client's own mail
# goes out at once; an unless event takes its item out before the digest;
# both locales parse with Python's email module.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$PY"
"$PY" -c 'import aiosmtpd' 2>/dev/null || { echo "FAIL: cannot run here: python module aiosmtpd not found"; exit 1; }

start_redis
"$PY" "$top_srcdir/tests/integration/smtp_server.py" --dir "$T/mail" \
    --port 0 --port-file "$T/smtp.port" >"$T/smtp.log" 2>&1 &
lib_track $!
wait_for 10 '[ -s "$T/smtp.port" ]' || fail "smtp server did not start"
SMTP_PORT=$(cat "$T/smtp.port")

# The digest time: the next Manila minute at least 30 s from now.
AT=$("$PY" -c '
import datetime, zoneinfo
z = zoneinfo.ZoneInfo("Asia/Manila")
t = datetime.datetime.now(z) + datetime.timedelta(seconds=90)
print(t.strftime("%H:%M"))')
AT_EPOCH=$("$PY" -c '
import datetime, zoneinfo, sys
z = zoneinfo.ZoneInfo("Asia/Manila")
n = datetime.datetime.now(z)
h, m = map(int, sys.argv[1].split(":"))
t = n.replace(hour=h, minute=m, second=0, microsecond=0)
if t < n: t += datetime.timedelta(days=1)
print(int(t.timestamp()))' "$AT")

CONF=$T/sukid.conf
cat >"$CONF" <<CONFEOF
redis = { url = "redis://127.0.0.1:$REDIS_PORT/0"; };
intake = { claim_idle = "2s"; block = "200ms"; };
scheduler = { lease = "5s"; };
plugins = { dir = "$top_builddir/plugins/.libs"; };
templates = { dir = "$top_srcdir/conf/templates"; };
timezone = "Asia/Manila";
transports = { email = { url = "smtp://127.0.0.1:$SMTP_PORT"; starttls = "off";
                         from = "Accounts <accounts@example.ph>";
                         retry_initial = "1s"; retry_max = "2s"; }; };
roles = { head-of-sales = "lead@example.ph"; };
digests = { at = "$AT"; timezone = "Asia/Manila";
            locales = [ "Maria@Example.ph tl" ]; };
rules = (
  { name = "follow-up"; use = "followup"; on = [ "meeting.held" ];
    after = "1s"; unless = [ "contact.*" ]; notify = [ "manager" ];
    template = "followup-reminder"; digest = true; },
  { name = "renewal"; use = "renewal"; on = [ "contract.signed" ];
    anchor = "ends_at"; before = [ "8s" ]; notify = [ "manager", "client" ];
    template = "renewal-alert"; digest = true; },
  { name = "escalation"; use = "followup"; on = [ "complaint.opened" ];
    after = "1s"; unless = [ "complaint.resolved" ];
    notify = [ "manager", "role:head-of-sales" ];
    template = "complaint-escalation"; digest = true; }
);
http = { listen = ""; };
daemon = { shutdown_timeout = "5s"; };
CONFEOF
"$SUKID" -t -c "$CONF" >"$T/check.out" 2>&1 || { cat "$T/check.out"; fail "sukid -t refused the digest config"; }

# sukid -t: a digest template without the {{#items}} list, a digests
# section without a template, digest = true with no digests section.
mkdir -p "$T/tmpl-bad"
cp "$top_srcdir"/conf/templates/*.tmpl "$T/tmpl-bad/"
printf 'subject: digest\n--- text\nnothing listed\n' >"$T/tmpl-bad/manager-digest.en.tmpl"
sed "s|$top_srcdir/conf/templates|$T/tmpl-bad|" "$CONF" >"$T/bad1.conf"
"$SUKID" -t -c "$T/bad1.conf" >"$T/bad1.out" 2>&1 && fail "sukid -t took a digest template without a list"
line=$(grep -n '^digests' "$T/bad1.conf" | cut -d: -f1)
grep -q "^$T/bad1.conf:$line: digests: template 'manager-digest' ($T/tmpl-bad/manager-digest.en.tmpl) has no {{#items}}" "$T/bad1.out" ||
    { cat "$T/bad1.out"; fail "no FILE:LINE for the template without a list"; }
sed '/^digests/s|timezone = "Asia/Manila"; *$|timezone = "Asia/Manila"; template = "nope";|' "$CONF" >"$T/bad2.conf"
"$SUKID" -t -c "$T/bad2.conf" >"$T/bad2.out" 2>&1 && fail "sukid -t took a missing digest template"
grep -q "bad2.conf:$line: digests: no template 'nope'" "$T/bad2.out" || { cat "$T/bad2.out"; fail "missing template message"; }
grep -v '^digests\|^ *locales' "$CONF" >"$T/bad3.conf"
"$SUKID" -t -c "$T/bad3.conf" >"$T/bad3.out" 2>&1 && fail "sukid -t took digest = true without digests"
grep -q "bad3.conf:[0-9]*: rule 'follow-up': digest = true needs a digests" "$T/bad3.out" || { cat "$T/bad3.out"; fail "digest without digests message"; }
ok "sukid -t refuses bad digest configurations with FILE:LINE"

sukictl digest bogus 2>"$T/usage.err"; [ $? = 2 ] || fail "digest bogus: want exit 2"
grep -q "unknown subcommand 'bogus'" "$T/usage.err" || fail "digest bogus: $(cat "$T/usage.err")"
sukictl digest send --to not-an-address 2>"$T/usage.err"; [ $? = 2 ] || fail "digest --to without @: want exit 2"
[ "$(sukictl digest list)" = "nothing held" ] || fail "digest list before anything: $(sukictl digest list)"
[ "$(sukictl digest send)" = "nothing held" ] || fail "digest send with nothing held"
[ "$(rcli EXISTS suki:job:~digest)" = 0 ] || fail "digest send queued a job with nothing held"

start_sukid a "$CONF"
start_sukid b "$CONF"

ends=$("$PY" -c 'import datetime; print((datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%SZ"))')
push() { rcli XADD suki:events '*' event "$1" >/dev/null; }
for c in acme:maria@example.ph:Acme%20Trading bayan:maria@example.ph:Bayan%20Foods \
         kubo:juan@example.ph:Kubo%20Hardware dagat:maria@example.ph:Dagat%20Fish; do
    id=${c%%:*}; rest=${c#*:}; mgr=${rest%%:*}; name=${rest#*:}; name=${name//%20/ }
    push "{\"type\":\"client.created\",\"client\":\"$id\",\"data\":{\"name\":\"$name\",\"email\":\"ops@$id.ph\",\"manager\":\"$mgr\",\"timezone\":\"Asia/Manila\"}}"
done
push '{"type":"complaint.opened","client":"acme","data":{"ticket":"T-1","summary":"late delivery"}}'
push "{\"type\":\"contract.signed\",\"client\":\"acme\",\"data\":{\"contract\":\"C-1\",\"ends_at\":\"$ends\"}}"
push '{"type":"meeting.held","client":"bayan","data":{"summary":"kickoff"}}'
push '{"type":"complaint.opened","client":"kubo","data":{"ticket":"T-9"}}'
push '{"type":"complaint.opened","client":"dagat","data":{"ticket":"T-5"}}'
# many more of maria's clients fall due over the "day"
for n in 01 02 03 04 05 06 07 08 09 10; do
    push "{\"type\":\"client.created\",\"client\":\"m$n\",\"data\":{\"name\":\"Tindahan $n\",\"manager\":\"maria@example.ph\"}}"
    push "{\"type\":\"meeting.held\",\"client\":\"m$n\",\"data\":{\"summary\":\"visit $n\"}}"
done

# Held: maria 14 (acme T-1 and C-1, bayan, dagat, m01..m10), juan 1, lead 3.
wait_for 30 '[ "$(rcli HLEN suki:held:maria@example.ph)" = 14 ] && [ "$(rcli HLEN suki:held:lead@example.ph)" = 3 ] && [ "$(rcli HLEN suki:held:juan@example.ph)" = 1 ]' ||
    fail "items not held: maria $(rcli HLEN suki:held:maria@example.ph) lead $(rcli HLEN suki:held:lead@example.ph) juan $(rcli HLEN suki:held:juan@example.ph)"
ok "reminders held for maria, juan and lead"
[ "$(rcli SCARD suki:held-to)" = 3 ] || fail "held-to: $(rcli SMEMBERS suki:held-to)"
# The client's renewal alert went out at once, and nothing else did.
wait_for 15 '[ "$(ls "$T/mail"/msg-*.json 2>/dev/null | wc -l)" -ge 1 ]' || fail "client mail not sent"
"$PY" - "$T/mail" <<'PYEOF' || fail "mail before the digest"
import glob, json, sys
r = [json.load(open(f))["rcpt_tos"] for f in glob.glob(sys.argv[1] + "/msg-*.json")]
assert r == [["ops@acme.ph"]], r
PYEOF
ok "client mail went out immediately; managers' mail held"

# unless: the resolved complaint's items go before the digest.
push '{"type":"complaint.resolved","client":"dagat","data":{"ticket":"T-5"}}'
wait_for 10 '[ "$(rcli HLEN suki:held:maria@example.ph)" = 13 ] && [ "$(rcli HLEN suki:held:lead@example.ph)" = 2 ]' ||
    fail "unless did not drop the held items"
[ -z "$(rcli HKEYS suki:held-by:dagat)" ] || fail "held-by:dagat left: $(rcli HKEYS suki:held-by:dagat)"
ok "unless dropped dagat's held items"
sukictl digest list --to maria@example.ph --json >"$T/list.json" || fail "digest list failed"
"$PY" - "$T/list.json" <<'PYEOF' || fail "digest list --json"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 13, rows
assert {r["client"] for r in rows} == {"acme", "bayan"} | {"m%02d" % i for i in range(1, 11)}, rows
assert {r["rule"] for r in rows} == {"follow-up", "renewal", "escalation"}, rows
assert all(r["to"] == "maria@example.ph" and r["due"].endswith("Z") for r in rows), rows
assert any(r.get("ticket") == "T-1" for r in rows) and any(r.get("contract") == "C-1" for r in rows), rows
PYEOF
[ "$(sukictl digest list | grep -c example.ph)" = 16 ] || fail "digest list: $(sukictl digest list)"
ok "sukictl digest list shows what is held"

# kill -9 between hold and send: the items stay, a restarted sukid sends.
stop_sukid a KILL
[ "$(rcli HLEN suki:held:maria@example.ph)" = 13 ] || fail "kill -9 lost held items"
start_sukid a "$CONF"
ok "held items survive kill -9"

now=$(date +%s)
[ "$now" -lt "$AT_EPOCH" ] || fail "the digest time passed before the test got there ($AT)"
wait_for $((AT_EPOCH - now + 30)) '[ "$(ls "$T/mail"/msg-*.json | wc -l)" -ge 4 ] && [ -z "$(rcli SMEMBERS suki:held-to)" ]' ||
    fail "digests not sent by $AT: $(ls "$T/mail" | wc -l) files, held-to $(rcli SMEMBERS suki:held-to)"
sleep 3 # a second send would show up here
"$PY" - "$T/mail" "$AT_EPOCH" <<'PYEOF' || fail "digest mail"
import email, email.policy, glob, json, sys, os
d, at = sys.argv[1], int(sys.argv[2])
got = {}
for f in sorted(glob.glob(d + "/msg-*.json")):
    meta = json.load(open(f))
    raw = open(f[:-5] + ".eml", "rb").read()
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert not m.defects, (f, m.defects)
    for r in meta["rcpt_tos"]:
        assert r not in got, "two messages to " + r
        got[r] = (m, os.path.getmtime(f))
assert set(got) == {"ops@acme.ph", "maria@example.ph", "juan@example.ph",
                    "lead@example.ph"}, sorted(got)
def body(m, t):
    return m.get_body(preferencelist=(t,)).get_content()
for r in ("maria@example.ph", "juan@example.ph", "lead@example.ph"):
    m, when = got[r]
    assert when >= at - 1, (r, "sent before the digest time", when, at)
    assert m.get_body(preferencelist=("html",)) is not None
maria = got["maria@example.ph"][0]
assert maria["Subject"].startswith("Buod ng mga paalala"), maria["Subject"]
t = body(maria, "plain")
assert "Magandang umaga" in t and "13 bagay para sa 12 kliyente" in maria["Subject"], maria["Subject"]
for i in range(1, 11):
    assert "Tindahan %02d" % i in t and "visit %02d" % i in t, (i, t)
assert t.count("follow-up") == 11, t
for w in ("Acme Trading", "Bayan Foods", "T-1", "C-1", "follow-up",
          "renewal", "escalation", "takdang oras"):
    assert w in t, (w, t)
assert "Dagat" not in t and "T-5" not in t, t
# grouped by client: both of acme's items before bayan's
assert t.index("Acme Trading") < t.index("T-1") < t.index("Bayan Foods"), t
assert t.index("C-1") < t.index("Bayan Foods"), t
juan = got["juan@example.ph"][0]
assert juan["Subject"].startswith("Your digest for"), juan["Subject"]
t = body(juan, "plain")
assert "Kubo Hardware" in t and "T-9" in t and "1 item(s)" in juan["Subject"], t
lead = got["lead@example.ph"][0]
t = body(lead, "plain")
assert "Acme Trading" in t and "Kubo Hardware" in t and "Dagat" not in t, t
assert "2 item(s) for 2 client(s)" in lead["Subject"], lead["Subject"]
h = body(lead, "html")
assert "Kubo Hardware" in h and "<li>" in h, h
PYEOF
ok "one digest per recipient at $AT with every item, both locales"
[ "$(rcli EXISTS suki:held:maria@example.ph)" = 0 ] || fail "maria's items not removed"
[ "$(rcli HLEN suki:job:~digest)" = 0 ] || fail "digest jobs left: $(rcli HKEYS suki:job:~digest)"

# sukictl digest send: now, through the same path.
push '{"type":"meeting.held","client":"kubo","data":{"summary":"review"}}'
wait_for 15 '[ "$(rcli HLEN suki:held:juan@example.ph)" = 1 ]' || fail "kubo follow-up not held"
sukictl digest send --to Juan@Example.ph | grep -q "digest for juan@example.ph queued: 1 item" || fail "digest send"
wait_for 15 '[ "$(ls "$T/mail"/msg-*.json | wc -l)" = 5 ]' || fail "digest send did not send"
"$PY" - "$T/mail" <<'PYEOF' || fail "sent-now digest"
import email, email.policy, glob, json, sys
f = sorted(glob.glob(sys.argv[1] + "/msg-*.json"), key=lambda p: int(p.split("-")[-1][:-5]))[-1]
assert json.load(open(f))["rcpt_tos"] == ["juan@example.ph"], f
m = email.message_from_bytes(open(f[:-5] + ".eml", "rb").read(), policy=email.policy.default)
t = m.get_body(preferencelist=("plain",)).get_content()
assert "follow-up" in t and "Kubo Hardware" in t and "1 item(s)" in m["Subject"], t
PYEOF
[ "$(sukictl digest list)" = "nothing held" ] || fail "still held: $(sukictl digest list)"
ok "sukictl digest send sends now"
stop_sukid a || fail "sukid a did not stop cleanly"
stop_sukid b || fail "sukid b did not stop cleanly"
ok "digest"
