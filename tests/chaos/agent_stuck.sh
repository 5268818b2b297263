#!/bin/sh
# agent_stuck.sh - the delivery agent stops answering (SIGSTOP: alive, its
# channel open, doing nothing) while a reminder is handed to it. Nothing
# covered a message handed to the agent, so the job stayed in flight, its
# lease renewed for ever, and the reminder never went out. Now sukid sees no
# answer for the transport's timeout plus 10 s, kills that agent, starts a
# new one and sends the reminder, once.
. "$top_srcdir/tests/integration/sched_lib.sh"
need redis-server redis-cli "$SUKID"

start_redis
slow_smtpd 0
CONF=$T/sukid.conf
EMAIL="url = \"smtp://127.0.0.1:$SP\"; starttls = \"off\"; timeout = \"2s\"; retry_initial = \"1s\";" \
    sched_conf "$CONF"
start_sched a "$CONF"
ap=$(agent_pid a)
[ -n "$ap" ] || fail "no agent pid in the log"
kill -STOP "$ap"
add_jobs --count 1 --due $(($(now_ms) - 1000))
wait_for 40 '[ "$(mail_count)" -ge 1 ]' ||
    fail "the reminder never went out (jobs $(zcard)); the agent is stuck"
grep -q "lost: no answer to a message for [0-9]* s (stuck)" "$T/sukid-a.log" ||
    fail "the stuck agent was not named in the log"
[ "$(agent_pid a)" != "$ap" ] || fail "no new agent"
wait_for 10 '[ "$(zcard)" = 0 ]' || fail "job not completed"
sleep 1
[ "$(mail_count)" = 1 ] || fail "the server got $(mail_count) copies"
ok "a stuck agent was replaced and the reminder sent once"
kill -CONT "$ap" 2>/dev/null
stop_sukid a || fail "exit status $?"
