#!/bin/sh
# campaign_control.sh - operating a running campaign against real
# redis-server and aiosmtpd:
#  - pause stops the sending within one second, resume starts it again,
#    cancel stops it for good (counted at the SMTP server);
#  - a 5xx for an address fails that recipient and suppresses the address;
#    `campaign retry` resends to the failed recipients only;
#  - a campaign whose error rate passes campaigns.error_threshold after
#    error_min outcomes pauses itself and says why;
#  - a campaign with --start-at in the future waits for it;
#  - with two daemons one runs a campaign; SIGTERM releases its lease and
#    the other continues at once, nobody sent twice;
#  - usage errors and unknown campaigns.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/campaign_lib.sh"

P=$SUKI_PREFIX
start_redis
start_aiosmtpd "$T/smtp1"
CONF=$T/sukid.conf
CAMP='error_min = 10; error_threshold = 0.5;'
camp_conf "$CONF" "$CAMP"
start_daemon a "$CONF"
populate 3000
sc() { "$SUKICTL" -c "$CONF" "$@"; }
count() { ls "$1" | grep -c '\.eml$'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- pause / resume / cancel --------------------------------------------
sc campaign create ctl --template promo --audience segment=retail --rate 200/s >/dev/null ||
    fail "create"
wait_for 20 '[ $(count "$T/smtp1") -ge 200 ]' || fail "ctl does not send"
out=$(sc campaign pause ctl) || fail "pause failed"
[ "$out" = "campaign ctl: paused" ] || fail "pause said '$out'"
sleep 1
n1=$(count "$T/smtp1")
sleep 1.5
n2=$(count "$T/smtp1")
[ "$n1" = "$n2" ] || fail "still sending more than 1 s after pause: $n1 -> $n2"
[ "$(cfield ctl state)" = paused ] || fail "state $(cfield ctl state)"
[ "$(cfield ctl reason)" = "paused by an operator" ] || fail "reason '$(cfield ctl reason)'"
sc campaign status ctl | grep -q '^state      paused: paused by an operator$' || fail "status text"
[ "$(cfield ctl sent)" = "$n2" ] || fail "status sent $(cfield ctl sent) != server $n2"
ok "pause: nothing sent after 1 s ($n2 sent)"

t0=$(now_ms)
sc campaign resume ctl >/dev/null || fail "resume failed"
wait_for 5 "[ \$(count '$T/smtp1') -gt $n2 ]" || fail "resume did not restart sending"
ok "resume: sending again after $(($(now_ms) - t0)) ms"
sc campaign resume ctl >/dev/null 2>&1 && fail "resume of a running campaign succeeded"

wait_for 20 "[ \$(count '$T/smtp1') -ge $((n2 + 200)) ]" || fail "no progress after resume"
sc campaign cancel ctl >/dev/null || fail "cancel failed"
sleep 1
n3=$(count "$T/smtp1")
sleep 1.5
[ "$(count "$T/smtp1")" = "$n3" ] || fail "still sending 1 s after cancel"
[ "$(cfield ctl state)" = cancelled ] || fail "state after cancel $(cfield ctl state)"
[ "$n3" -lt 3000 ] || fail "campaign finished before the cancel: test too slow to show anything"
[ "$(cfield ctl sent)" = "$n3" ] || fail "status sent $(cfield ctl sent) != server $n3"
sc campaign pause ctl >/dev/null 2>&1 && fail "pause of a cancelled campaign succeeded"
sc campaign retry ctl >/dev/null 2>&1 && fail "retry of a cancelled campaign succeeded"
# nobody got it twice
cat "$T"/smtp1/msg-*.json | "$PY" -c '
import json, sys, collections
c = collections.Counter(json.loads(l)["rcpt_tos"][0] for l in sys.stdin)
d = [r for r, n in c.items() if n > 1]
assert not d, d' || fail "duplicates in ctl"
ok "cancel: stopped at $n3 of 3000"

# ---- 5xx, suppression and retry ------------------------------------------
"$PY" - "$SUKI_PREFIX" <<'EOF' | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
import sys
P = sys.argv[1]
def cmd(*a):
    sys.stdout.write("*%d\r\n" % len(a) + "".join("$%d\r\n%s\r\n" % (len(x), x) for x in a))
for i in range(10):
    cmd("HSET", "%s:client:r%d" % (P, i), "name", "R %d" % i, "email", "r%d@example.ph" % i, "segment", "retry")
for i in range(300):
    cmd("HSET", "%s:client:b%d" % (P, i), "name", "B %d" % i, "email", "b%d@bad.example" % i, "segment", "bad")
EOF
stop_smtp
start_aiosmtpd "$T/smtp2" --mode reject550 --reject-rcpt r1@example.ph \
    --reject-rcpt r4@example.ph --reject-rcpt r7@example.ph
camp_conf "$CONF" "$CAMP"
kill -HUP "$SUKID_PID_a"
wait_for 10 '[ $(grep -c "configuration reloaded" "$T/sukid-a.log") -ge 1 ]' || fail "reload 1"
sc campaign create retry --template promo --audience segment=retry >/dev/null || fail "create retry"
wait_state retry completed 30
[ "$(cfield retry sent)" = 7 ] || fail "retry: sent $(cfield retry sent), want 7"
[ "$(cfield retry failed)" = 3 ] || fail "retry: failed $(cfield retry failed), want 3"
for i in 1 4 7; do
    [ "$(rcli SISMEMBER "$P:suppressed" "r$i@example.ph")" = 1 ] || fail "r$i not suppressed after 550"
    rcli HGET "$P:cledger:retry" "r$i" | grep -q '^failed:.*550' || fail "r$i ledger: $(rcli HGET "$P:cledger:retry" "r$i")"
done
ok "550 for r1, r4, r7: failed and suppressed; 7 sent"

# the operator fixes the addresses: lift the suppression, retry the failed
for i in 1 4 7; do sc unsuppress "r$i@example.ph" >/dev/null; done
stop_smtp
start_aiosmtpd "$T/smtp3"
camp_conf "$CONF" "$CAMP"
kill -HUP "$SUKID_PID_a"
wait_for 10 '[ $(grep -c "configuration reloaded" "$T/sukid-a.log") -ge 2 ]' || fail "reload 2"
out=$(sc campaign retry retry) || fail "retry failed"
echo "$out" | grep -q "3 failed recipients queued again" || fail "retry said '$out'"
wait_state retry completed 30
wait_for 10 '[ $(count "$T/smtp3") -ge 3 ]' || fail "retry sent nothing"
sleep 1
got=$(cat "$T"/smtp3/msg-*.json | "$PY" -c '
import json, sys
print(" ".join(sorted(json.loads(l)["rcpt_tos"][0] for l in sys.stdin)))')
[ "$got" = "r1@example.ph r4@example.ph r7@example.ph" ] || fail "retry sent to: $got"
[ "$(cfield retry sent)" = 10 ] || fail "after retry: sent $(cfield retry sent)"
[ "$(cfield retry failed)" = 0 ] || fail "after retry: failed $(cfield retry failed)"
out=$(sc campaign retry retry)
[ "$out" = "campaign retry: no failed recipients" ] || fail "second retry said '$out'"
ok "retry resent to the 3 failed recipients only"

# ---- the error rate pauses the campaign ----------------------------------
stop_smtp
start_aiosmtpd "$T/smtp4" --mode reject550
camp_conf "$CONF" "$CAMP"
kill -HUP "$SUKID_PID_a"
wait_for 10 '[ $(grep -c "configuration reloaded" "$T/sukid-a.log") -ge 3 ]' || fail "reload 3"
sc campaign create bad --template promo --audience segment=bad --rate 100/s >/dev/null || fail "create bad"
wait_state bad paused 30
reason=$(cfield bad reason)
echo "$reason" | grep -q '^error rate 100% ([0-9]* failed of [0-9]* since the last start) passed campaigns.error_threshold 50%$' ||
    fail "reason '$reason'"
f=$(cfield bad failed)
[ "$f" -ge 10 ] && [ "$f" -lt 300 ] || fail "failed $f: did not stop early"
sleep 1.5
[ "$(cfield bad failed)" = "$f" ] || fail "still sending after the automatic pause"
sc campaign status bad | grep -q "^state      paused: error rate 100%" || fail "status does not say why"
ok "error rate pause after $f failures: $reason"

# ---- start-at in the future ----------------------------------------------
stop_smtp
start_aiosmtpd "$T/smtp5"
camp_conf "$CONF" "$CAMP"
kill -HUP "$SUKID_PID_a"
wait_for 10 '[ $(grep -c "configuration reloaded" "$T/sukid-a.log") -ge 4 ]' || fail "reload 4"
later=$(date -u -d '+4 seconds' +%Y-%m-%dT%H:%M:%SZ)
sc campaign create later --template promo --audience segment=retry --start-at "$later" |
    grep -q "starts at" || fail "create later"
[ "$(cfield later state)" = scheduled ] || fail "not scheduled"
sleep 1
[ "$(count "$T/smtp5")" = 0 ] || fail "sent before its start time"
wait_state later completed 15
[ "$(cfield later sent)" = 10 ] || fail "later sent $(cfield later sent)"
ok "--start-at: waited, then sent"

# ---- two daemons: one runner; SIGTERM hands over at once ------------------
HTTP_A=$HTTP_PORT
HTTP_PORT=$(free_port)
CONF_B=$T/b.conf
camp_conf "$CONF_B" "$CAMP"
start_daemon b "$CONF_B"
HTTP_PORT=$HTTP_A
sc campaign create term --template promo --audience segment=retail --rate 300/s >/dev/null ||
    fail "create term"
wait_for 20 '[ "$(cfield term sent)" -ge 100 ]' || fail "term does not send"
runner=$(cfield term runner)
case "$runner" in
*:$SUKID_PID_a:*) holder=a other=b ;;
*:$SUKID_PID_b:*) holder=b other=a ;;
*) fail "runner '$runner' is neither daemon" ;;
esac
grep -q "campaign term: running here" "$T/sukid-$other.log" && fail "both daemons run term"
eval "hpid=\$SUKID_PID_$holder"
t0=$(now_ms)
stop_sukid $holder || fail "SIGTERM: exit status $?"
lease=$(rcli GET "$P:clock:term")
[ "$lease" != "$runner" ] || fail "lease still held by the stopped daemon"
wait_for 10 'grep -q "campaign term: running here" "$T/sukid-$other.log"' ||
    fail "the other daemon did not take over"
