#!/bin/sh
# console_api.sh - the operator console (DESIGN Part 3) against a real sukid,
# redis-server and SMTP server: its config checks (FILE:LINE, exit 78),
# sukictl console passwd, then console_api.py's checks of every endpoint
# (401 / 403 / 404 / 405 / 413 / 415 / 400, cookies, CSRF, slowed logins,
# overview = Redis = sukictl status, jobs paging and actions, dead letters),
# and a failed message replayed from the dead letters: sent again under
# the same Message-ID to the one recipient that failed, to nobody twice.
. "$top_srcdir/tests/integration/console_lib.sh"

# ---- configuration ----------------------------------------------------
start_redis
CONF=$T/bad.conf
write_conf "$CONF" 'console = { listen = "127.0.0.1:1"; };'
"$SUKID" -c "$CONF" >"$T/t.out" 2>&1
rc=$?
[ $rc = 78 ] && grep -q "bad.conf:[0-9]*: console: 'users_file' is required" "$T/t.out" ||
    fail "console.listen without users_file: rc $rc, $(cat "$T/t.out")"
ok "console.listen without users_file: exit 78 with FILE:LINE"
write_conf "$CONF" 'console = { listen = "nowhere"; users_file = "u"; };'
"$SUKID" -c "$CONF" >"$T/t.out" 2>&1
rc=$?
[ $rc = 78 ] && grep -q "bad.conf:[0-9]*: console listen \"nowhere\" must be HOST:PORT" "$T/t.out" ||
    fail "bad console.listen: rc $rc, $(cat "$T/t.out")"
ok "a console.listen that is not HOST:PORT: exit 78 with FILE:LINE"
write_conf "$CONF" 'console = { listen = ":9999"; users_file = "u"; secure_cookie = "yes"; };'
"$SUKID" -c "$CONF" >"$T/t.out" 2>&1
rc=$?
[ $rc = 78 ] && grep -q "bad.conf:[0-9]*: .*secure_cookie" "$T/t.out" ||
    fail "secure_cookie not a boolean: rc $rc, $(cat "$T/t.out")"
ok "console.secure_cookie must be a boolean: exit 78 with FILE:LINE"
HPX=$(free_port)
write_conf "$CONF" "console = { listen = \"127.0.0.1:$HPX\"; users_file = \"u\"; };"
sed -i "s|^http = .*|http = { listen = \"127.0.0.1:$HPX\"; };|" "$CONF"
"$SUKID" -c "$CONF" >"$T/t.out" 2>&1
rc=$?
[ $rc = 78 ] && grep -q "never the public one" "$T/t.out" ||
    fail "console on http.listen: rc $rc, $(cat "$T/t.out")"
ok "the console on the public listener's address: refused (exit 78)"
stop_redis

# ---- sukictl console passwd -------------------------------------------
SMTP_ARGS="--mode reject550 --reject-rcpt bad@rcpt.test"
CONSOLE_EXTRA="timeline = 5;" console_start
console_user admin secret-pw
grep -q '^admin:\$argon2id\$' "$T/console.users" || fail "no admin line: $(cat "$T/console.users")"
[ "$(command stat -c %a "$T/console.users")" = 600 ] || fail "users file mode $(command stat -c %a "$T/console.users")"
ok "console passwd: an Argon2id line, the file mode 0600"
console_user other pw2
console_user admin secret-pw
[ "$(grep -c '^admin:' "$T/console.users")" = 1 ] && [ "$(wc -l <"$T/console.users")" = 2 ] ||
    fail "replacing admin's line: $(cat "$T/console.users")"
ok "console passwd again: admin's line replaced, the other kept"
sukictl console passwd 'bad name' </dev/null >/dev/null 2>"$T/e"
[ $? = 2 ] && grep -q "user name" "$T/e" || fail "a bad name: $(cat "$T/e")"
sukictl console passwd admin </dev/null >/dev/null 2>"$T/e"
[ $? = 1 ] && grep -q "no password" "$T/e" || fail "no password: $(cat "$T/e")"
[ "$(wc -l <"$T/console.users")" = 2 ] || fail "the users file changed on a refusal"
ok "console passwd refuses a bad name (exit 2) and an empty password (exit 1), file kept"

# ---- the API ----------------------------------------------------------
# campaigns that wait for tomorrow (nothing is sent); r1 has a failed
# recipient to retry
tomorrow=$(date -u -d tomorrow +%Y-%m-%dT%H:%M:%SZ)
for c in spring r1; do
    sukictl campaign create $c --template promo --audience all --start-at "$tomorrow" >/dev/null ||
        fail "campaign create $c"
