#!/bin/sh
# sched_crash.sh - with a slow SMTP server:
#  1. sukid a claims a job and is killed (-9) while sending it: the job is
#     leased, not lost; sukid b fires it again once, and not before the
#     lease has ended. (The server sits on the final "." for 3 s, longer
#     than the 2 s lease: a's delivery agent is still waiting when b looks
#     for the sent marker, so the server gets the message twice. That is the
#     one case the agent cannot cover; agent_kill.sh tests the others.)
#  2. a job replaced (upsert) while it is being sent survives the old send:
#     completion compares the stored body with the claimed one.
#  3. a send that outlasts the lease: the lease is renewed, so a second
#     daemon does not fire the job again.
. "$top_srcdir/tests/integration/sched_lib.sh"
need_py() { "$PY" -c "import $1" 2>/dev/null || { echo "FAIL: cannot run here: python module $1 not found"; exit 1; }; }
need_py aiosmtpd

start_redis
slow_smtpd 3

CONF=$T/sukid.conf
LOG_LEVEL=debug SCHED_EXTRA='lease = "2s";' \
    EMAIL="url = \"smtp://127.0.0.1:$SP\"; starttls = \"off\"; timeout = \"20s\"; max_connections = 1;" \
    sched_conf "$CONF"
P=$SUKI_PREFIX
J1=sched-test:c1:s1:
J2=sched-test:c2:s2:

log_ms()
{
    # first line of log $1 matching $2 -> its timestamp in epoch ms
    grep -m1 -- "$2" "$1" | "$PY" -c '
import sys, datetime
l = sys.stdin.readline().split()[0]
t = datetime.datetime.strptime(l, "%Y-%m-%dT%H:%M:%S.%fZ")
print(int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))'
}

# ---- 1. killed while sending ---------------------------------------
start_sched a "$CONF"
add_jobs --client c1 --key s1 --due "$(now_ms)"
wait_for 10 '[ "$(mail_count)" -ge 1 ]' || fail "sukid a did not start sending"
LEASE_END=$(rcli ZSCORE "$P:jobs" "$J1")
[ -n "$LEASE_END" ] || fail "the job is gone while being sent"
[ "$LEASE_END" -gt "$(now_ms)" ] || fail "the job is not leased"
stop_sukid a KILL
grep -q "status=sent" "$T/sukid-a.log" &&
    fail "a finished sending before the kill: the test proves nothing"
[ "$(rcli HEXISTS "$P:job:c1" "$J1")" = 1 ] || fail "the killed claim lost the job"
ok "killed while sending: the job stays, leased until $LEASE_END"

start_sched b "$CONF"
wait_for 20 '[ "$(rcli HEXISTS $P:job:c1 $J1)" = 0 ]' ||
    fail "the leased job did not come back and complete"
FIRED_B=$(grep -c "job $J1 fired" "$T/sukid-b.log")
[ "$FIRED_B" = 1 ] || fail "b fired the job $FIRED_B times, expected once"
T_B=$(log_ms "$T/sukid-b.log" "job $J1 fired")
[ "$T_B" -ge "$LEASE_END" ] ||
    fail "b fired at $T_B, before the lease ended at $LEASE_END"
grep -q "job $J1: to=<.*status=sent" "$T/sukid-b.log" || fail "b did not send it"
[ "$(rcli --scan --pattern "$P:sent:*" | wc -l)" = 1 ] ||
    fail "no sent marker after the send"
ok "the job fired again once, after its lease ($((T_B - LEASE_END)) ms after)"

# ---- 2. replaced while being sent ----------------------------------
M0=$(mail_count)
add_jobs --client c2 --key s2 --due "$(now_ms)"
wait_for 10 '[ "$(mail_count)" -gt '"$M0"' ]' || fail "b did not send J2"
NEWDUE=$(($(now_ms) + 3600000))
add_jobs --client c2 --key s2 --due "$NEWDUE"
wait_for 15 '[ "$(rcli --scan --pattern "$P:sent:*" | wc -l)" = 2 ]' ||
    fail "the first send of J2 was not recorded"
sleep 0.5
[ "$(rcli ZSCORE "$P:jobs" "$J2")" = "$NEWDUE" ] ||
    fail "the replaced job lost its new due time: $(rcli ZSCORE "$P:jobs" "$J2")"
rcli HGET "$P:job:c2" "$J2" | grep -q "^{\"d\":$NEWDUE[,}]" ||
    fail "the replaced job's body is gone: $(rcli HGET "$P:job:c2" "$J2")"
ok "a job replaced while being sent survives the old send's completion"

# ---- 3. a send longer than the lease: the lease is renewed ----------
# A webhook that takes 3 s to answer, a 2 s lease: without renewal the
# second daemon would claim the job again while the first still sends.
# (A webhook, because libcurl's SMTP waits for the reply to the final "."
# in a blocking poll, which also stops the loop and its timers.)
HTTPD=$T/httpd
"$PY" "$top_srcdir/tests/integration/http_server.py" --dir "$HTTPD" \
    --port-file "$T/http.port" --mode slow --delay 3 >"$T/httpd.log" 2>&1 &
lib_track $!
wait_for 10 '[ -s "$T/http.port" ]' || fail "http server did not start"
stop_sukid b || fail "sukid b did not exit 0"
LOG_LEVEL=debug SCHED_EXTRA='lease = "2s";' \
    EMAIL="url = \"smtp://127.0.0.1:$SP\"; starttls = \"off\";" \
    CHAT="url = \"http://127.0.0.1:$(cat "$T/http.port")/hook\"; format = \"json\"; timeout = \"20s\";" \
    sched_conf "$CONF"
start_sched b "$CONF"
start_sched c "$CONF"
J3=sched-test:c3:s3:
add_jobs --client c3 --key s3 --due "$(now_ms)" --channel chat
wait_for 20 '[ "$(rcli HEXISTS $P:job:c3 $J3)" = 0 ]' || fail "J3 did not complete"
FIRES=$(cat "$T/sukid-b.log" "$T/sukid-c.log" | grep -c "job $J3 fired")
[ "$FIRES" = 1 ] || fail "J3 fired $FIRES times with two daemons"
[ "$(grep -c POST "$HTTPD/requests.log")" = 1 ] ||
    fail "the webhook got $(grep -c POST "$HTTPD/requests.log") posts"
grep -q "renewing the lease" "$T/sukid-b.log" "$T/sukid-c.log" ||
    fail "no lease renewal was logged"
"$PY" - "$HTTPD/body-1.json" <<'EOF2' || fail "webhook body"
import json, sys
b = json.load(open(sys.argv[1]))
assert b["client"] == "c3" and b["rule"] == "sched-test", b
assert b["subject"] == "Reminder sched-test for c3", b
assert "Job of c3 (s3)" in b["text"], b
EOF2
ok "a send longer than the lease: renewed, fired once with two daemons"

stop_sukid b || fail "sukid b did not exit 0"
stop_sukid c || fail "sukid c did not exit 0"
exit 0
