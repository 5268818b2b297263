#!/bin/bash
# report.sh - the monthly report counters and sukictl report against a
# real redis-server: a month of events for three managers (the previous
# calendar month in Asia/Manila, computed now), with events at 00:30 on its
# first day and 23:30 on its last and one just outside each edge, arrivals
# out of order (a complaint resolved before it was opened, a meeting after
# a later deal), duplicate ids in a later batch and a client moving to
# another manager. Run twice: with the shipped rules (sukid reads the
# profile and passes the manager) and without rules (the script reads it).
# The JSON figures must match the model in report_events.py exactly.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$PY"

start_redis
"$PY" "$top_srcdir/tests/integration/report_events.py" "$T" || fail "event generator"
read -r PM PPM CUR <"$T/months"
RULES=$(awk '/^roles = \{/,/^\};/; /^rules = \(/,/^\);/' "$top_srcdir/conf/sukid.conf")
REPORTS='reports = { monthly = { day = 1; at = "08:00"; timezone = "Asia/Manila";
                        to = [ "manager", "boss@example.ph" ]; }; };'

# one configuration per prefix: "suki" with the shipped rules, "nr" without
CONF_R=$T/rules.conf
PLUGINS_DIR=$top_builddir/plugins/.libs TEMPLATES_DIR=$top_srcdir/conf/templates \
    write_conf "$CONF_R" "$RULES
$REPORTS"
CONF_N=$T/norules.conf
SUKI_PREFIX=nr TEMPLATES_DIR=$top_srcdir/conf/templates write_conf "$CONF_N" "$REPORTS"
"$SUKID" -t -c "$CONF_R" >"$T/t.out" 2>&1 || { cat "$T/t.out"; fail "sukid -t refused the rules config"; }

# bad --month values: a clear message, the usage exit code
CONF=$CONF_R
for m in 2026-13 2026-00 26-11 2026-1 2026-11x; do
    sukictl report --month "$m" >/dev/null 2>"$T/m.err"
    rc=$?
    [ $rc = 2 ] || fail "--month $m: exit $rc, want 2"
    grep -q "report: --month $m is not a month YYYY-MM" "$T/m.err" || fail "--month $m: $(cat "$T/m.err")"
done
sukictl report --bogus >/dev/null 2>&1; [ $? = 2 ] || fail "report --bogus: want exit 2"
ok "bad --month and options are usage errors (exit 2) with a clear message"

start_sukid r "$CONF_R"
start_sukid n "$CONF_N"
push_all()
{
    for pre in suki nr; do
        while read -r line; do
            rcli XADD "$pre:events" '*' event "$line" >/dev/null
        done <"$1"
    done
}
push_all "$T/events1.jsonl"
n1=$(wc -l <"$T/events1.jsonl")
wait_for 30 "[ \"\$(rcli HGET suki:stats events_applied)\" = $n1 ] && [ \"\$(rcli HGET nr:stats events_applied)\" = $n1 ]" ||
    fail "first push not applied: $(rcli HGETALL suki:stats) / $(rcli HGETALL nr:stats)"
push_all "$T/events2.jsonl"
wait_for 30 '[ "$(rcli HGET suki:stats events_duplicate)" = 3 ] && [ "$(rcli HGET nr:stats events_duplicate)" = 3 ] && [ "$(rcli HGET suki:stats events_applied)" = $((n1 + 1)) ] && [ "$(rcli HGET nr:stats events_applied)" = $((n1 + 1)) ]' ||
    fail "second push: $(rcli HGETALL suki:stats) / $(rcli HGETALL nr:stats)"
ok "$((n1 + 1)) events applied, 3 duplicates refused, on both prefixes"

