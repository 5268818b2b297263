#!/bin/sh
# redis_oom.sh - Redis at maxmemory (noeviction) under load: maxmemory is
# set 64 KiB below what Redis uses (about 3-4 MiB here), so every write that
# would grow it is refused with -OOM: the producer's XADDs (it retries),
# intake's apply script (each spell starts with a backlog of 300 events
# written while sukid was stopped, SIGSTOP), the scheduler's claims (100
# reminders fall due 3 s into each spell) and settles, the agent's sent
# markers. After 4 s memory is freed (a 1 MiB ballast key deleted),
# the next time maxmemory is raised (0, no limit). Intake and scheduler
# must say so in the log (naming OOM), lose nothing and recover: every
# reminder exactly once, every event applied once, nothing pending, no job
# left, fds and RSS flat, idle CPU near 0.
# CI: one spell ended by freeing, one by raising. SOAK_LONG=1: 3 of each, 10 s.
# RSS slack 12 MiB, not the default 8: under ASan the mark after the warm-up
# varies by ~3 MiB between runs while the end does not (44.1 -> 49.2 MiB
# and 41.5 -> 49.9 MiB in two CI runs of the same code).
CHAOS_RSS_SLACK=${CHAOS_RSS_SLACK:-12288}
. "$top_srcdir/tests/chaos/chaos_lib.sh"
ROUNDS=1 DOWN=4
[ "${SOAK_LONG:-0}" = 1 ] && ROUNDS=3 DOWN=10

start_redis --maxmemory-policy noeviction
chaos_smtpd
CONF=$T/sukid.conf
chaos_conf "$CONF"
start_sched a "$CONF"
chaos_warmup 600

used() { rcli INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }
# squeeze: Redis full from now on (ballast: what the operator can free)
squeeze()
{
    [ "${1:-}" = ballast ] &&
        rcli SETRANGE ballast $((1024 * 1024 - 1)) x >/dev/null
    rcli CONFIG SET maxmemory $(($(used) - 65536)) >/dev/null
    echo "maxmemory $(rcli CONFIG GET maxmemory | tail -1)"
    wait_for 10 '! rcli SET probe 1 >/dev/null 2>&1 || rcli SET probe 1 | grep -q OOM' ||
        fail "Redis still takes writes at maxmemory $(rcli CONFIG GET maxmemory | tail -1)"
}
# backlog: 100 reminders that fall due 3 s later, so the scheduler's
# claims meet the full Redis, and 300 events in the stream that sukid has
# not read yet when Redis fills up, so do intake's applies (k100000...)
b=100000
backlog()
{
    produce 100 $b 5000 --due-in 3
    b=$((b + 100))
    wait_for 10 '[ "$(rcli HGET "$SUKI_PREFIX:client-events" k$((b - 1)))" = 1 ]' ||
        fail "the reminders due later were not scheduled"
    kill -STOP "$SUKID_PID_a"
    produce 300 $b 5000
    b=$((b + 300))
    squeeze "$@"
    kill -CONT "$SUKID_PID_a"
}
produce_bg $((ROUNDS * 2 * (DOWN + 2) * 50)) 600 50
r=0
while [ $r -lt $ROUNDS ]; do
    sleep 2
    backlog ballast
    sleep "$DOWN"
    rcli DEL ballast >/dev/null # freed: room again under the same limit
    wait_for 10 'rcli SET probe 1 | grep -q OK' || fail "no room after freeing"
    sleep 2
    backlog
    sleep "$DOWN"
    rcli CONFIG SET maxmemory 0 >/dev/null # raised
    r=$((r + 1))
done
produce_wait
grep -q 'retried' "$T/producer.log" || fail "no producer log"
grep 'writes retried' "$T/producer.log" | grep -vq ' 0 writes' ||
    fail "Redis never refused the producer"
# (intake logs one failure per 5 s: a refused apply, recovery or stream
# trim, whichever came first)
grep -q 'intake: .*failed: OOM' "$T/sukid-a.log" || fail "intake did not report OOM"
grep -q 'scheduler: .*OOM' "$T/sukid-a.log" || fail "the scheduler did not report OOM"
# ... once in a while, not once per refused call (a line per job's settle,
# hundreds a second, before)
n=$(grep -c 'scheduler: settling' "$T/sukid-a.log")
[ "$n" -le $((ROUNDS * 2 * (DOWN / 5 + 2))) ] ||
    fail "$n lines of failed settles in $((ROUNDS * 2)) spells of $DOWN s"
ok "$((ROUNDS * 2)) spells at maxmemory under load; intake $(grep -c 'intake: .*OOM' "$T/sukid-a.log") and scheduler $(grep -c 'scheduler: .*OOM' "$T/sukid-a.log") OOM lines"
chaos_end 90
ok "Redis at maxmemory: reported, nothing lost, recovered when memory was freed or raised"
