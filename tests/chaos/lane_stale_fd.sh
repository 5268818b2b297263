#!/bin/sh
# lane_stale_fd.sh - a worker lane kept the number of every socket libcurl
# opened through it and dropped it in the close callback; but libcurl 7.88
# closes a socket that never finished connecting (a connect cut by the
# transfer's timeout) with a plain close(), without the callback. The stale
# number, soon taken by another lane's connection, was shut down when the
# first lane stopped: here a reload that drops the "chat" transport (whose
# connects to a server that never accepts timed out) killed the email
# transfer waiting 5 s for the server's answer to its final ".", which
# failed "response reading failed (errno: 115)" and was sent again. Before
# the fix this test fails on that line in the log; after it the email goes
# out once.
. "$top_srcdir/tests/integration/sched_lib.sh"
need redis-server redis-cli "$SUKID"
"$PY" -c "import aiosmtpd" 2>/dev/null ||
    fail "cannot run here: python module aiosmtpd not found"

start_redis
slow_smtpd 5
# a listener that never accepts, its backlog full: a connect to it hangs
"$PY" - "$T/hole.port" <<'EOF' &
import os, socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(0)
fill = []
for _ in range(4):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(s.getsockname())
    except BlockingIOError:
        pass
    fill.append(c)
time.sleep(0.5)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % s.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(3600)
EOF
lib_track $!
wait_for 10 '[ -s "$T/hole.port" ]' || fail "the listener did not start"
HOLE=$(cat "$T/hole.port")
"$PY" -c 'import socket,sys; s=socket.socket(); s.settimeout(1); s.connect(("127.0.0.1", int(sys.argv[1])))' "$HOLE" 2>/dev/null &&
    fail "cannot run here: a connect to the full listener does not hang"

CONF=$T/sukid.conf
# max_attempts 1: a failure is dead-lettered at once and its reason logged
EMAIL="url = \"smtp://127.0.0.1:$SP\"; starttls = \"off\"; timeout = \"20s\"; max_connections = 1; max_attempts = 1;"
LOG_LEVEL=debug EMAIL=$EMAIL \
    CHAT="url = \"http://127.0.0.1:$HOLE/hook\"; timeout = \"1s\"; retry_initial = \"1h\"; max_connections = 8;" \
    sched_conf "$CONF"
start_sched a "$CONF"

# 1. 8 webhooks' connects hang and are cut after 1 s (8 numbers freed: the
#    email's lane takes the lowest ones for its own descriptors)
add_jobs --count 8 --channel chat --due "$(now_ms)"
wait_for 10 '[ "$(grep -c "failed temporarily" "$T/sukid-a.log")" = 8 ]' ||
    fail "the webhooks did not time out"
# 2. the email's connection (on one of the numbers just freed) waits 5 s
#    for the answer to its final "."
add_jobs --client e1 --key m1 --due "$(now_ms)"
wait_for 10 '[ "$(mail_count)" -ge 1 ]' || fail "the email did not start"
# 3. a reload drops the chat transport: its lane stops while the email waits
LOG_LEVEL=debug EMAIL=$EMAIL sched_conf "$CONF"
kill -HUP "$SUKID_PID_a"
wait_for 10 'grep -q "configuration reloaded" "$T/sukid-a.log"' || fail "no reload"
wait_for 15 'grep -q "job sched-test:e1:m1:.*\(status=\|failed: \)" "$T/sukid-a.log"' ||
    fail "the email got no outcome"
grep 'job sched-test:e1:m1:.*\(status=\|failed: \)' "$T/sukid-a.log" | head -2
F=$(grep -c 'response reading failed' "$T/sukid-a.log")
[ "$F" = 0 ] || fail "the email's transfer was cut ($F x 'response reading failed')"
grep -q 'job sched-test:e1:m1:.*status=sent' "$T/sukid-a.log" ||
    fail "the email was not sent"
sleep 1
[ "$(mail_count)" = 1 ] || fail "the server saw $(mail_count) transactions, want 1"
ok "a lane stopping after a cut connect leaves the other lanes' connections alone"
stop_sukid a || fail "a: exit status $?"
