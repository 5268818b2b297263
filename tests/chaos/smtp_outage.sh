#!/bin/sh
# smtp_outage.sh - the SMTP server goes away under load (its connections
# die, new ones are refused) for 6 s, three times the longest retry
# backoff (retry_max 2 s), then comes back on the same port, twice. The
# reminders fail, are retried with backoff, the transport's circuit
# breaker opens (3 failures) and, once the server is back, half-opens,
# probes and closes. Every reminder arrives exactly once, every event is
# applied once, nothing pending, no job left, descriptors and RSS flat,
# idle CPU near 0, and the breaker ends closed.
# CI: 2 outages of 6 s. SOAK_LONG=1: 6 outages of 15 s.
. "$top_srcdir/tests/chaos/chaos_lib.sh"
OUTAGES=2 DOWN=6
[ "${SOAK_LONG:-0}" = 1 ] && OUTAGES=6 DOWN=15

start_redis
chaos_smtpd
CONF=$T/sukid.conf
EMAIL_EXTRA='breaker_failures = 3; breaker_cooldown = "1s";' chaos_conf "$CONF"
start_sched a "$CONF"
chaos_warmup 600

produce_bg $((OUTAGES * (DOWN + 3) * 50)) 600 50
o=0
while [ $o -lt $OUTAGES ]; do
    sleep 2
    chaos_smtpd_stop
    sleep "$DOWN"
    chaos_smtpd
    o=$((o + 1))
done
produce_wait
n=$(grep -c 'circuit breaker open' "$T/sukid-a.log")
[ "$n" -ge "$OUTAGES" ] || fail "the breaker opened $n times in $OUTAGES outages"
ok "$OUTAGES SMTP outages of $DOWN s under load; the breaker opened $n times"
chaos_end 90
last=$(grep 'circuit breaker' "$T/sukid-a.log" | tail -1)
case $last in
*"circuit breaker closed"*) ;;
*) fail "the breaker did not end closed: $last" ;;
esac
ok "SMTP server down for longer than the backoff: every reminder once, the breaker closed again"
