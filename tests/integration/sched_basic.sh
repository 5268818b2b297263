#!/bin/sh
# sched_basic.sh - jobs written straight into Redis (the documented layout):
# sukictl jobs (text, --json, --client, --due-before), upsert replaces,
# sukictl cancel (and its exit codes), a job fires at (not before) its due
# time and is removed with its indexes, the sent marker is recorded.
. "$top_srcdir/tests/integration/sched_lib.sh"

start_redis
CONF=$T/sukid.conf
LOG_LEVEL=debug sched_conf "$CONF"
P=$SUKI_PREFIX

# ---- listing --------------------------------------------------------
NOW=$(now_ms)
H=3600000
add_jobs --due-list "$((NOW + 3 * H)),$((NOW + H)),$((NOW + 2 * H))" \
    --notify "a@example.com,manager"
[ "$(zcard)" = 3 ] || fail "expected 3 jobs, got $(zcard)"

sukictl --json jobs >"$T/jobs.json" || fail "sukictl jobs failed"
[ "$(wc -l <"$T/jobs.json")" = 3 ] || fail "jobs --json: not 3 lines"
"$PY" - "$T/jobs.json" "$NOW" <<'EOF' || fail "jobs --json content"
import json, sys, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
now = int(sys.argv[2])
H = 3600000
# in due order: c1 (+1h), c2 (+2h), c0 (+3h)
assert [r["client"] for r in rows] == ["c1", "c2", "c0"], rows
for r, h in zip(rows, (1, 2, 3)):
    for k in ("key", "due", "rule", "client", "subject", "template",
              "attempt"):
        assert k in r, (k, r)
    assert r["due"].endswith("Z"), r["due"]
    due = datetime.datetime.strptime(r["due"][:19], "%Y-%m-%dT%H:%M:%S")
    due = due.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
    assert abs(due - (now + h * H)) < 1000, (r["due"], now)
    assert r["rule"] == "sched-test" and r["template"] == "sched-test"
    assert r["attempt"] == 0
    assert r["key"] == "sched-test:%s:%s:" % (r["client"], r["subject"])
EOF
ok "jobs --json lists 3 jobs in due order with key, due (Z), rule, client"

sukictl jobs >"$T/jobs.txt" || fail "sukictl jobs (text) failed"
grep -q "sched-test:c2:s2:" "$T/jobs.txt" || fail "text listing lacks a key"

[ "$(sukictl --json jobs --client c2 | wc -l)" = 1 ] ||
    fail "--client c2 should list 1 job"
sukictl --json jobs --client c2 | grep -q '"client":"c2"' ||
    fail "--client c2 listed another client"
[ "$(sukictl --json jobs --client nobody | wc -l)" = 0 ] ||
    fail "--client nobody should list nothing"
BEFORE=$("$PY" -c "import datetime,sys; print(datetime.datetime.fromtimestamp(($NOW + 2 * $H + 60000) / 1000, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'))")
[ "$(sukictl --json jobs --due-before "$BEFORE" | wc -l)" = 2 ] ||
    fail "--due-before $BEFORE should list 2 jobs"
sukictl jobs --due-before yesterday >/dev/null 2>&1
[ $? = 2 ] || fail "a bad --due-before should be a usage error (2)"
ok "jobs --client and --due-before filter"

# ---- upsert replaces ------------------------------------------------
add_jobs --client c1 --key s1 --due "$((NOW + 5 * H))"
[ "$(zcard)" = 3 ] || fail "upsert added a job: $(zcard)"
[ "$(rcli HLEN "$P:job:c1")" = 1 ] || fail "job:c1 does not hold 1 body"
[ "$(rcli ZSCORE "$P:jobs" sched-test:c1:s1:)" = "$((NOW + 5 * H))" ] ||
    fail "upsert did not move the due time"