check()
{
    # check CONF LABEL: every month's --json figures against the model
    for m in "$PM" "$PPM" "$CUR"; do
        "$SUKICTL" -c "$1" report --month "$m" --json >"$T/$2-$m.json" 2>"$T/$2.err" ||
            fail "$2: report --month $m failed: $(cat "$T/$2.err")"
    done
    "$PY" - "$T" "$2" "$PM" "$PPM" "$CUR" <<'PYEOF' || fail "$2: the report figures are not exact"
import json, sys
T, label, months = sys.argv[1], sys.argv[2], sys.argv[3:]
exp = json.load(open(T + "/expected.json"))
for m in months:
    got = {}
    for line in open("%s/%s-%s.json" % (T, label, m)):
        o = json.loads(line)
        assert o["month"] == m, o
        got[o["manager"]] = o
    want = exp.get(m, {})
    # managers with reminders sent this month but no events: nothing else
    for mgr in set(got) - set(want):
        assert got[mgr]["events"] == {} and m == months[2], (m, got[mgr])
    assert set(want) <= set(got), (m, sorted(got), sorted(want))
    for mgr, w in want.items():
        g = got[mgr]
        for k, v in w.items():
            assert g[k] == v, (m, mgr, k, g[k], v)
        for k in ("reminders_sent", "campaign_sent"):
            assert isinstance(g[k], int), (k, g)
        assert isinstance(g["contracts_ending"], list), g
pm = {o["manager"]: o for o in map(json.loads, open("%s/%s-%s.json" % (T, label, months[0])))}
# a few figures by hand, should the model and the code agree wrongly
a, b, c = pm["ana@example.ph"], pm["ben@example.ph"], pm["carla@example.ph"]
assert a["deals_won"] == 2 and a["deals_won_amount"] == 15500.5, a
assert a["deals_lost"] == 1 and a["deals_lost_amount"] == 999.99, a
assert a["events"]["client.created"] == 4 and a["events"]["meeting.held"] == 2, a
assert b["complaints_opened"] == 2 and b["complaints_resolved"] == 1, b
assert b["complaints_open"] == 1 and b["resolve_hours_avg"] == 48.0, b
assert b["events"]["meeting.held"] == 1 and b["events"]["client.updated"] == 1, b
assert c["unsubscribes"] == 1 and c["bounces"] == 1 and c["resolve_hours_avg"] == 12.0, c
assert c["events"]["meeting.held"] == 1 and c["events"]["consent.unsubscribed"] == 1, c
cur = {o["manager"]: o for o in map(json.loads, open("%s/%s-%s.json" % (T, label, months[2])))}
assert cur["ana@example.ph"]["events"] == {"deal.won": 1}, cur
PYEOF
}
# reminders sent count in the month they went out, for the client's
# manager: wait until nothing is due and the counts caught up with the
# spooled mail (settles come just after the spooling)
wait_for 30 '[ "$(rcli ZCOUNT suki:jobs -inf "$(date +%s000)")" = 0 ]' || fail "jobs still due"
sent_sum() { "$SUKICTL" -c "$CONF_R" report --month "$CUR" --json | "$PY" -c 'import json, sys; print(sum(json.loads(l)["reminders_sent"] for l in sys.stdin))'; }
wait_for 20 '[ "$(sent_sum)" = "$(ls "$T/spool" | wc -l)" ]' || true
check "$CONF_R" rules
ok "with rules: the figures of $PPM, $PM and $CUR are exact"
"$PY" - "$T" "$CUR" <<'PYEOF' || fail "reminders sent"
import email, glob, json, sys
T, cur = sys.argv[1], sys.argv[2]
mgr = {"a1": "ana", "a2": "ana", "a3": "ana", "x1": "ben", "b1": "ben",
       "b2": "ben", "c1": "carla", "c2": "carla"}
want = {}
files = glob.glob(T + "/spool/*.eml")
for f in files:
    m = email.message_from_binary_file(open(f, "rb"))
    c = m["X-Suki-Job"].split(":")[1]
    k = mgr[c] + "@example.ph"
    want[k] = want.get(k, 0) + 1
got = {o["manager"]: o["reminders_sent"] for o in map(json.loads, open("%s/rules-%s.json" % (T, cur)))}
got = {k: v for k, v in got.items() if v}
assert files and got == want, (got, want)
print("reminders sent:", got)
PYEOF
ok "reminders sent: one per spooled message, for the client's manager, in $CUR"
check "$CONF_N" norules
ok "without rules: the figures of $PPM, $PM and $CUR are exact"

# contracts ending within 60 days, from the renewal jobs (rules only)
"$PY" - "$T/rules-$PM.json" <<'PYEOF' || fail "contracts ending"
import json, sys
pm = {o["manager"]: o for o in map(json.loads, open(sys.argv[1]))}
ce = pm["ana@example.ph"]["contracts_ending"]
assert [(x["client"], x["contract"]) for x in ce] == [("a1", "C-45")], ce
assert pm["ben@example.ph"]["contracts_ending"] == [], pm["ben@example.ph"]
PYEOF
ok "contracts ending within 60 days: C-45 for ana, not C-100 for ben"

