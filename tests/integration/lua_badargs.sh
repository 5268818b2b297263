#!/bin/sh
# lua_badargs.sh - the scripts refuse bad arguments, and fields HINCRBY
# cannot add to, before their first write, against a real redis-server
# (Redis does not roll back a script that fails midway); where a counter
# is met only after the writes, the script still succeeds.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli
start_redis --appendonly no
dir=$top_srcdir/lib/store
# script NAME: the script as Redis gets it
script() { sh "$dir/embed.sh" --expand "$dir/$1.lua"; }

# chart-add with bad arguments: an error each time, the bucket not made.
# Each case has a valid pair first, so a script that checked late would
# have written it.
chart_bad() {
    want=$1
    shift
    out=$(rcli EVAL "$(script chart-add)" 1 b:chart:1 "$@" 2>&1)
    case $out in *"$want"*) ;; *) fail "chart-add $*: want '$want', got: $out" ;; esac
    [ "$(rcli EXISTS b:chart:1)" = 0 ] || fail "chart-add $*: the bucket was written: $(rcli HGETALL b:chart:1)"
}
chart_bad "bad arguments" 7800 5 sent 1 failed
chart_bad "bad arguments" 7800
chart_bad "bad arguments" x 5 sent 1
chart_bad "bad arguments" 0 5 sent 1
chart_bad "bad arguments" 7800 5.5 sent 1
chart_bad "bad arguments" 7800 "" sent 1
chart_bad "delta of failed is not an integer" 7800 5 sent 1 failed x
chart_bad "delta of failed is not an integer" 7800 5 sent 1 failed 1.5
chart_bad "delta of failed is not an integer" 7800 5 sent 1 failed 99999999999999999999
ok "chart-add refuses bad arguments with nothing written"

# chart-add onto a bucket whose field holds no number: refused before the
# other field is added (HINCRBY would fail on it after the first one).
rcli HSET b:chart:2 sent 3 failed many >/dev/null
out=$(rcli EVAL "$(script chart-add)" 1 b:chart:2 7800 5 sent 1 failed 1 2>&1)
case $out in *"failed in b:chart:2 is not a number"*) ;; *) fail "chart-add on a bad field: $out" ;; esac
[ "$(rcli HGET b:chart:2 sent)" = 3 ] || fail "chart-add on a bad field: sent $(rcli HGET b:chart:2 sent)"
[ "$(rcli HEXISTS b:chart:2 late_max_ms)" = 0 ] && [ "$(rcli TTL b:chart:2)" = -1 ] ||
    fail "chart-add on a bad field: the bucket changed"
# and a valid call as sukid makes it (heartbeat.c) still adds
rcli HSET b:chart:2 failed 2 >/dev/null
out=$(rcli EVAL "$(script chart-add)" 1 b:chart:2 7800 5 sent 1 failed 1 late_sum_ms 40 2>&1)
[ "$out" = 1 ] || fail "chart-add: $out"
[ "$(rcli HMGET b:chart:2 sent failed late_sum_ms late_max_ms | tr '\n' ' ')" = "4 3 40 5 " ] ||
    fail "chart-add: $(rcli HGETALL b:chart:2 | tr '\n' ' ')"
[ "$(rcli TTL b:chart:2)" -gt 7700 ] || fail "chart-add: TTL $(rcli TTL b:chart:2)"
ok "chart-add refuses a field that holds no number, and adds once it does"

# sched-settle with an unknown record op: refused before its sent marker,
# its dead letter or the job change (any letter but C and L was taken for
# R, whose HSET of no body failed after the marker was written).
rcli HSET b:job:u r:u:: '{"d":1}' >/dev/null
rcli ZADD b:jobs 1 r:u:: >/dev/null
for op in Z c; do
    out=$(rcli EVAL "$(script sched-settle)" 2 b:jobs b:dead 60 b:sent: b:job: \
        "$op 0 1 1 0" r:u:: '{"d":1}' '<m1@x>' 2 kind job 2>&1)
    case $out in *"unknown record op $op"*) ;; *) fail "sched-settle op $op: want an op error, got: $out" ;; esac
    [ "$(rcli EXISTS 'b:sent:<m1@x>')" = 0 ] || fail "sched-settle op $op: the sent marker was written"
    [ "$(rcli EXISTS b:dead)" = 0 ] || fail "sched-settle op $op: a dead letter was written"
    [ "$(rcli HGET b:job:u r:u::)" = '{"d":1}' ] && [ "$(rcli ZSCORE b:jobs r:u::)" = 1 ] ||
        fail "sched-settle op $op: the job changed"
done
# a bad op after a good record: the good one is not settled either
out=$(rcli EVAL "$(script sched-settle)" 2 b:jobs b:dead 60 b:sent: b:job: \
    "C 0 1 0 0" r:u:: '{"d":1}' '<m1@x>' "Q 0 0 0 0" r:v:: '{}' 2>&1)
case $out in *"unknown record op Q"*) ;; *) fail "sched-settle C then Q: $out" ;; esac
[ "$(rcli EXISTS 'b:sent:<m1@x>')" = 0 ] && [ "$(rcli ZSCORE b:jobs r:u::)" = 1 ] ||
    fail "sched-settle C then Q: the C record was applied"
# the same record as C completes
out=$(rcli EVAL "$(script sched-settle)" 2 b:jobs b:dead 60 b:sent: b:job: \
    "C 0 1 1 0" r:u:: '{"d":1}' '<m1@x>' 2 kind job 2>&1)
[ "$out" = 1 ] || fail "sched-settle C: $out"
[ "$(rcli GET 'b:sent:<m1@x>')" = r:u:: ] && [ "$(rcli XLEN b:dead)" = 1 ] &&
    [ "$(rcli HEXISTS b:job:u r:u::)" = 0 ] && [ -z "$(rcli ZSCORE b:jobs r:u::)" ] ||
    fail "sched-settle C: not completed"
ok "sched-settle refuses an unknown record op with nothing written"

# intake-apply with a P:stats counter that holds no number: its HINCRBY
# comes after the batch is applied and acknowledged, so the batch stands
# and only that count is lost.
rcli HSET t:stats events_applied many >/dev/null
rcli XGROUP CREATE t:events g '$' MKSTREAM >/dev/null
a=$(rcli XADD t:events '*' event x)
rcli XREADGROUP GROUP g me COUNT 10 STREAMS t:events '>' >/dev/null
pyredis "
src = open('$dir/intake-apply.lua', 'rb').read()
now = b'%d' % __import__('time').time_ns()
now = now[:-6]
# nf = 1, na = 0 (two bytes each), then the order time
args = [b'g', b't', now, b'60000', b'me', b'$a', b'$a', b'0', b'5', b'7776000',
        b'$a', b'ait', b'st', b'st-1', b'{\"k\":\"e\",\"t\":\"x.y\",\"at\":1,\"id\":\"st-1\"}',
        b'\x00\x01\x00\x00' + now, b'name', b'N st']
out = r.cmd('EVAL', src, 1, b't:events', *args)
assert out[0] == 1, out
" || fail "intake-apply with a P:stats counter that is no number failed"
[ "$(rcli HGET t:client:st name)" = "N st" ] || fail "intake-apply: the profile was not written"
[ "$(rcli XPENDING t:events g | head -1)" = 0 ] || fail "intake-apply: the entry was left pending"
[ "$(rcli HGET t:stats events_applied)" = many ] || fail "intake-apply: the bad counter changed"
ok "intake-apply stands when a P:stats counter holds no number"
