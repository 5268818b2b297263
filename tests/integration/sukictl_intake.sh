#!/bin/sh
# sukictl_intake.sh - sukictl push (line numbers of refused lines, exit 1),
# dead list / replay / drop, client ID, and the intake figures of status.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID" "$SUKICTL"

start_redis
CONF=$T/sukid.conf
INTAKE_EXTRA='max_event_size = 300;' write_conf "$CONF"
start_sukid a "$CONF"

# ---- push
cat >"$T/events.jsonl" <<'JSONL'
{"type":"client.created","client":"acme","id":"p1","data":{"name":"Acme Corp","email":"ops@acme.ph","timezone":"Asia/Manila"}}
{"type":"meeting.held","client":"acme","id":"p2"}
{"type":"meeting.held"}

not json at all
{"type":"contact.call","client":"beta","id":"p3"}
JSONL
sukictl push "$T/events.jsonl" >"$T/push.out" 2>"$T/push.err"
rc=$?
cat "$T/push.out" "$T/push.err"
[ $rc = 1 ] || fail "push with refused lines: exit $rc, want 1"
grep -q ':3: refused: missing client' "$T/push.err" || fail "line 3 not reported"
grep -q ':5: refused: not JSON' "$T/push.err" || fail "line 5 not reported"
[ "$(grep -c refused "$T/push.err")" = 2 ] || fail "wrong lines refused"
grep -q "pushed 3 events" "$T/push.out" || fail "summary"
wait_for 10 '[ "$(stat applied)" = 3 ]' || fail "pushed events not applied"
printf '%s\n' '{"type":"a.b","client":"x1"}' | sukictl push - >/dev/null ||
    fail "push from stdin: exit $?"
wait_for 10 '[ "$(stat applied)" = 4 ]' || fail "stdin event not applied"
sukictl --json push "$T/events.jsonl" >"$T/push.json" 2>&1
grep -q '{"line": *3, *"error": *"missing client"}' "$T/push.json" ||
    fail "--json refused line: $(cat "$T/push.json")"
ok "push"

# ---- client
sukictl client acme >"$T/client.out" || fail "client acme: exit $?"
cat "$T/client.out"
grep -q 'name .*Acme Corp' "$T/client.out" || fail "profile name not shown"
grep -q 'events .*2' "$T/client.out" || fail "event count not shown"
sukictl --json client acme | grep -q '"email": *"ops@acme.ph"' ||
    fail "client --json"
# a pending job of the client (as the rules would store it), a month ahead
# so that it is never due while the test runs
jd=$(($(date +%s) + 30 * 86400))
jiso=$(date -u -d "@$jd" +%Y-%m-%dT%H:%M:%SZ)
rcli ZADD suki:jobs "${jd}000" 'r1:acme::' >/dev/null
rcli HSET suki:job:acme 'r1:acme::' "{\"d\":${jd}000}" >/dev/null
sukictl client acme | grep -q "$jiso *r1:acme::  (rule r1)" ||
    fail "pending job not listed: $(sukictl client acme)"
sukictl client nobody 2>"$T/err" && fail "unknown client: exit 0"
grep -q "no client 'nobody'" "$T/err" || fail "unknown client message"
ok "client"

# ---- dead: an event over max_event_size, fixed by raising the limit
big=$("$PY" -c 'print("{\"type\":\"a.b\",\"client\":\"big\",\"data\":{\"x\":\"" + "y" * 400 + "\"}}")')
rcli XADD suki:events '*' event "$big" >/dev/null
rcli XADD suki:events '*' event 'garbage' >/dev/null
wait_for 10 '[ "$(rcli XLEN suki:dead)" = 2 ]' || fail "no dead letters"
sukictl dead >"$T/dead.out" || fail "dead list: exit $?"
cat "$T/dead.out"
grep -q 'too large' "$T/dead.out" || fail "dead list: reason"
grep -q 'payload: garbage' "$T/dead.out" || fail "dead list: payload"
grep -q '^2 dead letters' "$T/dead.out" || fail "dead list: count"
[ "$(sukictl --json dead list | grep -c '"kind": *"event"')" = 2 ] ||
    fail "dead --json"
big_id=$(rcli XRANGE suki:dead - + | sed -n 1p)
junk_id=$(rcli XREVRANGE suki:dead + - COUNT 1 | sed -n 1p)
sed -i 's/max_event_size = 300;/max_event_size = 65536;/' "$CONF"
kill -HUP "$SUKID_PID"
wait_for 5 'grep -q "configuration reloaded" "$T/sukid-a.log"' || fail "reload"
sukictl dead replay "$big_id" || fail "replay: exit $?"
wait_for 10 '[ "$(rcli HGET suki:client-events big)" = 1 ]' ||
    fail "replayed event not applied"
[ "$(rcli XLEN suki:dead)" = 1 ] || fail "replayed dead letter not removed"
sukictl dead replay "$big_id" 2>/dev/null && fail "replay twice: exit 0"
sukictl dead drop "$junk_id" || fail "drop: exit $?"
[ "$(rcli XLEN suki:dead)" = 0 ] || fail "dropped dead letter still there"
sukictl dead drop "$junk_id" 2>/dev/null && fail "drop twice: exit 0"
sukictl dead frob 2>/dev/null; [ $? = 2 ] || fail "usage error: want exit 2"
ok "dead list, replay, drop"

# ---- status
sukictl --json status >"$T/status.json" || fail "status: exit $?"
cat "$T/status.json"
for k in '"events_applied": *5' '"events_duplicate": *3' '"pending": *0' '"lag": *0' \
    '"dead_entries": *0' '"events_invalid": *2' '"stream_length"'; do
    grep -q "$k" "$T/status.json" || fail "status lacks $k"
done
ok "status"
stop_sukid a || fail "exit status $?"