# one manager, text
CONF=$CONF_R
sukictl report --month "$PM" --manager ben@example.ph >"$T/ben.txt" || fail "report --manager"
grep -q "^report $PM for ben@example.ph" "$T/ben.txt" || fail "text report: $(cat "$T/ben.txt")"
grep -q "complaints opened: 2, resolved: 1, still open: 1, average time to resolve: 48.0 h" "$T/ben.txt" ||
    fail "text report figures: $(cat "$T/ben.txt")"
[ "$(grep -c '^report' "$T/ben.txt")" = 1 ] || fail "--manager printed others"
ok "sukictl report --manager prints one manager's report as text"

# the counters expire: no key without a TTL (but the log of counts not
# folded yet, which sukictl report above emptied)
[ "$(rcli EXISTS suki:report-log nr:report-log)" = 0 ] || fail "the report logs were not folded"
for k in $(rcli --scan --pattern 'suki:report*') $(rcli --scan --pattern 'nr:report*'); do
    ttl=$(rcli TTL "$k")
    [ "$ttl" -gt $((399 * 86400)) ] || fail "$k: TTL $ttl"
done
ok "every report key expires (400 days)"

# an unsubscribe click counts for the client's manager in the month it
# happened, once however often it is clicked (the "nr" sukid, now with its
# HTTP listener)
need curl
stop_sukid n
HP=$(free_port)
sed -i "s|^http = .*|http = { listen = \"127.0.0.1:$HP\"; public_url = \"http://127.0.0.1:$HP/\"; };|" "$CONF_N"
start_sukid n "$CONF_N"
wait_for 10 '[ -n "$(rcli GET nr:secret)" ] && grep -q "shared unsubscribe secret" "$T/sukid-n.log"' || fail "no unsubscribe secret"
TOK=$("$PY" -c '
import hmac, hashlib, base64, sys
s, c, a = (x.encode() for x in sys.argv[1:4])
p = c + b"\0" + a.lower()
m = hmac.new(s, b"suki-unsub-1\0" + p, hashlib.sha256).digest()[:16]
e = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
print(e(p) + "." + e(m))' "$(rcli GET nr:secret)" c1 c1@client.ph)
for n in 1 2; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d List-Unsubscribe=One-Click "http://127.0.0.1:$HP/u/$TOK")
    [ "$code" = 200 ] || fail "unsubscribe POST $n: $code"
done
[ "$(rcli HGET "nr:report:$CUR" "unsub carla@example.ph")" = 1 ] ||
    fail "click unsubscribe counted $(rcli HGET "nr:report:$CUR" "unsub carla@example.ph")"
ok "an unsubscribe click counts once for carla in $CUR"

# campaign mail counts for the client's manager in the month it went out
CONF=$CONF_R
sukictl campaign create promo --template campaign-example --audience all >/dev/null ||
    fail "campaign create"