done
rcli HSET "$SUKI_PREFIX:cledger:r1" u1 failed:550 u2 sent >/dev/null
rcli HSET "$SUKI_PREFIX:campaign:r1" failed 1 sent 1 >/dev/null
export CP REDIS_PORT PREFIX=$SUKI_PREFIX TOPDIR=$top_srcdir STATE=$T/state
"$PY" "$top_srcdir/tests/integration/console_api.py" auth || fail "console_api.py auth"

# the job run from the console went out (accepted: ops@example.com)
wait_for 15 '[ "$(mail_count)" -ge 1 ]' || fail "the job run from the console was not sent"
ok "the job sent now from the console went out"

# sukictl status and the overview: one implementation, the same figures
wait_for 10 '[ "$(zcard)" = 0 ]' || fail "the job run is still scheduled"
cookie=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["cookie"])' "$T/state")
curl -fsS -H "Cookie: $cookie" "$CURL_BASE/api/v1/overview" >"$T/state.status" || fail "overview"
sukictl --json status >"$T/status.json"
"$PY" - "$T/status.json" "$T/state.status" <<'PYEOF' || fail "sukictl status and the overview disagree"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for k in ("stream_length", "pending", "jobs_scheduled", "consumers", "events_applied"):
    assert a[k] == b[k], (k, a[k], b[k])
assert a["dead_entries"] == b["dead_entries"], (a["dead_entries"], b["dead_entries"])
assert [d["consumer"] for d in a["daemons"]] == [d["consumer"] for d in b["daemons"]]
PYEOF
ok "sukictl status --json gives the overview's figures"

# ---- a failed message -------------------------------------------------
before=$(mail_count)
add_jobs --count 1 --due "$(now_ms)" --client m1 --key fail1 --notify "ops@example.com,bad@rcpt.test"
wait_for 15 '[ "$(rcli XLEN "$SUKI_PREFIX:dead")" -ge 2 ] && [ "$(rcli ZCARD "$SUKI_PREFIX:jobs")" = 0 ]' ||
    fail "the rejected recipient left no dead letter"
wait_for 10 '[ "$(mail_count)" -gt "$before" ]' || fail "ops@example.com got nothing"
ok "a job to two recipients: one sent, one rejected (550) into the dead letters"
# the recipient is fixed: the server accepts everyone now
smtp_stop
SMTPD=$T/smtpd2 smtp_start
SMTPD=$T/smtpd2
"$PY" "$top_srcdir/tests/integration/console_api.py" dead || fail "console_api.py dead"
wait_for 15 '[ "$(mail_count)" -ge 1 ]' || fail "the replayed message was not sent"
sleep 1 # anything further would be a duplicate: give it time to show
[ "$(mail_count)" = 1 ] || fail "$(mail_count) messages after the replay (want 1)"
grep -q '^RCPT bad@rcpt.test 250' "$SMTPD/events.log" && ! grep -q 'ops@example.com' "$SMTPD/events.log" ||
    fail "the replay went to: $(grep RCPT "$SMTPD/events.log")"
want=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["message_id"])' "$T/state.msg")
got=$(tr -d '\r' <"$SMTPD/msg-1.eml" | sed -n 's/^Message-ID: *//Ip' | head -1)
[ "<${want#<}" = "$got" ] || [ "$want" = "$got" ] || fail "Message-ID $got, the dead letter had $want"
ok "the replayed message went to the failed recipient only, under its Message-ID $got"

# ---- the replay's body, by sukictl, where no daemon runs ----------------
CONF2=$T/other.conf
SUKI_PREFIX=other write_conf "$CONF2"
body='{"d":1700000000000,"e":{"t":"x.y","a":123,"d":{"s":",\"a\":9"}},"a":2,"r":1700000099999}'
rcli XADD other:dead 1-1 kind message reason test source 'r:c9:s:' payload "$body" >/dev/null
"$SUKICTL" -c "$CONF2" dead replay 1-1 >"$T/rp.out" 2>&1 || fail "sukictl dead replay: $(cat "$T/rp.out")"
got=$(rcli HGET other:job:c9 'r:c9:s:')
[ "$got" = '{"d":1700000000000,"e":{"t":"x.y","a":123,"d":{"s":",\"a\":9"}}}' ] ||
    fail "the replayed body: $got"
