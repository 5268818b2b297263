#!/bin/sh
# two_daemons_slow.sh - two sukid on one Redis share 40 follow-ups to an SMTP
# server that takes 3 s to answer each final ".", 8 connections each. An
# outside review saw the second daemon's transfers fail "response reading
# failed (errno: 115)", its breaker open and only 24 of 40 arrive after
# 70 s, while one daemon with 16 connections sent all 40 (issue #13, item
# 11). That did NOT happen on this host at 1c62f4d (ASan and -O2 builds,
# also with smtp-sink -w 3): this test passes there and is kept as a check
# that several daemons share slow work. Every job must arrive exactly once
# within 40 s, with no failed transfer in either log.
. "$top_srcdir/tests/integration/sched_lib.sh"
need redis-server redis-cli "$SUKID"
"$PY" -c "import aiosmtpd" 2>/dev/null ||
    fail "cannot run here: python module aiosmtpd not found"

N=40
start_redis
slow_smtpd 3
CONF=$T/sukid.conf
LOG_LEVEL=debug \
    EMAIL="url = \"smtp://127.0.0.1:$SP\"; starttls = \"off\"; timeout = \"30s\"; max_connections = 8;" \
    sched_conf "$CONF"
start_sched a "$CONF"
start_sched b "$CONF"
T0=$(date +%s)
# due over 4 s: both daemons claim a share (a scheduler takes all that is
# due at once)
add_jobs --count "$N" --due "$(now_ms)" --spread 4000

# 40 messages over 16 connections at 3 s each: 9 s; 40 s is ample
wait_for 40 '[ "$(zcard)" = 0 ]' ||
    fail "$(zcard) of $N jobs not completed after 40 s ($(smtpd_count '^DATA .* 250') delivered)"
echo "completed in $(($(date +%s) - T0)) s"
sleep 1
D=$(smtpd_count '^DATA .* 250')
M=$(mail_count)
A=$(grep -c 'response reading failed' "$T/sukid-a.log")
B=$(grep -c 'response reading failed' "$T/sukid-b.log")
SA=$(grep -c 'status=sent' "$T/sukid-a.log")
SB=$(grep -c 'status=sent' "$T/sukid-b.log")
echo "delivered $D (a $SA, b $SB), transactions $M, 'response reading failed': a $A, b $B"
[ "$A" = 0 ] && [ "$B" = 0 ] || fail "transfers failed: a $A, b $B"
[ "$D" = "$N" ] || fail "the server accepted $D messages, want $N"
[ "$M" = "$N" ] || fail "the server saw $M transactions, want $N (sent twice?)"
[ "$SA" -gt 0 ] && [ "$SB" -gt 0 ] ||
    fail "one daemon sent everything (a $SA, b $SB): the test proves nothing"
ok "two daemons, 8 connections each, 3 s per message: $N/$N, once each"
stop_sukid a || fail "a: exit status $?"
stop_sukid b || fail "b: exit status $?"
