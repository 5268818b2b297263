#!/bin/sh
# sched_stop.sh - SIGTERM while thousands of jobs are being fired: sukid
# stops claiming, settles what is in flight, exits 0; nothing is lost (a
# restarted sukid delivers the rest) and nothing is sent twice.
. "$top_srcdir/tests/integration/sched_lib.sh"

N=3000
start_redis
CONF=$T/sukid.conf
P=$SUKI_PREFIX
LOG_LEVEL=debug SCHED_EXTRA='lease = "2s"; batch = 64;' sched_conf "$CONF"
add_jobs --count "$N" --due "$(($(now_ms) - 1000))" --clients 100

start_sched a "$CONF"
wait_for 20 '[ "$(spool_count)" -ge 200 ]' || fail "nothing fired"
stop_sukid a || fail "sukid did not exit 0 on SIGTERM"
grep -q "scheduler: stopped, nothing in flight" "$T/sukid-a.log" ||
    fail "the stop did not settle what was in flight"
LEFT=$(zcard)
SENT1=$(spool_count)
echo "stopped after $SENT1 messages, $LEFT jobs left"
[ "$LEFT" -gt 0 ] || fail "all jobs done before the stop: the test proves nothing"
# Settled on the way out: what was sent is completed and marked.
[ "$((LEFT + SENT1))" -ge "$N" ] || fail "jobs lost: $LEFT left + $SENT1 sent < $N"
[ "$(rcli --scan --pattern "$P:sent:*" | wc -l)" = "$SENT1" ] ||
    fail "sent markers do not match the messages sent"
ok "SIGTERM mid-flight: exit 0, in-flight jobs settled"

start_sched b "$CONF"
wait_for 60 '[ "$(zcard)" = 0 ]' || fail "$(zcard) jobs left after restart"
wait_for 10 '[ "$(spool_count)" = "$N" ]' || fail "$(spool_count) messages"
cat "$T/sukid-a.log" "$T/sukid-b.log" |
    sed -n 's/.* message-id=<\(.*\)>, status=sent .*/\1/p' | sort | uniq -d >"$T/dups"
[ ! -s "$T/dups" ] || fail "messages sent twice: $(wc -l <"$T/dups")"
ok "restarted: the rest delivered, every message exactly once"
stop_sukid b || fail "sukid b did not exit 0"
exit 0
