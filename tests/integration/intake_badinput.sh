#!/bin/sh
# intake_badinput.sh - every kind of bad input ends up in P:dead with its
# reason, the original payload and the stream id; it is acknowledged and
# counted as invalid; the daemon stays up and the next good event applies.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID"

start_redis
CONF=$T/sukid.conf
INTAKE_EXTRA='max_event_size = 65536;' write_conf "$CONF"
start_sukid a "$CONF"

hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
: >"$T/expect"
# add NAME REASON-SUBSTRING FIELD HEXVALUE - XADD raw bytes (python), and
# remember which stream id must come back from P:dead with which reason.
add()
{
    id=$("$PY" "$top_srcdir/tests/integration/sukitest.py" xadd \
        "$REDIS_PORT" suki:events "$3" "$4") || fail "xadd $1"
    printf '%s\t%s\t%s\t%s\n' "$id" "$1" "$2" "$4" >>"$T/expect"
}
# cli NAME REASON VALUE - the same through redis-cli
cli()
{
    id=$(rcli XADD suki:events '*' event "$3") || fail "redis-cli $1"
    printf '%s\t%s\t%s\t%s\n' "$id" "$1" "$2" "$(hex "$3")" >>"$T/expect"
}

cli "not JSON" "not JSON" 'hello world'
cli "array" "not an object" '[1,2,3]'
cli "string" "not an object" '"just a string"'
cli "number" "not an object" '42'
cli "missing type" "missing type" '{"client":"c1"}'
cli "non-string type" "type is not a string" '{"type":7,"client":"c1"}'
cli "missing client" "missing client" '{"type":"a.b"}'
cli "bad timestamp" "bad at" '{"type":"a.b","client":"c1","at":"yesterday"}'
cli "impossible date" "bad at" '{"type":"a.b","client":"c1","at":"2026-02-30T10:00:00Z"}'
cli "impossible time" "bad at" '{"type":"a.b","client":"c1","at":"2026-01-10T25:61:00Z"}'
cli "truncated" "not JSON" '{"type":"a.b","client":'
cli "empty" "not JSON" ''
big=$("$PY" -c 'print("{\"type\":\"a.b\",\"client\":\"c1\",\"data\":{\"x\":\"" + "y" * 70000 + "\"}}")')
# an oversize event's dead letter keeps its size, SHA-256 and first 4 KiB
bigid=$(rcli XADD suki:events '*' event "$big") || fail "redis-cli oversize"
printf '%s\t%s\t%s\t%s\n' "$bigid" "oversize" \
    "too large ($(printf '%s' "$big" | wc -c) bytes, max 65536); sha256 $(printf '%s' "$big" | sha256sum | cut -c1-64), the first 4096 bytes kept" \
    "$(printf '%s' "$big" | head -c 4096 | od -An -v -tx1 | tr -d ' \n')" >>"$T/expect"
deep=$("$PY" -c 'print("{\"type\":\"a.b\",\"client\":\"c1\",\"data\":{\"x\":" + "[" * 10000 + "]" * 10000 + "}}")')
cli "10000 levels" "nesting too deep" "$deep"
add "invalid UTF-8" "invalid UTF-8" event \
    "$(hex '{"type":"a.b","client":"')ff$(hex '"}')"
add "overlong UTF-8" "invalid UTF-8" event \
    "$(hex '{"type":"a.b","client":"')c0af$(hex '"}')"
add "NUL byte" "NUL" event \
    "$(hex '{"type":"a.b",')00$(hex '"client":"c1"}')"
add "no event field" "no 'event' field" foo "$(hex bar)"
# 5,000 fields and no event: its dead letter keeps the first 64 (all of them
# in one XADD went past Lua's unpack() limit, failing the apply script after
# its first writes and leaving the entry pending for ever)
many=$("$PY" -c 'import sys; print(" ".join("f%d 7878" % i for i in range(1, 5000)))')
# shellcheck disable=SC2086
id=$("$PY" "$top_srcdir/tests/integration/sukitest.py" xadd \
    "$REDIS_PORT" suki:events foo "$(hex bar)" $many) || fail "xadd many"
printf '%s\t%s\t%s\t%s\n' "$id" "5000 fields" \
    "no 'event' field (5000 fields; the first 64 kept)" "$(hex bar)" >>"$T/expect"

n=$(wc -l <"$T/expect")
wait_for 20 '[ "$(stat invalid)" -ge '"$n"' ]' ||
    fail "invalid $(stat invalid), want $n"
kill -0 "$SUKID_PID" || fail "sukid died"

# Compare every expectation with P:dead (reason, payload bytes, source).
"$PY" - "$REDIS_PORT" "$T/expect" "$top_srcdir" <<'PYEOF' || fail "dead letters"
import sys
sys.path.insert(0, sys.argv[3] + "/tests/integration")
from sukitest import Redis
r = Redis(sys.argv[1])
dead = {}
for eid, fv in r.cmd("XRANGE", "suki:dead", "-", "+"):
    h = dict(zip(fv[0::2], fv[1::2]))
    dead[h[b"source"].decode()] = h
bad = 0
for line in open(sys.argv[2]):
    sid, name, reason, hexv = line.rstrip("\n").split("\t")
    h = dead.get(sid)
    if not h:
        print("missing dead letter for %s (%s)" % (name, sid)); bad += 1; continue
    want = bytes.fromhex(hexv)
    got = h.get(b"payload", h.get(b"field:foo"))
    if reason.encode() not in h[b"reason"]:
        print("%s: reason %r lacks %r" % (name, h[b"reason"], reason)); bad += 1
    if got != want:
        print("%s: payload differs (%d vs %d bytes)" % (name, len(got or b""), len(want))); bad += 1
    if h[b"kind"] != b"event" or not h[b"at"].isdigit():
        print("%s: kind/at wrong: %r" % (name, h)); bad += 1
    if len(h) > 2 * (6 + 64):
        print("%s: %d fields kept" % (name, len(h) // 2)); bad += 1
    print("ok: %-16s -> %s" % (name, h[b"reason"].decode(errors="replace")[:70]))
sys.exit(1 if bad else 0)
PYEOF
[ "$(stat applied)" = 0 ] || fail "a bad event was applied"
[ "$(group_pending)" = 0 ] || fail "bad entries left pending"

rcli XADD suki:events '*' event '{"type":"meeting.held","client":"good"}' >/dev/null
wait_for 10 '[ "$(rcli HGET suki:client-events good)" = 1 ]' ||
    fail "the good event after the bad ones was not applied"
[ "$(stat invalid)" = "$n" ] || fail "invalid $(stat invalid), want $n"
ok "$n bad inputs dead-lettered, next good event applied"
stop_sukid a || fail "exit status $?"