camp_state() { sukictl --json campaign status promo | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["state"])'; }
wait_for 30 '[ "$(camp_state)" = completed ]' || fail "campaign: $(sukictl campaign status promo)"
camp_sent() { sukictl report --month "$CUR" --json | "$PY" -c 'import json, sys
print(" ".join("%s=%d" % (o["manager"], o["campaign_sent"]) for o in map(json.loads, sys.stdin) if o["campaign_sent"]))'; }
# a1 a2 a3 for ana, b1 b2 and x1 (moved) for ben, c1 for carla (c2 unsubscribed)
wait_for 10 '[ "$(camp_sent)" = "ana@example.ph=3 ben@example.ph=3 carla@example.ph=1" ]' ||
    fail "campaign_sent: $(camp_sent)"
ok "campaign mail sent: ana 3, ben 3, carla 1 (the unsubscribed client skipped)"

# Wrong-typed report keys lose their counters, never the batch: with sukid
# stopped, one batch with an event in a month whose counter hash is a
# string, a complaint while the tickets hash is a string, and one for ana in the
# previous month.
stop_sukid r
at=$("$PY" -c 'import json; print(json.loads(open("'"$T"'/events1.jsonl").readline())["at"])')
atppm=$(grep '"dw-a3b"' "$T/events1.jsonl" | "$PY" -c 'import json, sys; print(json.loads(sys.stdin.read())["at"])')
rcli DEL "suki:report:$PPM" >/dev/null
rcli SET "suki:report:$PPM" oops >/dev/null
gen=$(( $(date +%s) * 1000 / (200 * 86400000) ))
rcli SET "suki:report-tickets:$gen" oops >/dev/null
before=$(rcli HGET suki:stats events_applied)
mh=$(rcli HGET "suki:report:$PM" "e:meeting.held ana@example.ph")
for e in "{\"type\":\"deal.lost\",\"client\":\"a2\",\"at\":\"$atppm\",\"data\":{\"amount\":5}}" \
         "{\"type\":\"complaint.opened\",\"client\":\"a1\",\"at\":\"$at\",\"data\":{\"ticket\":\"T-9\"}}" \
         "{\"type\":\"meeting.held\",\"client\":\"a2\",\"at\":\"$at\"}"; do
    rcli XADD suki:events '*' event "$e" >/dev/null
done
start_sukid r "$CONF_R"
wait_for 20 '[ "$(rcli HGET suki:stats events_applied)" = $((before + 3)) ]' ||
    fail "wrong-typed report keys: $(rcli HGETALL suki:stats); $(rcli HGETALL suki:lasterr)"
sukictl report --month "$PM" >/dev/null || fail "report after wrong-typed keys"
[ "$(rcli GET "suki:report:$PPM")" = oops ] || fail "the wrong-typed month hash changed"
[ "$(rcli GET "suki:report-tickets:$gen")" = oops ] || fail "the wrong-typed tickets hash changed"
[ "$(rcli HGET "suki:report:$PM" "e:meeting.held ana@example.ph")" = $((mh + 1)) ] ||
    fail "ana's counter in the same batch: $(rcli HGET "suki:report:$PM" "e:meeting.held ana@example.ph")"
[ "$(rcli HGET "suki:report:$PM" "c_opened ana@example.ph")" = 1 ] || fail "the complaint with a wrong-typed ticket key"
[ "$(rcli HLEN suki:lasterr)" = 0 ] || fail "lasterr: $(rcli HGETALL suki:lasterr)"
ok "a wrong-typed month hash loses only its own counters"

# Intake folds the log itself once it holds 4,096 entries: 4,095 of a
# month of their own, then one event, and both are in the month hashes
# without a reader's fold; a log of a wrong type loses a batch's counts,
# never the batch.
stop_sukid r
awk 'BEGIN { for (i = 0; i < 4095; i++) printf "RPUSH suki:report-log \"2001-01 e:x.y z@example.ph\"\r\n" }' |
    rcli --pipe >/dev/null
[ "$(rcli LLEN suki:report-log)" = 4095 ] || fail "log prefill: $(rcli LLEN suki:report-log)"
before=$(rcli HGET suki:stats events_applied)
rcli XADD suki:events '*' event "{\"type\":\"meeting.held\",\"client\":\"a2\",\"at\":\"$at\"}" >/dev/null
start_sukid r "$CONF_R"
wait_for 20 '[ "$(rcli HGET suki:stats events_applied)" = $((before + 1)) ]' || fail "the folding batch"
[ "$(rcli HGET suki:report:2001-01 "e:x.y z@example.ph")" = 4095 ] ||
    fail "folded: $(rcli HGET suki:report:2001-01 "e:x.y z@example.ph")"
[ "$(rcli HGET "suki:report:$PM" "e:meeting.held ana@example.ph")" = $((mh + 2)) ] ||
    fail "the folding batch's own count: $(rcli HGET "suki:report:$PM" "e:meeting.held ana@example.ph")"
[ "$(rcli EXISTS suki:report-log)" = 0 ] || fail "log after the fold: $(rcli LLEN suki:report-log)"
rcli SET suki:report-log oops >/dev/null
rcli XADD suki:events '*' event "{\"type\":\"meeting.held\",\"client\":\"a2\",\"at\":\"$at\"}" >/dev/null
wait_for 20 '[ "$(rcli HGET suki:stats events_applied)" = $((before + 2)) ]' || fail "the batch with a wrong-typed log"
[ "$(rcli GET suki:report-log)" = oops ] || fail "the wrong-typed log changed"
sukictl report --month "$PM" >/dev/null || fail "report with a wrong-typed log"
[ "$(rcli HGET "suki:report:$PM" "e:meeting.held ana@example.ph")" = $((mh + 2)) ] || fail "counted through a wrong-typed log"
[ "$(rcli HLEN suki:lasterr)" = 0 ] || fail "lasterr: $(rcli HGETALL suki:lasterr)"
ok "intake folds the log at 4,096 entries; a wrong-typed log loses only its counts"