[ -n "$(rcli ZSCORE other:jobs 'r:c9:s:')" ] || fail "not scheduled"
ok "sukictl dead replay: the body minus its top-level a and r, byte for byte, scheduled"
rcli XADD other:dead 1-2 kind message reason test source 'r:c9:s:' payload "$body" >/dev/null
"$SUKICTL" -c "$CONF2" dead replay 1-2 >"$T/rp.out" 2>&1
[ $? = 1 ] && grep -q "scheduled again" "$T/rp.out" && [ "$(rcli XLEN other:dead)" = 1 ] ||
    fail "a replay onto a scheduled job: $(cat "$T/rp.out")"
ok "a replay onto a job scheduled again is refused, the dead letter kept"
# --force: the same body with "f":1 at its end (sent past max_lateness)
rcli XADD other:dead 1-3 kind message reason test source 'r:c8:s:' payload "$body" >/dev/null
"$SUKICTL" -c "$CONF2" dead replay --force 1-3 >"$T/rp.out" 2>&1 || fail "dead replay --force: $(cat "$T/rp.out")"
got=$(rcli HGET other:job:c8 'r:c8:s:')
[ "$got" = '{"d":1700000000000,"e":{"t":"x.y","a":123,"d":{"s":",\"a\":9"}},"f":1}' ] ||
    fail "the body replayed with --force: $got"
"$SUKICTL" -c "$CONF2" dead replay 1-9 --force >"$T/rp.out" 2>&1
[ $? = 2 ] || fail "dead replay ID --force (wrong order) is not a usage error: $(cat "$T/rp.out")"
ok "sukictl dead replay --force: the body gets \"f\":1 at its end"
# jobs hold / release / run / cancel twins
"$SUKICTL" -c "$CONF2" jobs hold 'r:c9:s:' >/dev/null || fail "jobs hold"
[ -z "$(rcli ZSCORE other:jobs 'r:c9:s:')" ] && [ -n "$(rcli ZSCORE other:jobs-held 'r:c9:s:')" ] || fail "hold did not move it"
"$SUKICTL" -c "$CONF2" jobs hold 'r:c9:s:' >/dev/null 2>&1 && fail "a second hold succeeded"
"$SUKICTL" -c "$CONF2" jobs release 'r:c9:s:' >/dev/null || fail "jobs release"
rcli ZADD other:jobs 9999999999999 'r:c9:s:' >/dev/null
rcli HSET other:job:c9 'r:c9:s:' '{"d":9999999999999}' >/dev/null # due later
"$SUKICTL" -c "$CONF2" jobs run 'r:c9:s:' >/dev/null || fail "jobs run"
[ "$(rcli ZSCORE other:jobs 'r:c9:s:')" -le "$(now_ms)" ] || fail "run left it later"
"$SUKICTL" -c "$CONF2" jobs run nosuch >/dev/null 2>&1 && fail "run of an unknown key succeeded"
"$SUKICTL" -c "$CONF2" jobs cancel 'r:c9:s:' >/dev/null || fail "jobs cancel"
[ "$(rcli EXISTS other:job:c9)" = 0 ] || fail "cancel left the body"
ok "sukictl jobs hold, release, run, cancel: what the console's buttons do"
# a job a scheduler has claimed (leased past now, its due time come) is
# left alone by run and refused by hold; one waiting for a retry runs now
rcli ZADD other:jobs $(($(now_ms) + 60000)) 'r:c8:s:' >/dev/null
rcli HSET other:job:c8 'r:c8:s:' '{"d":1700000000000}' >/dev/null
"$SUKICTL" -c "$CONF2" jobs run 'r:c8:s:' >/dev/null 2>"$T/e"
[ $? = 1 ] && grep -q "being sent right now" "$T/e" || fail "run of a claimed job: $(cat "$T/e")"
"$SUKICTL" -c "$CONF2" jobs hold 'r:c8:s:' >/dev/null 2>&1 && fail "hold of a claimed job succeeded"
[ "$(rcli ZSCORE other:jobs 'r:c8:s:')" -gt "$(now_ms)" ] && [ "$(rcli EXISTS other:jobs-held)" = 0 ] ||
    fail "the claimed job was moved"
rcli HSET other:job:c8 'r:c8:s:' "{\"d\":1700000000000,\"a\":1,\"r\":$(($(now_ms) + 60000))}" >/dev/null
"$SUKICTL" -c "$CONF2" jobs run 'r:c8:s:' >/dev/null || fail "run of a job waiting for its retry"
[ "$(rcli ZSCORE other:jobs 'r:c8:s:')" -le "$(now_ms)" ] || fail "the retry wait was not cut short"
ok "jobs run/hold leave a job in flight alone (exit 1), run cuts a retry's wait short"

