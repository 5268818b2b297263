#!/bin/bash
# report_send.sh - sending the monthly reports against a real redis-server
# and a real SMTP server (aiosmtpd), with the shipped templates and two
# sukid: at start every sukid makes sure the next report's planner job
# exists (one key per month, due on reports.monthly.day at at in Manila);
# the previous month's planner, made due now, gives each manager the report
# of their clients and boss@ the roll-up, each once although two daemons
# run, one of them is killed -9 and the planner runs a second time; the
# mail parses clean in English and Tagalog, the HTML part holds the bar
# chart and references nothing remote; sukictl report --send sends again
# on request; sukid -t refuses a report template without the chart's
# {{#items}} and a reports.monthly without its template.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$PY"
"$PY" -c 'import aiosmtpd' 2>/dev/null || { echo "FAIL: cannot run here: python module aiosmtpd not found"; exit 1; }

start_redis
"$PY" "$top_srcdir/tests/integration/smtp_server.py" --dir "$T/mail" \
    --port 0 --port-file "$T/smtp.port" >"$T/smtp.log" 2>&1 &
lib_track $!
wait_for 10 '[ -s "$T/smtp.port" ]' || fail "smtp server did not start"
SMTP_PORT=$(cat "$T/smtp.port")
"$PY" "$top_srcdir/tests/integration/report_events.py" "$T" || fail "event generator"
read -r PM PPM CUR <"$T/months"

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
digests = { locales = [ "Ben@Example.ph tl" ]; };
rules = (
  { name = "contract-renewal"; use = "renewal";
    on = [ "contract.signed", "contract.renewed" ]; anchor = "ends_at";
    before = [ "7d" ]; notify = [ "manager" ]; template = "renewal-alert"; }
);
reports = { monthly = { day = 3; at = "07:15"; timezone = "Asia/Manila";
                        to = [ "manager", "boss@example.ph" ]; }; };
http = { listen = ""; };
daemon = { shutdown_timeout = "5s"; };
CONFEOF
"$SUKID" -t -c "$CONF" >"$T/check.out" 2>&1 || { cat "$T/check.out"; fail "sukid -t refused the config"; }

