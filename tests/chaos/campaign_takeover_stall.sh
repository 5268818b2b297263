#!/bin/sh
# campaign_takeover_stall.sh - the runner's sukid is stopped (SIGSTOP, as a
# long GC-like stall or a VM pause) for longer than the campaign lease,
# with 8 messages at its agent and 56 more queued in its dispatcher. The
# other daemon takes the campaign over and holds what the first had taken
# (transport timeout 5 s + 10 s). When the first wakes up it must not
# start its queued messages (its lease is gone: its dispatch gate has
# closed), or they would go out while the new runner sends the same
# recipients once the hold is over. Every recipient exactly once.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/campaign_lib.sh"
"$PY" -c "import aiosmtpd" 2>/dev/null ||
    fail "cannot run here: python module aiosmtpd not found"

N=64
start_redis
start_aiosmtpd "$T/smtp" --mode slow --delay 3
TX='rate = "5000/s"; max_connections = 8;'
CONF=$T/sukid.conf
LOG_LEVEL=debug camp_conf "$CONF" "" "$TX"
HTTP_A=$HTTP_PORT
HTTP_PORT=$(free_port)
CONF_B=$T/b.conf
LOG_LEVEL=debug camp_conf "$CONF_B" "" "$TX"
# a short transport timeout (above the server's 3 s) keeps the hold short
sed -i 's/timeout = "10s";/timeout = "5s";/' "$CONF" "$CONF_B"
grep -q 'timeout = "5s";' "$CONF" || fail "could not set the transport timeout"
start_daemon b "$CONF_B"
HTTP_PORT=$HTTP_A
start_daemon a "$CONF"
populate "$N"
rcpts() { awk '/^RCPT / { n++ } END { print n + 0 }' "$T/smtp/events.log" 2>/dev/null; }
rcpt_ok() { sed -n 's/^RCPT \(.*\) 250$/\1/p' "$T/smtp/events.log" 2>/dev/null; }

# at 1000/s the runner hands all 64 to its dispatcher at once
"$SUKICTL" -c "$CONF" campaign create stall --template promo --audience all \
    --rate 1000/s >/dev/null || fail "create"
wait_for 20 '[ "$(rcpts)" -ge 8 ]' || fail "the campaign does not start"
runner=$(cfield stall runner)
case "$runner" in
*:$SUKID_PID_a:*) holder=a other=b ;;
*:$SUKID_PID_b:*) holder=b other=a ;;
*) fail "runner '$runner' is neither daemon" ;;
esac
eval "hpid=\$SUKID_PID_$holder"
eval "opid=\$SUKID_PID_$other"
kill -STOP "$hpid"
ok "runner $holder stopped with $(rcpts) messages at the server"
wait_for 20 "cfield stall runner | grep -q ':$opid:'" ||
    { kill -CONT "$hpid"; fail "$other did not take the campaign over"; }
# wake it just before the hold ends: what it started now would still be
# at the server when the new runner sends the held recipients
sleep 13
kill -CONT "$hpid"
ok "$other took over; $holder continued"

# the hold ends 15 s after the takeover, then 56 at 8 per 3 s (21 s)
wait_state stall completed 90
sleep 1
got=$(rcpt_ok | sort -u | wc -l)
dup=$(rcpt_ok | sort | uniq -d | wc -l)
echo "at the server: $got distinct recipients, $dup twice"
[ "$got" = "$N" ] || fail "$got distinct recipients at the server, want $N"
[ "$dup" = 0 ] || fail "$dup recipients got the campaign twice"
[ "$(cfield stall sent)" = "$N" ] || fail "status sent $(cfield stall sent), want $N"
grep -Eq 'lease may have ended before|lease lost' "$T/sukid-$holder.log" ||
    fail "$holder did not stop at its closed gate"
ok "stalled runner started nothing after its lease: every recipient exactly once"
stop_sukid a || fail "a: exit status $?"
stop_sukid b || fail "b: exit status $?"
