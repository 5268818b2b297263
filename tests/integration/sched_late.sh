#!/bin/sh
# sched_late.sh - after an outage (due times in the past): overdue jobs fire
# at once, in due order; those older than the rule's max_lateness are
# dropped and counted, not sent; /metrics counts fires, drops, lateness.
. "$top_srcdir/tests/integration/sched_lib.sh"
need curl

start_redis
CONF=$T/sukid.conf
HTTP_PORT=$(free_port)
M=60000
NOW=$(now_ms)
# 5 stale (11..15 min late) and 6 fresh (0.5..9 min late), in key order
# unlike due order: client cK is due at DUES[K].
DUES="$((NOW - 9 * M)),$((NOW - 13 * M)),$((NOW - 1 * M)),$((NOW - 15 * M)),$((NOW - 5 * M)),$((NOW - 11 * M)),$((NOW - M / 2)),$((NOW - 12 * M)),$((NOW - 7 * M)),$((NOW - 14 * M)),$((NOW - 3 * M))"
add_jobs --due-list "$DUES"
[ "$(zcard)" = 11 ] || fail "expected 11 jobs"
EXPECT=$(echo "$DUES" | tr , '\n' | awk '{ print $1, "sched-test:c" NR-1 ":s" NR-1 ":" }' |
    sort -n | awk '{ print $2 }')
FRESH=$(echo "$DUES" | tr , '\n' | awk -v now="$NOW" -v m=$M '{ if (now - $1 < 10 * m) print $1, "c" NR-1 }' |
    sort -n | awk '{ print $2 }')

LOG_LEVEL=debug MAX_LATENESS=10m HTTP_PORT=$HTTP_PORT \
    EMAIL="url = \"spool://$T/spool\"; max_connections = 1;" sched_conf "$CONF"
start_sched a "$CONF"
wait_for 15 '[ "$(zcard)" = 0 ]' || fail "$(zcard) jobs left"
wait_for 10 '[ "$(spool_count)" = 6 ]' ||
    fail "$(spool_count) messages, expected the 6 fresh ones"

GOT=$(sed -n 's/.* debug: job \(.*\) fired: late .*/\1/p' "$T/sukid-a.log")
[ "$GOT" = "$EXPECT" ] || fail "fired out of due order:
$GOT
expected:
$EXPECT"
ok "11 overdue jobs fired at once, in due order"

# the messages went out in due order too: the transport's acceptances (one
# connection) in log order, mapped to clients through the spool files
SENT=$(sed -n 's/.* message-id=<\(.*\)>, status=sent .*/\1/p' "$T/sukid-a.log" |
    while read -r id; do
        sed -n 's/^Subject: Reminder sched-test for //p' "$T/spool/$id.eml" |
            tr -d '\r'
    done)
[ "$SENT" = "$FRESH" ] || fail "messages not in due order:
$SENT
expected:
$FRESH"
[ "$(grep -c 'dropped: stale' "$T/sukid-a.log")" = 5 ] ||
    fail "expected 5 'dropped: stale' lines"
ok "the 5 stale ones were dropped, the 6 fresh ones sent in due order"

[ "$(metric 'suki_jobs_dropped_total{reason="stale"}')" = 5 ] ||
    fail "stale drops not counted: $(metric 'suki_jobs_dropped_total{reason="stale"}')"
[ "$(metric suki_jobs_fired_total)" = 11 ] ||
    fail "suki_jobs_fired_total $(metric suki_jobs_fired_total)"
[ "$(metric suki_job_lateness_seconds_count)" = 11 ] ||
    fail "lateness histogram count $(metric suki_job_lateness_seconds_count)"
# le=60 holds the 30 s late one only; le=+Inf all 11
[ "$(metric 'suki_job_lateness_seconds_bucket{le="+Inf"}')" = 11 ] ||
    fail "lateness +Inf bucket"
[ "$(metric 'suki_messages_total{channel="email",result="sent"}')" = 6 ] ||
    fail "messages sent: $(metric 'suki_messages_total{channel="email",result="sent"}')"
wait_for 3 '[ "$(metric suki_jobs_scheduled)" = 0 ]' ||
    fail "suki_jobs_scheduled gauge $(metric suki_jobs_scheduled)"
ok "metrics: fired 11, dropped stale 5, lateness count 11, sent 6, scheduled 0"

stop_sukid a || fail "sukid did not exit 0"
exit 0
