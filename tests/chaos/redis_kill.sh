#!/bin/sh
# redis_kill.sh - Redis killed -9 and restarted mid-run (appendonly yes,
# appendfsync always) while events flow in, their reminders are due at once
# and go out to a real SMTP server. Redis acknowledges a write only once it
# is on disk, so a restart loses nothing: every acknowledged event applied
# exactly once, every reminder at the server exactly once, nothing pending,
# no job left, sukid's descriptors and RSS flat, idle CPU near 0.
# (redis_kill_everysec.sh is the same run with appendfsync everysec.)
#
# CI: 4 kills over 800 events. SOAK_LONG=1: 20 kills over 4,000 events.
. "$top_srcdir/tests/chaos/chaos_lib.sh"
KILLS=4 N=800
[ "${SOAK_LONG:-0}" = 1 ] && KILLS=20 N=4000

start_redis --appendfsync always
chaos_smtpd
CONF=$T/sukid.conf
chaos_conf "$CONF"
start_sched a "$CONF"
chaos_warmup 600

produce_bg "$N" 600 100
k=0
while [ $k -lt $KILLS ]; do
    sleep "0.$(($(od -An -N1 -tu1 /dev/urandom) % 8 + 2))"
    restart_redis kill
    k=$((k + 1))
done
produce_wait
ok "$KILLS kill -9 of Redis (appendfsync always) under load"
chaos_end 90
ok "appendfsync always: every acknowledged event applied once, every reminder once"