# ---- the client's timeline (console.timeline = 5) ----------------------
# seven events of tl1, the last one again (a duplicate), then one with a
# long summary: the five newest applied, newest first, tl-7 once
curl -s -D "$T/hl" -o /dev/null -H 'Content-Type: application/json' \
    -d '{"user":"admin","password":"secret-pw"}' "$CURL_BASE/api/v1/login"
cookie=$(sed -n 's/^Set-Cookie: \(suki_console=[^;]*\).*/\1/Ip' "$T/hl" | tr -d '\r')
[ -n "$cookie" ] || fail "no session cookie: $(cat "$T/hl")"
base=$(($(date +%s) - 10))
atz() { date -u -d "@$base" "+%Y-%m-%dT%H:%M:%S.00${1}Z"; }
now=$((base * 1000 + 10000)) # the checks below use now - 10000 + n
for n in 1 2 3 4 5 6 7; do
    rcli XADD "$SUKI_PREFIX:events" '*' event \
        "{\"type\":\"note.added\",\"client\":\"tl1\",\"id\":\"tl-$n\",\"at\":\"$(atz $n)\",\"data\":{\"summary\":\"note $n\"}}" >/dev/null
done
dup0=$(stat duplicate)
wait_for 10 '[ "$(rcli EXISTS "$SUKI_PREFIX:seen:tl-7")" = 1 ]' || fail "tl-7 was not applied"
rcli XADD "$SUKI_PREFIX:events" '*' event \
    "{\"type\":\"note.added\",\"client\":\"tl1\",\"id\":\"tl-7\",\"at\":\"$(atz 7)\"}" >/dev/null
wait_for 10 '[ "$(stat duplicate)" -gt "$dup0" ]' || fail "the second tl-7 was not counted a duplicate"
long=$("$PY" -c 'print("\u00e9" * 100)')
rcli XADD "$SUKI_PREFIX:events" '*' event \
    "{\"type\":\"deal.won\",\"client\":\"tl1\",\"id\":\"tl-8\",\"at\":\"$(atz 8)\",\"data\":{\"summary\":\"$long\"}}" >/dev/null
wait_for 10 '[ "$(rcli EXISTS "$SUKI_PREFIX:seen:tl-8")" = 1 ]' || fail "tl-8 was not applied"
[ "$(rcli LLEN "$SUKI_PREFIX:timeline:tl1")" = 5 ] || fail "timeline length $(rcli LLEN "$SUKI_PREFIX:timeline:tl1") (want 5)"
ttl=$(rcli TTL "$SUKI_PREFIX:timeline:tl1")
[ "$ttl" -gt $((89 * 86400)) ] && [ "$ttl" -le $((90 * 86400)) ] || fail "timeline TTL $ttl (want 90 days)"
ok "the timeline of tl1: capped at console.timeline = 5, a TTL of 90 days"
curl -fsS -H "Cookie: $cookie" "$CURL_BASE/api/v1/clients/tl1" >"$T/tl1.json" || fail "GET clients/tl1"
sukictl --json client tl1 >"$T/tl1.ctl.json" || fail "sukictl --json client tl1"
rcli LRANGE "$SUKI_PREFIX:timeline:tl1" 0 -1 >"$T/tl1.raw"
"$PY" - "$T/tl1.json" "$T/tl1.ctl.json" "$T/tl1.raw" "$now" <<'PYEOF' || fail "the timeline of tl1 (API, sukictl --json, Redis)"
import json, sys
api, ctl = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
raw = [json.loads(l) for l in open(sys.argv[3], encoding="utf-8") if l.strip()]
now = int(sys.argv[4])
t = api["timeline"]
assert [e["id"] for e in t] == ["tl-8", "tl-7", "tl-6", "tl-5", "tl-4"], t
assert ctl["timeline"] == t, (ctl["timeline"], t)
for n, e in zip((8, 7, 6, 5, 4), t):
    assert e["kind"] == "event" and type(e["at"]) is int and e["at"] == now - 10000 + n, e
    assert e["type"] == ("deal.won" if n == 8 else "note.added"), e
    assert e["time"].endswith("Z"), e
assert t[1]["summary"] == "note 7" and "s" not in t[1], t[1]
assert t[0]["summary"] == "\u00e9" * 40, t[0]  # 80 bytes, cut between characters
assert raw[0] == {"k": "e", "t": "deal.won", "at": now - 9992, "id": "tl-8", "s": "\u00e9" * 40}, raw[0]
PYEOF
ok "API and sukictl --json: tl-8 .. tl-4 newest first, at a number, tl-7 once, the summary cut to 80 bytes on a UTF-8 boundary"
sukictl client tl1 >"$T/tl1.txt" || fail "sukictl client tl1"
grep -q '^timeline: 5$' "$T/tl1.txt" && grep -q ' event   note.added  id tl-7  summary note 7$' "$T/tl1.txt" ||
    fail "sukictl client tl1: $(cat "$T/tl1.txt")"
