#!/bin/sh
# redis_sleep.sh - DEBUG SLEEP 5 on Redis under load: Redis answers nothing
# for 5 s while events flow in and reminders go out. sukid's commands run
# past their 2 s deadline, so its links are dropped and reconnect (into the
# same sleep), the agent's marker writes wait, and everything Redis ran
# before it stopped answering (an apply, a settle, a marker) is seen only
# as a lost reply. Still every reminder exactly once, every event applied
# once, nothing pending, no job left, descriptors and RSS flat.
# CI: 2 sleeps. SOAK_LONG=1: 8.
. "$top_srcdir/tests/chaos/chaos_lib.sh"
SLEEPS=2
[ "${SOAK_LONG:-0}" = 1 ] && SLEEPS=8

start_redis --enable-debug-command local
chaos_smtpd
CONF=$T/sukid.conf
chaos_conf "$CONF"
sed -i 's|command_timeout = "5s"|command_timeout = "2s"|' "$CONF"
grep -q 'command_timeout = "2s"' "$CONF" || fail "could not set command_timeout"
start_sched a "$CONF"
chaos_warmup 600

produce_bg $((SLEEPS * 600)) 600 100
s=0
while [ $s -lt $SLEEPS ]; do
    sleep "1.$(($(od -An -N1 -tu1 /dev/urandom) % 9))"
    rcli DEBUG SLEEP 5 >/dev/null || fail "DEBUG SLEEP failed"
    s=$((s + 1))
done
produce_wait
grep -q 'command timed out; reconnecting' "$T/sukid-a.log" || fail "no command ran past its deadline"
ok "$SLEEPS DEBUG SLEEP 5 under load"
chaos_end 90
ok "Redis asleep under load: every reminder once, no event lost"
