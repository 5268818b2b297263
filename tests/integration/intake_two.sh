#!/bin/sh
# intake_two.sh - two sukid in one consumer group split the load; every
# event is applied once.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID"

start_redis
CONF=$T/sukid.conf
INTAKE_EXTRA='batch = 64;' write_conf "$CONF"
start_sukid a "$CONF"
start_sukid b "$CONF"
[ "$(rcli XINFO CONSUMERS suki:events sukid | grep -c '^name$')" = 2 ] ||
    fail "want two consumers in the group"

N=30000
gen_events $N
wait_for 60 '[ "$(stat applied)" -ge '$N' ] && [ "$(group_pending)" = 0 ]' ||
    fail "applied $(stat applied) of $N"
[ "$(stat applied)" = $N ] || fail "applied $(stat applied), want $N"
[ "$(clients_not_once $N)" = 0 ] ||
    fail "$(clients_not_once $N) clients without exactly one event"

stop_sukid a || fail "a: exit status $?"
stop_sukid b || fail "b: exit status $?"
na=$(sed -n 's/.*this process applied \([0-9]*\) events.*/\1/p' "$T/sukid-a.log")
nb=$(sed -n 's/.*this process applied \([0-9]*\) events.*/\1/p' "$T/sukid-b.log")
echo "a applied $na, b applied $nb"
[ "$((na + nb))" = $N ] || fail "a $na + b $nb != $N"
[ "$na" -gt 0 ] && [ "$nb" -gt 0 ] || fail "the load was not split"
ok "two daemons: $na + $nb = $N, each event once"