ok "sukictl client prints the timeline"
# m1's job (sent to ops@example.com, then the replay to bad@rcpt.test):
# messages in its timeline, each message id once
curl -fsS -H "Cookie: $cookie" "$CURL_BASE/api/v1/clients/m1" >"$T/m1.json" || fail "GET clients/m1"
"$PY" - "$T/m1.json" <<'PYEOF' || fail "the timeline of m1: $(cat "$T/m1.json")"
import json, sys
t = json.load(open(sys.argv[1]))["timeline"]
m = [e for e in t if e["kind"] == "message"]
assert sorted(e["to"] for e in m) == ["bad@rcpt.test", "ops@example.com"], t
for e in m:
    assert e["rule"] == "sched-test" and type(e["at"]) is int and e["message_id"].startswith("<"), e
ids = [e["message_id"] for e in m]
assert len(ids) == len(set(ids)), ids
assert [e["at"] for e in t] == sorted((e["at"] for e in t), reverse=True), t
PYEOF
ok "the timeline of m1: the message sent, rule, recipient, Message-ID, each once"

# a reload with another console.listen: said, and the console stays
sed -i "s|listen = \"127.0.0.1:$CP\"|listen = \"127.0.0.1:$(free_port)\"|" "$CONF"
kill -HUP "$SUKID_PID_a"
wait_for 10 'grep -q "console: listen changed to .*; still \"127.0.0.1:$CP\" until restart" "$T/sukid-a.log"' ||
    fail "no warning for a changed console.listen"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$CURL_BASE/")" = 200 ] || fail "the console went away on reload"
ok "a reload with another console.listen: warned, the console still on its port"

kill -0 "$SUKID_PID_a" || fail "sukid died"
stop_sukid a || fail "sukid did not stop cleanly"
grep -q "console: listening on 127.0.0.1:$CP" "$T/sukid-a.log" || fail "no listening line"

# console.secure_cookie = true (behind a TLS proxy): the cookie is Secure
CP=$(free_port)
sed -i "s|^console = .*|console = { listen = \":$CP\"; users_file = \"$T/console.users\"; secure_cookie = true; timeline = 0; };|" "$CONF"
start_sched b "$CONF"
wait_for 10 "curl -fs -o /dev/null http://127.0.0.1:$CP/" || fail "the console (:PORT) is not on 127.0.0.1:$CP"
curl -s -D "$T/h2" -o /dev/null -H 'Content-Type: application/json' \
    -d '{"user":"admin","password":"secret-pw"}' "http://127.0.0.1:$CP/api/v1/login"
grep -i '^Set-Cookie: suki_console=.*HttpOnly.*SameSite=Strict.*Secure' "$T/h2" >/dev/null ||
    fail "secure_cookie: $(grep -i set-cookie "$T/h2")"
ok "console.secure_cookie = true: the session cookie is Secure; \":PORT\" listens on 127.0.0.1"
# console.timeline = 0: neither an event nor a message leaves a timeline
before=$(mail_count)
rcli XADD "$SUKI_PREFIX:events" '*' event '{"type":"note.added","client":"tl0","id":"tl0-1"}' >/dev/null
add_jobs --count 1 --due "$(now_ms)" --client tl0 --key k0 --notify ops@example.com
wait_for 10 '[ "$(rcli EXISTS "$SUKI_PREFIX:seen:tl0-1")" = 1 ]' || fail "tl0-1 was not applied"
wait_for 15 '[ "$(mail_count)" -gt "$before" ]' || fail "tl0's job was not sent"
[ "$(rcli --scan --pattern "$SUKI_PREFIX:timeline:tl0*" | wc -l)" = 0 ] || fail "a timeline key with timeline = 0"
sukictl client tl0 >"$T/tl0.txt" && grep -q '^timeline: 0$' "$T/tl0.txt" || fail "sukictl client tl0: $(cat "$T/tl0.txt")"
ok "console.timeline = 0: an event and a message sent, no timeline key"
stop_sukid b || fail "sukid b did not stop cleanly"
if grep -E "AddressSanitizer|runtime error" "$T/sukid-a.log"; then fail "sanitizer report"; fi
ok "sukid stopped cleanly, no sanitizer report"