sukictl --json jobs --client c1 | grep -q "\"due\":\"$("$PY" -c "import datetime; print(datetime.datetime.fromtimestamp(($NOW + 5 * $H) // 1000, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S'))")" ||
    fail "listing does not show the replaced due time"
ok "upsert replaces: one pending job per key"

# ---- cancel ----------------------------------------------------------
sukictl cancel sched-test:c2:s2: >/dev/null || fail "cancel failed"
[ "$(zcard)" = 2 ] || fail "cancel left $(zcard) jobs"
[ "$(rcli HEXISTS "$P:job:c2" sched-test:c2:s2:)" = 0 ] || fail "body left"
[ "$(rcli EXISTS "$P:job:c2")" = 0 ] || fail "empty job hash left"
sukictl cancel sched-test:c2:s2: 2>"$T/cancel.err"
[ $? = 1 ] || fail "cancelling a missing job should exit 1"
grep -q "no such job" "$T/cancel.err" || fail "no 'no such job' message"
sukictl cancel >/dev/null 2>&1
[ $? = 2 ] || fail "cancel without KEY should exit 2"
ok "cancel KEY removes the job with its indexes; 1 when absent, 2 on usage"

# ---- firing ----------------------------------------------------------
start_sched a "$CONF"
DUE=$(($(now_ms) + 1500))
rcli HSET "$P:client:cx" name "Client X" manager "mgr@example.com" >/dev/null
add_jobs --client cx --key soon --due "$DUE" --notify "ops@example.com,manager"
wait_for 10 '[ "$(spool_count)" = 2 ]' ||
    fail "the due job did not fire ($(spool_count) messages)"
LATE=$(sed -n 's/.* job sched-test:cx:soon: fired: late \(-\?[0-9]*\) ms.*/\1/p' "$T/sukid-a.log")
[ -n "$LATE" ] || fail "no fire logged"
[ "$LATE" -ge 0 ] || fail "the job fired $LATE ms before its due time"
grep -l "^To: ops@example.com" "$T"/spool/*.eml >/dev/null ||
    fail "no message to the notify address"
grep -l "^To: mgr@example.com" "$T"/spool/*.eml >/dev/null ||
    fail "no message to the manager (from the profile)"
grep -q "^Subject: Reminder sched-test for cx" "$T"/spool/*.eml ||
    fail "message not rendered from the template"
WANT=$("$PY" -c "import datetime; print(datetime.datetime.fromtimestamp($DUE // 1000, datetime.timezone.utc).strftime('%Y-%m-%d %H:%M'))")
grep -q "^Job of cx (soon) due $WANT (UTC)\." "$T"/spool/*.eml ||
    fail "due time not rendered as '$WANT (UTC)': $(grep '^Job of' "$T"/spool/*.eml | head -1)"
wait_for 5 '[ "$(rcli HEXISTS $P:job:cx sched-test:cx:soon:)" = 0 ]' ||
    fail "fired job not completed"
[ "$(rcli ZSCORE "$P:jobs" sched-test:cx:soon:)" = "" ] || fail "index left"
[ "$(rcli EXISTS "$P:job:cx")" = 0 ] || fail "empty job hash left"
# one info line per accepted message, as an MTA logs a delivery
for to in ops@example.com mgr@example.com; do
    grep -q " info: job sched-test:cx:soon:: to=<$to>, channel=email, message-id=<[0-9a-f]*@example.com>, status=sent (spooled .*\.eml)$" "$T/sukid-a.log" ||
        fail "no delivery line for $to"
done
[ "$(zcard)" = 2 ] || fail "future jobs were touched: $(zcard)"
MARKS=$(rcli --scan --pattern "$P:sent:*" | wc -l)
[ "$MARKS" = 2 ] || fail "expected 2 sent markers, got $MARKS"
TTL=$(rcli TTL "$(rcli --scan --pattern "$P:sent:*" | head -1)")
[ "$TTL" -gt $((29 * 86400)) ] && [ "$TTL" -le $((30 * 86400)) ] ||
    fail "sent marker TTL $TTL is not 30 days"
# each marker records what the message was about (its job key): inbound
# mail naming the Message-ID finds the client there
for k in $(rcli --scan --pattern "$P:sent:*"); do
    [ "$(rcli GET "$k")" = "sched-test:cx:soon:" ] ||
        fail "marker $k holds '$(rcli GET "$k")', not the job key"
done
ok "a due job fires at its due time, once, is logged and removed with its body"

stop_sukid a || fail "sukid did not exit 0"
exit 0
