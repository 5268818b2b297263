#!/bin/sh
# dispatch_slow.sh - a slow SMTP server does not stop the daemon. libcurl
# 7.88 waits blocking for the reply to the final "." even in the multi
# interface; the dispatcher runs its transfers on worker threads, so while
# reminders wait on a server that takes 5 s to answer, /healthz still
# answers at once and a second transport (a spool named "chat") delivers
# its messages. Then SIGTERM while a send waits on a server that would take
# a minute: sukid exits 0 after its shutdown_timeout (it does not hang
# until the server answers), the unanswered job stays scheduled, and a
# restart against a fast server delivers it.
. "$top_srcdir/tests/integration/sched_lib.sh"
need curl

# start_smtpd DIR [smtp_server.py options] - sets SMTP_PORT, SMTP_PID
start_smtpd()
{
    _d=$1
    shift
    mkdir -p "$_d"
    rm -f "$_d/port"
    "$PY" "$top_srcdir/tests/integration/smtp_server.py" --dir "$_d" \
        --port-file "$_d/port" "$@" >"$_d/server.log" 2>&1 &
    SMTP_PID=$!
    lib_track $SMTP_PID
    wait_for 15 "[ -s '$_d/port' ]" || fail "smtp server did not start"
    SMTP_PORT=$(cat "$_d/port")
}

# healthz - "CODE SECONDS" of one GET /healthz (curl gives up after 3 s)
healthz()
{
    curl -s -o /dev/null -m 3 -w '%{http_code} %{time_total}' \
        "http://127.0.0.1:$HTTP_PORT/healthz"
}

# replies DIR - final-dot replies the SMTP server has sent so far
replies() { grep -c '^DATA ' "$1/events.log" 2>/dev/null || true; }

start_redis
CONF=$T/sukid.conf
HTTP_PORT=$(free_port)
start_smtpd "$T/slow" --mode slow --delay 5
SLOW_PORT=$SMTP_PORT

EMAIL="url = \"smtp://127.0.0.1:$SLOW_PORT\"; starttls = \"off\";
       max_connections = 2; timeout = \"30s\";" \
    CHAT="url = \"spool://$T/spool\";" HTTP_PORT=$HTTP_PORT sched_conf "$CONF"
NOW=$(now_ms)
add_jobs --count 3 --due "$NOW" --key-prefix mail
add_jobs --count 5 --due "$NOW" --channel chat --key-prefix chat
[ "$(zcard)" = 8 ] || fail "expected 8 jobs, have $(zcard)"

start_sched a "$CONF"
# the first reminders are on their way: MAIL sent, the final "." not
# answered yet (the server answers 5 s after it)
wait_for 15 'grep -q "^MAIL " "$T/slow/events.log"' ||
    fail "no SMTP transaction started"

# the daemon's loop keeps turning meanwhile
N=0
while [ "$(replies "$T/slow")" = 0 ] && [ $N -lt 5 ]; do
    H=$(healthz)
    echo "healthz: $H (SMTP replies so far: $(replies "$T/slow"))"
    [ "${H% *}" = 200 ] || fail "/healthz answered '$H' while a send waits"
    awk -v t="${H#* }" 'BEGIN { exit !(t < 1.0) }' ||
        fail "/healthz took ${H#* } s while a send waits"
    N=$((N + 1))
    sleep 0.2
done
[ $N -ge 1 ] || fail "the slow server answered before /healthz was asked"
ok "/healthz answered $N times within 1 s while the SMTP server sat on the final dot"

# the other transport delivered while the mail still waited
wait_for 10 '[ "$(spool_count)" = 5 ]' ||
    fail "chat (spool) delivered $(spool_count) of 5"
[ "$(replies "$T/slow")" = 0 ] ||
    fail "chat messages went out only after the slow server answered"
ok "the spool transport delivered its 5 messages before the first SMTP reply"

# and the reminders themselves arrive in the end
wait_for 40 '[ -f "$T/slow/msg-3.eml" ] && [ "$(zcard)" = 0 ]' ||
    fail "slow mail: $(replies "$T/slow") replies, $(zcard) jobs left"
wait_for 5 "[ \"\$(metric 'suki_messages_total{channel=\"email\",result=\"sent\"}')\" = 3 ]" ||
    fail "email sent metric $(metric 'suki_messages_total{channel="email",result="sent"}')"
[ "$(metric 'suki_messages_total{channel="chat",result="sent"}')" = 5 ] ||
    fail "chat sent metric $(metric 'suki_messages_total{channel="chat",result="sent"}')"
ok "the 3 reminders were accepted by the slow server; jobs completed"
stop_sukid a || fail "sukid a did not exit 0"

# ---- stop while a send waits on a server that would take a minute ----
start_smtpd "$T/stuck" --mode slow --delay 60
# a short lease (renewed while the send waits) so that sukid c below can
# take the job over soon after sukid b is gone
SCHED_EXTRA='lease = "2s";' \
    EMAIL="url = \"smtp://127.0.0.1:$SMTP_PORT\"; starttls = \"off\";
       max_connections = 2; timeout = \"120s\";" \
    CHAT="url = \"spool://$T/spool\";" HTTP_PORT=$HTTP_PORT sched_conf "$CONF"
add_jobs --count 1 --due "$(now_ms)" --key-prefix stuck
start_sched b "$CONF"
wait_for 15 'grep -q "^MAIL " "$T/stuck/events.log"' ||
    fail "no SMTP transaction to the stuck server"
H=$(healthz)
[ "${H% *}" = 200 ] || fail "/healthz answered '$H' while a send is stuck"
T0=$(now_ms)
stop_sukid b || fail "sukid b did not exit 0 with a send stuck"
EL=$(($(now_ms) - T0))
echo "stopped in $EL ms (shutdown_timeout 5 s, the server would answer after 60 s)"
[ "$EL" -lt 30000 ] || fail "the stop waited for the stuck server (${EL} ms)"
[ "$(replies "$T/stuck")" = 0 ] || fail "the stuck server answered after all"
[ "$(zcard)" = 1 ] || fail "the unanswered job was not kept: $(zcard) jobs"
ok "SIGTERM with a stuck send: exit 0 after the shutdown timeout, job kept"

# a restart against a normal server delivers it
kill "$SMTP_PID" 2>/dev/null
start_smtpd "$T/fast"
EMAIL="url = \"smtp://127.0.0.1:$SMTP_PORT\"; starttls = \"off\";" \
    CHAT="url = \"spool://$T/spool\";" HTTP_PORT=$HTTP_PORT sched_conf "$CONF"
# the job's lease from sukid b has to run out first
start_sched c "$CONF"
wait_for 30 '[ -f "$T/fast/msg-1.eml" ] && [ "$(zcard)" = 0 ]' ||
    fail "the kept job was not delivered after the restart"
ok "restarted: the kept job delivered"
stop_sukid c || fail "sukid c did not exit 0"
exit 0
