#!/bin/sh
# clock_skew.sh - two sukid whose clocks are 5 s apart share a job that a
# slow server holds for 3 s, with 2 s leases. Leases were written and read
# on each daemon's own clock, so the one ahead saw the other's lease as long
# over and sent the job again; they are on Redis's clock now (TIME in the
# scripts): the server gets the reminder once. (clockshift.so moves the
# wall clock of the second daemon only; its monotonic clock stays true.)
. "$top_srcdir/tests/integration/sched_lib.sh"
need redis-server redis-cli "$SUKID"
SHIFT_LIB=$top_builddir/tests/chaos/.libs/clockshift.so
[ -f "$SHIFT_LIB" ] || fail "$SHIFT_LIB not built"

start_redis
slow_smtpd 3
CONF=$T/sukid.conf
SCHED_EXTRA='lease = "2s";' \
    EMAIL="url = \"smtp://127.0.0.1:$SP\"; starttls = \"off\"; timeout = \"20s\";" \
    sched_conf "$CONF"
add_jobs --count 1 --due $(($(now_ms) - 1000))
start_sched a "$CONF"
wait_for 10 '[ "$(mail_count)" -ge 1 ]' || fail "a did not send"
# b's clock is 5 s ahead (ASan must allow the shim before it)
LD_PRELOAD=$SHIFT_LIB SUKI_CLOCK_SHIFT=5 \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
    "$SUKID" -c "$CONF" >>"$T/sukid-b.log" 2>&1 &
SUKID_PID_b=$!
lib_track $!
wait_for 15 'grep -q "scheduler: ready" "$T/sukid-b.log"' || fail "b did not start"
# b's log lines carry its own clock: check that it really runs ahead
bt=$(date -d "$(grep -m1 -o '^[0-9T:.-]*Z' "$T/sukid-b.log")" +%s)
[ $((bt - $(date +%s))) -ge 2 ] || fail "b's clock is not ahead"
wait_for 20 '[ "$(zcard)" = 0 ]' || fail "job not completed: $(zcard)"
sleep 4
[ "$(mail_count)" = 1 ] || fail "the server got $(mail_count) copies, want 1"
ok "clocks 5 s apart, leases on Redis's clock: one copy"
stop_sukid b || fail "b: exit status $?"
stop_sukid a || fail "a: exit status $?"