ok "SIGTERM of $holder: lease released, $other took over after $(($(now_ms) - t0)) ms"
wait_state term completed 60
[ "$(cfield term sent)" = 3000 ] || fail "term sent $(cfield term sent)"
cat "$T"/smtp5/msg-*.json | "$PY" -c '
import json, sys, collections
c = collections.Counter(json.loads(l)["rcpt_tos"][0] for l in sys.stdin)
d = [r for r, n in c.items() if n > 1]
assert not d, "sent twice: %s" % d[:5]
assert sum(1 for r in c if r.startswith("c")) == 3000, len(c)' || fail "term: duplicates or missing"
ok "term: 3000 sent once each across the handover"

# ---- usage ----------------------------------------------------------------
sc campaign create x --template promo >/dev/null 2>&1; [ $? = 2 ] || fail "missing --audience not usage"
sc campaign create x --template nope --audience all >/dev/null 2>&1; [ $? = 1 ] || fail "unknown template accepted"
sc campaign create 'bad name' --template promo --audience all >/dev/null 2>&1; [ $? = 2 ] || fail "bad name accepted"
sc campaign create x --template promo --audience everyone >/dev/null 2>&1; [ $? = 2 ] || fail "bad audience accepted"
sc campaign create x --template promo --audience set=nosuchset >/dev/null 2>&1; [ $? = 1 ] || fail "missing set accepted"
sc campaign create x --template promo --audience all --start-at tomorrow >/dev/null 2>&1; [ $? = 2 ] || fail "bad time accepted"
sc campaign create ctl --template promo --audience all >/dev/null 2>&1; [ $? = 1 ] || fail "duplicate name accepted"
sc campaign status nosuch >/dev/null 2>&1; [ $? = 1 ] || fail "unknown campaign status"
sc campaign pause nosuch >/dev/null 2>&1; [ $? = 1 ] || fail "unknown campaign pause"
sc --json campaign list >"$T/list.json" || fail "list"
[ "$(wc -l <"$T/list.json")" = 5 ] || fail "list: $(cat "$T/list.json")"
"$PY" -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$T/list.json" || fail "list --json"
ok "usage errors exit 2, failures 1; list --json"
stop_sukid $other || fail "sukid exit status"
