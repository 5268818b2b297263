#!/bin/sh
# sched_two.sh - 10,000 jobs due in the same second, two sukid on one Redis:
# every job fires exactly once (one "fired" log line per key across both
# daemons, one message per job in the spool, every job completed).
. "$top_srcdir/tests/integration/sched_lib.sh"

N=10000
start_redis
CONF=$T/sukid.conf
LOG_LEVEL=debug sched_conf "$CONF"

start_sched a "$CONF"
start_sched b "$CONF"
# Due in 2 s, all within one second: both daemons are up and polling.
DUE=$(($(now_ms) + 2000))
add_jobs --count "$N" --due "$DUE" --spread 1000 --clients 500
[ "$(zcard)" = "$N" ] || fail "expected $N jobs, got $(zcard)"

wait_for 120 '[ "$(zcard)" = 0 ]' || fail "$(zcard) jobs left"
wait_for 30 '[ "$(spool_count)" = "$N" ]' ||
    fail "$(spool_count) messages in the spool, expected $N"

cat "$T/sukid-a.log" "$T/sukid-b.log" |
    sed -n 's/.* debug: job \(.*\) fired: late .*/\1/p' >"$T/fired"
TOTAL=$(wc -l <"$T/fired")
UNIQUE=$(sort -u "$T/fired" | wc -l)
A=$(grep -c " fired: late " "$T/sukid-a.log")
B=$(grep -c " fired: late " "$T/sukid-b.log")
echo "fired: total $TOTAL, distinct $UNIQUE (a $A, b $B)"
[ "$UNIQUE" = "$N" ] || fail "$UNIQUE distinct jobs fired, expected $N"
[ "$TOTAL" = "$N" ] || fail "$TOTAL fires for $N jobs: some fired twice"
[ "$(rcli --scan --pattern "$SUKI_PREFIX:job:*" | wc -l)" = 0 ] ||
    fail "job bodies left"
SENT=$(rcli --scan --pattern "$SUKI_PREFIX:sent:*" | wc -l)
[ "$SENT" = "$N" ] || fail "$SENT sent markers, expected $N"
grep -q "was sent before" "$T/sukid-a.log" "$T/sukid-b.log" &&
    fail "a job was fired again"
ok "$N jobs, two daemons: each fired exactly once (a $A, b $B)"

stop_sukid a || fail "sukid a did not exit 0"
stop_sukid b || fail "sukid b did not exit 0"
exit 0
