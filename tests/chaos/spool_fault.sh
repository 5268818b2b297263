#!/bin/sh
# spool_fault.sh - the spool directory (a tmpfs of its own) turns read-only
# under load (mount -o remount,ro), then fills up (a ballast file takes all
# its space), each for 4 s, then is fixed (remount rw, ballast removed).
# Each write fails with a clear reason in the log (the breaker's line
# names "Read-only file system", then "No space left on device"), the
# reminders are retried and delivery resumes once the spool is fixed: every
# reminder in the spool, delivered exactly once (sukid's delivery lines),
# every event applied once, nothing pending, no job left, fds and RSS
# flat, idle CPU near 0. Needs root (mount).
# CI: one read-only and one full spell of 4 s. SOAK_LONG=1: 3 each of 12 s.
. "$top_srcdir/tests/chaos/chaos_lib.sh"
need mount umount dd
ROUNDS=1 DOWN=4
[ "${SOAK_LONG:-0}" = 1 ] && ROUNDS=3 DOWN=12

CHAOS_SPOOL=$T/spool
mkdir -p "$CHAOS_SPOOL"
mount -t tmpfs -o size=32m,mode=0700 suki-spool "$CHAOS_SPOOL" ||
    fail "cannot run here: cannot mount a tmpfs on $CHAOS_SPOOL (needs root)"
# unmounted before lib.sh's cleanup removes $T (and keeps the exit status)
trap 'rc=$?; umount -l "$CHAOS_SPOOL" 2>/dev/null; (exit $rc); lib_cleanup' EXIT

start_redis
CONF=$T/sukid.conf
EMAIL_EXTRA='breaker_failures = 3; breaker_cooldown = "1s";' chaos_conf "$CONF"
start_sched a "$CONF"
chaos_warmup 600

produce_bg $((ROUNDS * 2 * (DOWN + 2) * 50)) 600 50
r=0
while [ $r -lt $ROUNDS ]; do
    sleep 2
    mount -o remount,ro "$CHAOS_SPOOL" || fail "remount ro"
    sleep "$DOWN"
    mount -o remount,rw "$CHAOS_SPOOL" || fail "remount rw"
    sleep 2
    dd if=/dev/zero of="$CHAOS_SPOOL/ballast" bs=64k 2>/dev/null
    [ "$(df --output=avail "$CHAOS_SPOOL" | tail -1)" -lt 64 ] || fail "the spool is not full"
    sleep "$DOWN"
    rm -f "$CHAOS_SPOOL/ballast"
    r=$((r + 1))
done
produce_wait
grep -q 'circuit breaker open .*Read-only file system' "$T/sukid-a.log" ||
    fail "no clear error for the read-only spool"
grep -q 'circuit breaker open .*No space left on device' "$T/sukid-a.log" ||
    fail "no clear error for the full spool"
ok "$ROUNDS read-only and $ROUNDS full spells of the spool, $DOWN s each, under load"
chaos_end 90
ok "read-only and full spool: the reasons logged, every reminder once when fixed"
