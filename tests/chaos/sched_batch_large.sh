#!/bin/sh
# sched_batch_large.sh - scheduler.batch = 10000 is taken as configured (it
# was clamped to 2,000 without a word, because one ZADD of all the leases
# went past Lua's unpack() limit): 25,000 overdue jobs are claimed in
# batches of 10,000 and each is spooled exactly once.
. "$top_srcdir/tests/integration/sched_lib.sh"
need redis-server redis-cli "$SUKID"

start_redis
CONF=$T/sukid.conf
SCHED_EXTRA='batch = 10000;' sched_conf "$CONF"
N=25000
add_jobs --count $N --due $(($(now_ms) - 60000)) --clients 500
[ "$(zcard)" = $N ] || fail "jobs written: $(zcard)"
start_sched a "$CONF"
grep -q 'scheduler: ready (lease [^,]*, batch 10000)' "$T/sukid-a.log" ||
    fail "batch not taken: $(grep 'scheduler: ready' "$T/sukid-a.log")"
wait_for 120 '[ "$(spool_count)" -ge $N ] && [ "$(zcard)" = 0 ]' ||
    fail "spooled $(spool_count) of $N, $(zcard) jobs left"
sleep 1
[ "$(spool_count)" = $N ] || fail "spooled $(spool_count), want $N"
grep -q 'unpack\|ERR ' "$T/sukid-a.log" && fail "script errors in the log"
ok "$N jobs claimed in batches of 10,000, each spooled once"
stop_sukid a || fail "exit status $?"
