#!/bin/sh
# redis_kill_everysec.sh - Redis killed -9 mid-run with appendfsync
# everysec, each time losing what it had acknowledged in the last
# 0.2-0.9 s: the append-only file is cut back to a length it had then
# (aof_cut.py; what a crash of the host, or a write Redis postponed behind a
# slow fsync, loses). Events flow in and their reminders go out meanwhile.
# What sukid can promise then, and what is checked (sukid(8), RELIABILITY):
#   - an event is lost only if Redis lost its XADD (the producer had its
#     acknowledgement, but the write is in a cut-off tail); every other
#     acknowledged event is applied exactly once, and its reminder arrives;
#   - a reminder goes out twice only if Redis lost its sent marker (the
#     marker's SET is in a cut-off tail); every other one exactly once;
#   - nothing pending, no job left, descriptors and RSS flat, idle CPU ~0.
# CI: 4 kills over 800 events. SOAK_LONG=1: 20 kills over 4,000 events.
. "$top_srcdir/tests/chaos/chaos_lib.sh"
KILLS=4 N=800
[ "${SOAK_LONG:-0}" = 1 ] && KILLS=20 N=4000
P=$SUKI_PREFIX

# no AOF rewrite: the cut must hit the one increment file being appended
start_redis --appendfsync everysec --auto-aof-rewrite-percentage 0
chaos_smtpd
CONF=$T/sukid.conf
chaos_conf "$CONF"
start_sched a "$CONF"
chaos_warmup 600

produce_bg "$N" 600 100
k=0
while [ $k -lt $KILLS ]; do
    sleep "0.$(($(od -An -N1 -tu1 /dev/urandom) % 5 + 3))"
    # shellcheck disable=SC2046 # "FILE SIZE" into $1 $2
    set -- $("$PY" "$top_srcdir/tests/chaos/aof_cut.py" mark "$REDIS_DIR")
    sleep "0.$(($(od -An -N1 -tu1 /dev/urandom) % 8 + 2))"
    stop_redis kill
    k=$((k + 1))
    "$PY" "$top_srcdir/tests/chaos/aof_cut.py" cut "$1" "$2" "$T/tail.$k" ||
        fail "could not cut the AOF"
    _redis_spawn
done
produce_wait
ok "$KILLS kill -9 of Redis (appendfsync everysec), each losing its last writes"

# what Redis lost: the tails, less what was written again later (a
# producer's retry, the agent's or a settle's marker after the restart)
"$PY" "$top_srcdir/tests/chaos/aof_cut.py" parse "$P" "$P:events" "$T"/tail.* |
    sort -u >"$T/lost"
"$PY" "$top_srcdir/tests/chaos/aof_cut.py" parse "$P" "$P:events" \
    "$REDIS_DIR"/appendonlydir/*.incr.aof | sort -u >"$T/kept"
comm -23 "$T/lost" "$T/kept" >"$T/gone"
sed -n 's/^event //p' "$T/gone" >"$T/maybe"
sed -n 's/^marker //p' "$T/lost" >"$T/dup_ok"
# the events Redis lost are not owed; the producer counted them as acked
sort -u "$T/acked" | comm -23 - "$T/maybe" >"$T/acked.kept"
mv "$T/acked.kept" "$T/acked"
echo "Redis lost $(wc -l <"$T/maybe") acknowledged events and $(grep -c '^marker' "$T/lost") sent markers"
chaos_end 90
ok "appendfsync everysec: only what Redis lost is lost, only messages whose marker it lost can go out twice"
