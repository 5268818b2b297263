#!/bin/sh
# settle_retry.sh - the reply to a settle that records a permanent failure
# is lost (the connection drops after Redis ran it): sukid sends the settle
# again, and the failure is dead-lettered once, not once per try (dead
# letters were added before the job-body check, so every retry added one).
. "$top_srcdir/tests/integration/sched_lib.sh"
need redis-server redis-cli "$SUKID"

start_redis
SMTPD=$T/smtpd
"$PY" "$top_srcdir/tests/integration/smtp_server.py" --dir "$SMTPD" \
    --port-file "$T/smtp.port" --mode reject550 \
    --reject-rcpt bounce@rcpt.test >"$T/smtp.log" 2>&1 &
lib_track $!
"$PY" "$top_srcdir/tests/chaos/fault_proxy.py" --listen-port-file "$T/proxy.port" \
    --to "$REDIS_PORT" --match 'bounce@rcpt.test' >"$T/proxy.log" 2>&1 &
lib_track $!
wait_for 10 '[ -s "$T/smtp.port" ] && [ -s "$T/proxy.port" ]' ||
    fail "smtp server or proxy did not start"
CONF=$T/sukid.conf
RP=$REDIS_PORT
REDIS_PORT=$(cat "$T/proxy.port")
EMAIL="url = \"smtp://127.0.0.1:$(cat "$T/smtp.port")\"; starttls = \"off\";" \
    sched_conf "$CONF"
REDIS_PORT=$RP
add_jobs --count 1 --due $(($(now_ms) - 1000)) --notify bounce@rcpt.test
start_sched a "$CONF"
wait_for 20 'grep -q LOST "$T/proxy.log"' || fail "the proxy lost no reply"
wait_for 20 '[ "$(zcard)" = 0 ]' || fail "job not settled: $(zcard) left"
sleep 2
n=$(rcli XLEN "$SUKI_PREFIX:dead")
[ "$n" = 1 ] || fail "dead letters: $n, want 1: $(rcli XRANGE "$SUKI_PREFIX:dead" - +)"
rcli XRANGE "$SUKI_PREFIX:dead" - + | grep -q 'bounce@rcpt.test' || fail "dead letter"
ok "a settle retried after a lost reply dead-lettered its failure once"
stop_sukid a || fail "exit status $?"
