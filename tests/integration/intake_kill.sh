#!/bin/sh
# intake_kill.sh - kill -9 sukid at random moments 10 times while 50,000
# events flow in, restarting it each time: in the end every event is
# applied exactly once, nothing is pending and nothing is lost. The events
# carry no id, so de-duplication cannot hide a double apply: each client's
# event counter must be exactly 1.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID"

start_redis
CONF=$T/sukid.conf
# an entry may be in flight at several kills: do not let it turn poison
INTAKE_EXTRA='max_deliveries = 1000; batch = 128;' write_conf "$CONF"
start_sukid a "$CONF"

N=50000
CHUNK=2500
(
    i=0
    while [ $i -lt $N ]; do
        gen_events $CHUNK --start $i
        i=$((i + CHUNK))
        sleep 0.1
    done
) &
PRODUCER=$!
lib_track $PRODUCER

kills=0
while [ $kills -lt 10 ]; do
    # a random moment: 50..450 ms after the (re)start
    sleep "0.$(( (RANDOM % 9) * 50 + 50 ))"
    stop_sukid a KILL
    kills=$((kills + 1))
    echo "kill $kills at applied=$(stat applied) stream=$(rcli XLEN suki:events)"
    start_sukid a "$CONF"
done
wait $PRODUCER || fail "producer failed"
lib_untrack $PRODUCER

wait_for 40 '[ "$(stat applied)" -ge '$N' ] && [ "$(group_pending)" = 0 ]' ||
    fail "applied $(stat applied) of $N, pending $(group_pending)"
[ "$(stat applied)" = $N ] || fail "applied $(stat applied), want $N"
[ "$(clients_not_once $N)" = 0 ] ||
    fail "$(clients_not_once $N) clients without exactly one event"
[ "$(stat duplicate)$(stat invalid)$(stat poison)" = 000 ] ||
    fail "unexpected counts: dup $(stat duplicate) invalid $(stat invalid) poison $(stat poison)"
[ "$(rcli XLEN suki:dead)" = 0 ] || fail "dead letters appeared"
grep -q "claimed" "$T/sukid-a.log" || fail "no entry was ever reclaimed"
ok "$kills kills: $N events applied exactly once, none pending"
stop_sukid a || fail "exit status $?"
