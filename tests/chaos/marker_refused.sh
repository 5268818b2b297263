#!/bin/sh
# marker_refused.sh - Redis refuses every write (OOM at maxmemory, as it
# answers -LOADING while it loads a large AOF) while a server holds the
# final "." of a reminder, for longer than the job's lease. Before, the
# agent dropped its sent marker at the first error reply and the scheduler
# gave up on the settle after one lease, so the job was claimed again once
# Redis took writes and the message went out twice. Now the marker and the
# settle are retried until Redis takes them and no job is claimed while a
# settle waits: the server gets the message exactly once.
. "$top_srcdir/tests/integration/sched_lib.sh"
need redis-server redis-cli "$SUKID"

start_redis
slow_smtpd 2
CONF=$T/sukid.conf
SCHED_EXTRA='lease = "2s";' \
    EMAIL="url = \"smtp://127.0.0.1:$SP\"; starttls = \"off\"; timeout = \"20s\";" \
    sched_conf "$CONF"
add_jobs --count 3 --due $(($(now_ms) - 1000))
start_sched a "$CONF"
# the three messages are in DATA: refuse writes before the server answers
wait_for 10 '[ "$(smtpd_count "^DATA")" -ge 1 ] || [ "$(smtpd_count "^MAIL")" -ge 3 ]' ||
    fail "no message reached the server"
rcli CONFIG SET maxmemory 1 >/dev/null
rcli SET probe 1 2>&1 | grep -q OOM || fail "Redis still takes writes"
sleep 6 # three leases
rcli CONFIG SET maxmemory 0 >/dev/null
wait_for 20 '[ "$(zcard)" = 0 ]' || fail "$(zcard) jobs left"
sleep 3 # a second copy would be on its way by now
[ "$(mail_count)" = 3 ] || fail "the server got $(mail_count) messages, want 3"
[ "$(rcli --scan --pattern "$SUKI_PREFIX:sent:*" | wc -l)" = 3 ] ||
    fail "sent markers: $(rcli --scan --pattern "$SUKI_PREFIX:sent:*" | wc -l)"
grep -q 'OOM' "$T/sukid-a.log" || fail "the refusal was not logged"
ok "writes refused for three leases mid-send: every message once"
stop_sukid a || fail "exit status $?"
