#!/bin/sh
# sched_retry.sh - delivery outcomes through a real SMTP server:
#  A. a 451 for one of two recipients: the job is rescheduled (attempt 1,
#     backoff), the recipient already accepted is not sent again (sent
#     marker), the other gets it on the retry: each exactly once.
#  B. a 550 for one recipient: a dead letter for that recipient only, the
#     other gets the message, no retry; a job without any recipient goes to
#     the dead letters whole.
#  C. temporary failures until max_attempts: dead letter "gave up after".
. "$top_srcdir/tests/integration/sched_lib.sh"
"$PY" -c "import aiosmtpd" 2>/dev/null || { echo "FAIL: cannot run here: python module aiosmtpd not found"; exit 1; }

start_redis
P=$SUKI_PREFIX
CONF=$T/sukid.conf

# smtp NAME ARGS... - start smtp_server.py in $T/NAME, set SP to its port
smtp()
{
    _d=$T/$1
    shift
    "$PY" "$top_srcdir/tests/integration/smtp_server.py" --dir "$_d" \
        --port-file "$_d.port" "$@" >"$_d.log" 2>&1 &
    SMTP_PID=$!
    lib_track $SMTP_PID
    wait_for 10 "[ -s '$_d.port' ]" || fail "smtp server $1 did not start"
    SP=$(cat "$_d.port")
}
smtp_stop() { kill "$SMTP_PID"; wait "$SMTP_PID" 2>/dev/null; lib_untrack "$SMTP_PID"; }
# accepted DIR ADDR - messages the server accepted for ADDR
accepted() { cat "$1"/msg-*.json 2>/dev/null | grep -c "\"$2\""; }
conf()
{
    LOG_LEVEL=debug EMAIL="url = \"smtp://127.0.0.1:$SP\"; starttls = \"off\"; max_connections = 1; $1" \
        sched_conf "$CONF"
}

# ---- A. tempfail for one recipient, then success ---------------------
smtp A --mode fail451 --fail-count 1 --fail-at data
conf 'retry_initial = "2s"; retry_max = "4s";'
start_sched a "$CONF"
add_jobs --client ca --key sa --due "$(now_ms)" \
    --notify "a@example.com,b@example.com"
wait_for 10 'sukictl --json jobs --client ca | grep -q "\"attempt\":1"' ||
    fail "the job was not rescheduled with attempt 1"
ok "a 451 reschedules the job with attempt 1"
wait_for 15 '[ "$(rcli HEXISTS $P:job:ca sched-test:ca:sa:)" = 0 ]' ||
    fail "the retried job did not complete"
[ "$(accepted "$T/A" a@example.com)" = 1 ] ||
    fail "a@ got $(accepted "$T/A" a@example.com) messages, expected 1"
[ "$(accepted "$T/A" b@example.com)" = 1 ] ||
    fail "b@ got $(accepted "$T/A" b@example.com) messages, expected 1"
[ "$(grep -c 'was sent before; not again' "$T/sukid-a.log")" = 1 ] ||
    fail "the accepted recipient was not skipped on the retry"
[ "$(rcli XLEN "$P:dead")" = 0 ] || fail "unexpected dead letters"
ok "the retry sends only to the recipient that failed: each got it once"
stop_sukid a || fail "sukid a did not exit 0"
smtp_stop

# ---- B. permanent failure for one recipient; no recipient at all -----
smtp B --mode reject550 --reject-rcpt b@example.com
conf 'retry_initial = "1s";'
start_sched b "$CONF"
add_jobs --client cb --key sb --due "$(now_ms)" \
    --notify "a@example.com,b@example.com"
add_jobs --client cn --key sn --due "$(now_ms)" --notify "manager"
wait_for 10 '[ "$(zcard)" = 0 ]' || fail "jobs left: $(zcard)"
wait_for 5 '[ "$(rcli XLEN $P:dead)" = 2 ]' ||
    fail "expected 2 dead letters, got $(rcli XLEN "$P:dead")"
rcli XRANGE "$P:dead" - + >"$T/dead.txt"
grep -A1 '^recipient$' "$T/dead.txt" | grep -q '^b@example.com$' ||
    fail "no dead letter for b@"
grep -A1 '^reason$' "$T/dead.txt" | grep -q '550' ||
    fail "the dead letter lacks the server's reply"
grep -A1 '^source$' "$T/dead.txt" | grep -q '^sched-test:cb:sb:$' ||
    fail "the dead letter does not name the job"
grep -A1 '^reason$' "$T/dead.txt" | grep -q 'no recipient' ||
    fail "no dead letter for the job without recipients"
[ "$(accepted "$T/B" a@example.com)" = 1 ] || fail "a@ did not get it once"
[ "$(accepted "$T/B" b@example.com)" = 0 ] || fail "b@ got a message"
grep -q "attempt 2 of" "$T/sukid-b.log" && fail "a 550 was retried"
ok "550 for one recipient: dead letter for it alone; none: the job is dead"
stop_sukid b || fail "sukid b did not exit 0"
smtp_stop

# ---- C. exhausted retries --------------------------------------------
rcli DEL "$P:dead" >/dev/null
smtp C --mode fail451 --fail-count 100 --fail-at rcpt
conf 'retry_initial = "200ms"; retry_max = "400ms"; max_attempts = 3;'
start_sched c "$CONF"
add_jobs --client cc --key sc --due "$(now_ms)" --notify "a@example.com"
wait_for 15 '[ "$(zcard)" = 0 ]' || fail "the failing job was never given up"
[ "$(rcli XLEN "$P:dead")" = 1 ] || fail "expected 1 dead letter"
rcli XRANGE "$P:dead" - + | grep -q "gave up after 3 attempts: .*451" ||
    fail "dead letter reason: $(rcli XRANGE "$P:dead" - +)"
[ "$(grep -c 'RCPT a@example.com 451' "$T/C/events.log")" = 3 ] ||
    fail "expected 3 attempts at the server"
ok "after max_attempts temporary failures: a dead letter with the reply"
stop_sukid c || fail "sukid c did not exit 0"
exit 0
