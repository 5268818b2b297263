#!/bin/sh
# huge_events.sh - 100 events of 5 MB (max_event_size 64 KiB) among 2,000
# normal ones. Before, sukid read them whole, a batch of them at a time
# (hiredis's buffer, the reply objects, the batches read ahead): here its
# peak RSS grew by 502 MB (1.3-1.4 GB in the review), and under a memory
# limit intake livelocked (out of memory, reconnect, the same read). Now the
# intake link cuts every string longer than a dead letter keeps whole:
# sukid's peak RSS (VmHWM) grows by less than 100 MB over its baseline,
# every normal event is applied, and each huge one is dead-lettered with
# its size, SHA-256 and first 4 KiB.
#
# With SUKI_AS_LIMIT_MB (e.g. 300; scripts/test.sh sets it in its plain
# build, as ASan needs terabytes of address space), the second sukid runs
# under prlimit --as: before, its intake livelocked there (968 of 2,000
# applied after 120 s, 18 "Out of memory"); now nothing runs out.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli sha256sum "$SUKID"
if [ -n "${SUKI_AS_LIMIT_MB:-}" ]; then
    need prlimit ldd
    ldd "$SUKID" | grep -q libasan &&
        fail "SUKI_AS_LIMIT_MB needs a sukid built without sanitizers"
fi

# ASan's quarantine keeps up to 256 MB of freed memory to catch a use after
# free: VmHWM would measure the quarantine, not sukid. 16 MB keeps the
# check while the peak still shows what sukid holds.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16
export ASAN_OPTIONS
start_redis --appendonly no
rcli CONFIG SET client-query-buffer-limit 64mb >/dev/null
CONF=$T/sukid.conf
INTAKE_EXTRA='max_event_size = 65536;' write_conf "$CONF"
start_sukid a "$CONF"
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$SUKID_PID/status"; }

gen_events 200
wait_for 30 '[ "$(stat applied)" = 200 ]' || fail "baseline events not applied"
base=$(hwm)
stop_sukid a || fail "exit status $?"

# a backlog, written while no sukid runs: 900 normal events (c200..), 100
# huge ones in a row, 900 normal ones (..c1999); then a sukid like the
# first (whose peak was the baseline) reads it
"$PY" - "$REDIS_PORT" "$T/huge.sha" "$top_srcdir/tests/integration" <<'PYEOF' || fail "writer failed"
import hashlib, json, sys
sys.path.insert(0, sys.argv[3])
from sukitest import Redis
r = Redis(int(sys.argv[1]))
out = open(sys.argv[2], "w")
def normal(a, b):
    for c in range(a, b):
        r.cmd("XADD", "suki:events", "*", "event",
              json.dumps({"type": "a.b", "client": "c%d" % c}))


normal(200, 1100)
for i in range(100):
    ev = json.dumps({"type": "a.b", "client": "h%d" % i,
                     "data": {"x": "%03d" % i + "y" * 5000000}}).encode()
    r.cmd("XADD", "suki:events", "*", "event", ev)
    out.write("%d %s\n" % (len(ev), hashlib.sha256(ev).hexdigest()))
normal(1100, 2000)
PYEOF
if [ -n "${SUKI_AS_LIMIT_MB:-}" ]; then
    printf '#!/bin/sh\nexec prlimit --as=%s "%s" "$@"\n' "$((SUKI_AS_LIMIT_MB * 1048576))" "$SUKID" >"$T/limited"
    chmod +x "$T/limited"
    SUKID=$T/limited start_sukid b "$CONF"
else
    start_sukid b "$CONF"
fi
wait_for 120 '[ "$(stat applied)" = 2000 ] && [ "$(rcli XLEN suki:dead)" = 100 ]' ||
    fail "applied $(stat applied) of 2000, dead $(rcli XLEN suki:dead) of 100"
wait_for 10 '[ "$(group_pending)" = 0 ]' || fail "$(group_pending) entries pending"
peak=$(hwm)
grow=$(((peak - base) / 1024))
echo "VmHWM baseline $((base / 1024)) MB, peak $((peak / 1024)) MB (+$grow MB)"
[ "$grow" -lt 100 ] || fail "peak RSS grew by $grow MB (baseline $((base / 1024)) MB)"
[ "$(clients_not_once 1800 200)" = 0 ] || fail "normal events not applied once"
ok "2,000 normal events applied and 100 of 5 MB dead-lettered; peak RSS +$grow MB${SUKI_AS_LIMIT_MB:+ (address space limited to $SUKI_AS_LIMIT_MB MB)}"

# each dead letter: the size, SHA-256 and the first 4 KiB of its event
rcli --no-raw XRANGE suki:dead - + >"$T/dead.out"
n=0
while read -r size sha; do
    grep -q "too large ($size bytes, max 65536); sha256 $sha, the first 4096 bytes kept" "$T/dead.out" ||
        fail "no dead letter with size $size and sha256 $sha"
    n=$((n + 1))
done <"$T/huge.sha"
[ "$n" = 100 ] || fail "$n hashes checked"
len=$(rcli EVAL "local e = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1][2]
    for i = 1, #e, 2 do if e[i] == 'payload' or e[i] == 'event' then return #e[i + 1] end end
    return -1" 1 suki:dead)
[ "$len" = 4096 ] || fail "a dead letter keeps $len bytes of its event"
kill -0 "$SUKID_PID_b" || fail "sukid died"
! grep -i 'out of memory' "$T/sukid-b.log" || fail "sukid ran out of memory"
stop_sukid b || fail "exit status $?"
ok "dead letters keep size, sha256 and 4 KiB"
