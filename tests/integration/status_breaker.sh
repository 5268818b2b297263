#!/bin/sh
# status_breaker.sh - a mail server that is down opens the transport's
# circuit breaker; `sukictl status` shows the daemon, its transport and the
# open breaker (exit 1), and shows it closed again once mail flows.
. "$top_srcdir/tests/integration/sched_lib.sh"
"$PY" -c "import aiosmtpd" 2>/dev/null || { echo "FAIL: cannot run here: python module aiosmtpd not found"; exit 1; }

start_redis
CONF=$T/sukid.conf
PORT=$(free_port)   # nobody listens here yet
EMAIL="url = \"smtp://127.0.0.1:$PORT\"; starttls = \"off\";
        breaker_failures = 2; breaker_cooldown = \"2s\";
        retry_initial = \"1s\"; retry_max = \"1s\";" sched_conf "$CONF"
start_sched a "$CONF"

add_jobs --count 3 --due "$(now_ms)"
wait_for 20 '"$SUKICTL" -c "$CONF" --json status | grep -q "\"breaker\":\"open\""' ||
    fail "breaker never shown open: $("$SUKICTL" -c "$CONF" status)"
"$SUKICTL" -c "$CONF" status >"$T/status.txt" && fail "status exit 0 with an open breaker"
grep -q "transport email .*breaker open" "$T/status.txt" ||
    fail "text status: $(cat "$T/status.txt")"
grep -q "^breaker_open  *true" "$T/status.txt" || fail "breaker_open line"
ok "open breaker shown, exit 1"

# The server comes up on that port: the probe succeeds, mail flows.
"$PY" "$top_srcdir/tests/integration/smtp_server.py" --dir "$T/mail" \
    --port "$PORT" --port-file "$T/smtp.port" >"$T/smtp.log" 2>&1 &
lib_track $!
wait_for 30 '[ $(ls "$T"/mail/msg-*.eml 2>/dev/null | wc -l) -ge 3 ]' ||
    fail "mail did not flow after the server came up"
wait_for 10 '"$SUKICTL" -c "$CONF" status >/dev/null' ||
    fail "status still failing: $("$SUKICTL" -c "$CONF" status)"
"$SUKICTL" -c "$CONF" --json status | grep -q '"daemons":\[{' ||
    fail "no daemon in the json status"
ok "breaker closed again, status exit 0"
stop_sukid a || fail "sukid did not stop cleanly"