# sukid -t: a report template without the chart's list, a missing template
mkdir -p "$T/tmpl-bad"
cp "$top_srcdir"/conf/templates/*.tmpl "$T/tmpl-bad/"
printf 'subject: report\n--- text\n{{report.month}}\n' >"$T/tmpl-bad/monthly-report.en.tmpl"
sed "s|$top_srcdir/conf/templates|$T/tmpl-bad|" "$CONF" >"$T/bad1.conf"
"$SUKID" -t -c "$T/bad1.conf" >"$T/bad1.out" 2>&1 && fail "sukid -t took a report template without {{#items}}"
line=$(grep -n '^reports' "$T/bad1.conf" | cut -d: -f1)
grep -q "^$T/bad1.conf:$line: reports.monthly: template 'monthly-report' ($T/tmpl-bad/monthly-report.en.tmpl) has no {{#items}}" "$T/bad1.out" ||
    { cat "$T/bad1.out"; fail "no FILE:LINE for the template without a chart"; }
sed 's|to = \[ "manager", "boss@example.ph" \]; };|to = [ "manager", "boss@example.ph" ]; template = "nope"; };|' "$CONF" >"$T/bad2.conf"
"$SUKID" -t -c "$T/bad2.conf" >"$T/bad2.out" 2>&1 && fail "sukid -t took a missing report template"
grep -q "bad2.conf:$line: reports.monthly: no template 'nope'" "$T/bad2.out" || { cat "$T/bad2.out"; fail "missing template message"; }
sed 's|at = "07:15"|at = "25:00"|' "$CONF" >"$T/bad3.conf"
"$SUKID" -t -c "$T/bad3.conf" >"$T/bad3.out" 2>&1 && fail "sukid -t took at 25:00"
"$SUKID" -c "$T/bad3.conf" >"$T/bad3s.out" 2>&1; rc=$?
[ $rc = 78 ] || fail "sukid with at 25:00: exit $rc, want 78"
grep -q "bad3.conf:$line: reports.monthly: 'at' must be a local time" "$T/bad3.out" || { cat "$T/bad3.out"; fail "25:00 message"; }
sed 's|timezone = "Asia/Manila";$|timezone = "Asia/Atlantis";|' "$CONF" >"$T/bad4.conf"
"$SUKID" -t -c "$T/bad4.conf" >"$T/bad4.out" 2>&1 && fail "sukid -t took an unknown report timezone"
grep -q "bad4.conf:$line: reports.monthly: unknown timezone \"Asia/Atlantis\"" "$T/bad4.out" || { cat "$T/bad4.out"; fail "timezone message"; }
ok "sukid -t refuses bad reports.monthly configurations with FILE:LINE"

start_sukid a "$CONF"
start_sukid b "$CONF"
# The next report's planner: this month's, on the 3rd at 07:15 Manila
# (next month's once that passed).
read -r NEXT NEXT_DUE <<EOF2
$("$PY" -c '
import datetime, zoneinfo
z = zoneinfo.ZoneInfo("Asia/Manila")
n = datetime.datetime.now(z)
first = n.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
due = n.replace(day=3, hour=7, minute=15, second=0, microsecond=0)
covers = (first - datetime.timedelta(days=1)).strftime("%Y-%m")
if due <= n:
    nxt = (first + datetime.timedelta(days=32)).replace(day=1)
    due = nxt.replace(day=3, hour=7, minute=15)
    covers = n.strftime("%Y-%m")
print(covers, int(due.timestamp() * 1000))')
EOF2
wait_for 10 "[ \"\$(rcli ZSCORE suki:jobs '~report:~report:~plan:$NEXT')\" = $NEXT_DUE ]" ||
    fail "planner for $NEXT not scheduled at $NEXT_DUE: $(rcli ZRANGE suki:jobs 0 -1 WITHSCORES)"
[ "$(rcli HLEN suki:job:~report)" = 1 ] || fail "two planners: $(rcli HKEYS suki:job:~report)"
ok "the next report ($NEXT) is scheduled once, on the 3rd at 07:15 Manila"

for f in events1 events2; do
    while read -r line; do rcli XADD suki:events '*' event "$line" >/dev/null; done <"$T/$f.jsonl"
done
n=$(($(wc -l <"$T/events1.jsonl") + 1))
wait_for 30 "[ \"\$(rcli HGET suki:stats events_applied)\" = $n ] && [ \"\$(rcli HGET suki:stats events_duplicate)\" = 3 ]" ||
    fail "events not applied: $(rcli HGETALL suki:stats)"

# The previous month's planner, due now (as on the 3rd at 07:15).
plan() {
    now=$(($(date +%s) * 1000))
    rcli HSET suki:job:~report "~report:~report:~plan:$PM" "{\"d\":$1}" >/dev/null
    rcli ZADD suki:jobs "$1" "~report:~report:~plan:$PM" >/dev/null
}
DUE=$(($(date +%s) * 1000))
plan "$DUE"
wait_for 30 '[ "$(ls "$T/mail"/msg-*.json 2>/dev/null | wc -l)" -ge 4 ]' ||
    fail "reports not sent: $(ls "$T/mail" | wc -l) files; $(rcli HKEYS suki:job:~report)"
# kill one daemon, run the planner again: the same jobs, nothing sent twice
stop_sukid a KILL
plan "$DUE"
wait_for 20 '[ -z "$(rcli HKEYS suki:job:~report | grep -v "~plan:$CUR")" ]' ||
    fail "report jobs left: $(rcli HKEYS suki:job:~report)"
start_sukid a "$CONF"
sleep 3 # a second send would show up here
"$PY" - "$T/mail" "$PM" <<'PYEOF' || fail "report mail"
import email, email.policy, glob, json, re, sys
d, pm = sys.argv[1], sys.argv[2]
got = {}
for f in sorted(glob.glob(d + "/msg-*.json")):
    meta = json.load(open(f))
    m = email.message_from_bytes(open(f[:-5] + ".eml", "rb").read(),
                                 policy=email.policy.default)
    assert not m.defects, (f, m.defects)
    for r in meta["rcpt_tos"]:
        assert r not in got, "two messages to " + r
        got[r] = m
assert set(got) == {"ana@example.ph", "ben@example.ph", "carla@example.ph",
                    "boss@example.ph"}, sorted(got)
def body(m, t):
    p = m.get_body(preferencelist=(t,))
    assert p is not None, (t, m["Subject"])
    return p.get_content()
for r, m in got.items():
    h = body(m, "html")
    low = h.lower()
    # the chart: one bar (a coloured cell, width in percent) per event type
    bars = re.findall(r'<td width="(\d+)%" bgcolor="#2b6cb0"', h)
    assert bars and "100" in bars, (r, bars)
    for bad in ("<script", "src=", "http://", "https://", "url(", "@import"):
        assert bad not in low, (r, bad)
    assert pm in m["Subject"], m["Subject"]
ana, ben, carla, boss = (got[x + "@example.ph"] for x in ("ana", "ben", "carla", "boss"))
t = body(ana, "plain")
assert ana["Subject"].startswith("Your accounts in " + pm), ana["Subject"]
assert "Deals won:           2 (PHP 15,500.50)" in t, t
assert "Deals lost:          1 (PHP 999.99)" in t, t
assert "client.created: 4" in t and "meeting.held: 2" in t, t
assert "Contracts ending within 60 days: 1" in t and "contract C-45 ends" in t, t
assert len(re.findall(r'bgcolor="#2b6cb0"', body(ana, "html"))) == 5, body(ana, "html")
t = body(ben, "plain")
assert ben["Subject"].startswith("Ang iyong mga account noong " + pm), ben["Subject"]
assert "Magandang umaga" in t and "Nalutas na reklamo:      1 (karaniwang 48.0 oras" in t, t
assert "Bukas pa:                1" in t and "Mga kontratang matatapos sa loob ng 60 araw: 0" in t, t
assert 'lang="tl"' in body(ben, "html"), body(ben, "html")
t = body(carla, "plain")
assert "Unsubscribes:        1" in t and "Bounces:             1" in t, t
t = body(boss, "plain")
assert boss["Subject"].startswith("All accounts in " + pm), boss["Subject"]
assert "(3 managers)" in t and "Deals won:           2 (PHP 15,500.50)" in t, t
assert "Complaints opened:   3" in t and "complaint.opened: 3" in t, t
print("sent once each:", sorted(got))
PYEOF
ok "each manager got their report and boss@ the roll-up, once, in English and Tagalog, with a chart"
# left: the next month's planner only (the restart did not bring back the
# one that ran), due on the 3rd of next month
[ "$(rcli HKEYS suki:job:~report)" = "~report:~report:~plan:$CUR" ] ||
    fail "report jobs after the restart: $(rcli HKEYS suki:job:~report)"
[ "$(rcli EXISTS "suki:report-sent:$PM")" = 1 ] || fail "no report-sent marker for $PM"
ok "after a restart only the next month's planner ($CUR) is scheduled"

# sukictl report --send: again, on request, for one manager
before=$(ls "$T/mail"/msg-*.json | wc -l)
sukictl report --month "$PM" --manager carla@example.ph --send >"$T/send.out" || fail "report --send: $(cat "$T/send.out")"
grep -q "^report $PM for carla@example.ph queued" "$T/send.out" || fail "report --send said: $(cat "$T/send.out")"
wait_for 20 '[ "$(ls "$T/mail"/msg-*.json | wc -l)" = $((before + 1)) ]' || fail "report --send sent nothing"
sleep 2
[ "$(ls "$T/mail"/msg-*.json | wc -l)" = $((before + 1)) ] || fail "report --send sent more than one"
last=$(ls -t "$T/mail"/msg-*.json | head -1)
"$PY" -c 'import json, sys; assert json.load(open(sys.argv[1]))["rcpt_tos"] == ["carla@example.ph"]' "$last" ||
    fail "report --send went to $(cat "$last")"
ok "sukictl report --send sends one manager's report now"
