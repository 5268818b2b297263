#!/bin/sh
# campaign_takeover_unsent.sh - the other side of campaign_takeover_slow.sh:
# the runner dies -9 with recipients taken (in its in-flight set) that it
# never handed to a transport. The runner that takes over holds them for the
# transport's timeout plus a margin (the dead runner's agent might still be
# sending some), then sends each exactly once: the ones that went out
# before the kill are found by their P:sent markers, the rest are sent.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/campaign_lib.sh"
"$PY" -c "import aiosmtpd" 2>/dev/null ||
    fail "cannot run here: python module aiosmtpd not found"

N=40
start_redis
start_aiosmtpd "$T/smtp"
# campaign_lib.sh sets the transport timeout to 10 s: a hold of 20 s
TX='rate = "5000/s"; max_connections = 4;'
CONF=$T/sukid.conf
LOG_LEVEL=debug camp_conf "$CONF" "" "$TX"
HTTP_A=$HTTP_PORT
HTTP_PORT=$(free_port)
CONF_B=$T/b.conf
LOG_LEVEL=debug camp_conf "$CONF_B" "" "$TX"
start_daemon b "$CONF_B"
HTTP_PORT=$HTTP_A
start_daemon a "$CONF"
populate "$N"
rcpt_ok() { sed -n 's/^RCPT \(.*\) 250$/\1/p' "$T/smtp/events.log" 2>/dev/null; }
delivered() { awk '/^DATA .* 250/ { n++ } END { print n + 0 }' "$T/smtp/events.log" 2>/dev/null; }

# 4 a second: the first page takes all 40 into the in-flight set at once
"$SUKICTL" -c "$CONF" campaign create unsent --template promo --audience all \
    --rate 4/s >/dev/null || fail "create"
wait_for 20 '[ "$(delivered)" -ge 6 ]' || fail "the campaign does not start"
runner=$(cfield unsent runner)
case "$runner" in
*:$SUKID_PID_a:*) holder=a other=b ;;
*:$SUKID_PID_b:*) holder=b other=a ;;
*) fail "runner '$runner' is neither daemon" ;;
esac
stop_sukid "$holder" KILL
before=$(delivered)
inflight=$(rcli SCARD "$SUKI_PREFIX:cinflight:unsent")
[ "$inflight" -ge 20 ] ||
    fail "only $inflight in flight at the kill: the test proves nothing"
ok "runner $holder killed after $before messages, $inflight taken and unsent"

# takeover after the lease (5 s), hold 10 + 10 s, then about 8 s at 4/s
wait_state unsent completed 60 || fail "not completed after 60 s"
sleep 1
D=$(delivered)
got=$(rcpt_ok | sort -u | wc -l)
dup=$(rcpt_ok | sort | uniq -d | wc -l)
echo "delivered $D ($before before the kill), $got distinct, $dup twice"
[ "$got" = "$N" ] || fail "$got distinct recipients at the server, want $N"
[ "$dup" = 0 ] || fail "$dup recipients got the campaign twice"
[ "$D" = "$N" ] || fail "the server accepted $D messages, want $N"
[ "$(cfield unsent sent)" = "$N" ] || fail "status sent $(cfield unsent sent), want $N"
grep -q 'held\|cheld' /dev/null
ok "runner killed before sending: every recipient exactly once"
stop_sukid "$other" || fail "$other: exit status $?"
