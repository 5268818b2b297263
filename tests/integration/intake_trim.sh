#!/bin/sh
# intake_trim.sh - acknowledged history is trimmed down to intake.keep;
# a pending entry (held by a consumer that went quiet) and everything after
# it are never trimmed.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID"

start_redis
CONF=$T/sukid.conf
CLAIM_IDLE=1h INTAKE_EXTRA='keep = 100;' write_conf "$CONF"
start_sukid a "$CONF"
gen_events 2000
wait_for 20 '[ "$(stat applied)" = 2000 ]' || fail "first 2000 not applied"
stop_sukid a || fail "exit status $?"

# a consumer "ghost" takes one entry and never acknowledges it
stuck=$(rcli XADD suki:events '*' event '{"type":"a.b","client":"stuck"}')
rcli XREADGROUP GROUP sukid ghost COUNT 1 STREAMS suki:events '>' >/dev/null
[ "$(group_pending)" = 1 ] || fail "ghost holds nothing"

start_sukid a "$CONF"
gen_events 3000 --start 2000
wait_for 20 '[ "$(stat applied)" = 5000 ]' || fail "next 3000 not applied"
# trimmed down to keep (100) before the pending entry, nothing after it
wait_for 10 '[ "$(rcli XLEN suki:events)" -le 3300 ]' ||
    fail "not trimmed: $(rcli XLEN suki:events) entries"
len=$(rcli XLEN suki:events)
[ "$len" -ge 3101 ] || fail "trimmed too much: $len entries"
[ -n "$(rcli XRANGE suki:events "$stuck" "$stuck")" ] ||
    fail "the pending entry was trimmed"
[ "$(rcli XRANGE suki:events "$stuck" + | grep -c '^event$')" = 3001 ] ||
    fail "entries after the pending one were trimmed"
ok "pending entry kept, $len entries left"

# once it is acknowledged, history shrinks to about keep entries
rcli XACK suki:events sukid "$stuck" >/dev/null
wait_for 10 '[ "$(rcli XLEN suki:events)" -le 300 ]' ||
    fail "not trimmed after the ack: $(rcli XLEN suki:events)"
[ "$(rcli XLEN suki:events)" -ge 100 ] || fail "fewer than keep entries left"
ok "trimmed to $(rcli XLEN suki:events) entries (keep = 100)"
stop_sukid a || fail "exit status $?"
