#!/bin/sh
# agent_kill.sh - the delivery agent, the child process of sukid that runs
# the transfers (daemon/deliver/deliver.h):
#  1. sukid is killed (-9) while the SMTP server takes 1.5 s to answer the
#     final ".": its agent finishes the transfer, sets the message's sent
#     marker and exits; the daemon that takes the job over after its lease
#     finds the marker and does not send again. The server has one copy.
#  2. the agent is killed (-9) while sukid lives: sukid says so, starts a
#     new agent, sends the message the old one held again (at least once:
#     nobody can know whether it went out) and goes on sending.
#  3. SIGTERM to sukid: its agent exits with it.
. "$top_srcdir/tests/integration/sched_lib.sh"
"$PY" -c "import aiosmtpd" 2>/dev/null || { echo "FAIL: cannot run here: python module aiosmtpd not found"; exit 1; }

start_redis
slow_smtpd 1.5

CONF=$T/sukid.conf
HTTP_PORT=$(free_port)
HTTP_PORT=$HTTP_PORT LOG_LEVEL=debug SCHED_EXTRA='lease = "4s";' \
    EMAIL="url = \"smtp://127.0.0.1:$SP\"; starttls = \"off\"; timeout = \"20s\"; max_connections = 1; retry_initial = \"1s\";" \
    sched_conf "$CONF"
P=$SUKI_PREFIX
J1=sched-test:c1:s1:

data_count() { smtpd_count '^DATA .* 250'; }

# ---- 1. sukid killed while the server holds the final "." -----------
start_sched a "$CONF"
AG=$(agent_pid a)
[ -n "$AG" ] && kill -0 "$AG" || fail "sukid a runs no delivery agent"
lib_track "$AG"
add_jobs --client c1 --key s1 --due "$(now_ms)"
wait_for 10 '[ "$(mail_count)" -ge 1 ]' || fail "sukid a did not start sending"
stop_sukid a KILL
[ "$(data_count)" = 0 ] || fail "the server answered before the kill: the test proves nothing"
grep -q "status=sent" "$T/sukid-a.log" && fail "a recorded the send before the kill"
wait_for 10 '! kill -0 $AG 2>/dev/null' || fail "the agent of the killed sukid did not exit"
[ "$(data_count)" = 1 ] || fail "the agent did not finish the transfer"
MID=$(grep -m1 -i '^Message-ID:' "$SMTPD/msg-1.eml" | tr -d '\r' | sed 's/^[^:]*: *//')
[ "$(rcli EXISTS "$P:sent:$MID")" = 1 ] || fail "no sent marker for $MID"
ok "sukid killed mid-send: its agent finished the transfer and set the marker"

start_sched b "$CONF"
lib_track "$(agent_pid b)"
wait_for 20 '[ "$(rcli HEXISTS $P:job:c1 $J1)" = 0 ]' ||
    fail "the leased job did not come back and complete"
grep -q "message $MID was sent before; not again" "$T/sukid-b.log" ||
    fail "b did not find the marker"
sleep 2 # a second copy would be under way by now
[ "$(mail_count)" = 1 ] || fail "the server saw $(mail_count) transactions, want 1"
ok "the job completed with exactly one copy at the server"

# ---- 2. the agent killed while sukid lives ---------------------------
AG=$(agent_pid b)
add_jobs --client c2 --key s2 --due "$(now_ms)"
wait_for 10 '[ "$(mail_count)" -ge 2 ]' || fail "b did not start sending"
kill -KILL "$AG"
wait_for 10 '[ "$(agent_pid b)" != "$AG" ]' || fail "no new agent after the old one died"
lib_track "$(agent_pid b)"
grep -q "delivery agent (pid $AG) lost" "$T/sukid-b.log" || fail "the loss was not logged"
[ "$(metric suki_agent_restarts_total)" = 1 ] ||
    fail "suki_agent_restarts_total $(metric suki_agent_restarts_total), want 1"
wait_for 20 '[ "$(rcli HEXISTS $P:job:c2 sched-test:c2:s2:)" = 0 ]' ||
    fail "the job held by the killed agent was not sent again"
add_jobs --client c3 --key s3 --due "$(now_ms)"
wait_for 20 '[ "$(rcli HEXISTS $P:job:c3 sched-test:c3:s3:)" = 0 ]' ||
    fail "the new agent does not send"
grep -q "RCPT ops@example.com 250" "$SMTPD/events.log" || fail "no recipient"
ok "agent killed: logged, replaced, its message tried again, mail flows"

# ---- 3. SIGTERM: the agent goes with sukid ---------------------------
AG=$(agent_pid b)
kill -0 "$AG" || fail "no agent"
stop_sukid b || fail "sukid b exit status"
wait_for 5 '! kill -0 $AG 2>/dev/null' || fail "the agent outlived sukid's stop"
ok "SIGTERM: the agent exited with sukid"
