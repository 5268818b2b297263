#!/bin/sh
# inbound_failover.sh - the IMAP poller against a real Dovecot over
# imap:// with STARTTLS required:
#   1. a wrong password: the error is logged and shown by sukictl inbound
#      status, nothing is processed, sukid keeps running; after the
#      password file is fixed, SIGHUP, and the mailbox is read;
#   2. two sukid: one polls (the lease), every message is done once;
#      kill -9 of the poller: the other takes over once the lease ends.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/dovecot_lib.sh"
need redis-server redis-cli "$SUKID" "$SUKICTL"
P=$SUKI_PREFIX
start_redis
start_dovecot
printf 'wrong\n' >"$T/imap.pass"
chmod 600 "$T/imap.pass"
CONF=$T/sukid.conf
write_conf "$CONF" "inbound = { url = \"imap://127.0.0.1:$IMAP_PORT/INBOX\";
  username = \"suki\"; password_file = \"$T/imap.pass\";
  starttls = \"required\"; ca_file = \"$T/dc/cert.pem\"; poll = \"1s\"; };"
"$SUKID" -t -c "$CONF" || fail "config refused"
n() { rcli HGET "$P:inbound" "n:$1"; }

start_sukid a "$CONF"
wait_for 15 'rcli HGET $P:inbound error | grep -q "Login denied"' ||
    fail "no login error recorded: $(rcli HGETALL $P:inbound)"
grep -q "inbound: listing imap://127.0.0.1:$IMAP_PORT/INBOX:.*Login denied" "$T/sukid-a.log" ||
    grep -q "inbound: NOOP on imap://127.0.0.1:$IMAP_PORT/INBOX:.*Login denied" "$T/sukid-a.log" ||
    fail "the error was not logged"
[ "$(grep -c 'Login denied' "$T/sukid-a.log")" = 1 ] ||
    fail "the same error logged at every poll"
s=$(sukictl inbound status) || fail "status"
echo "$s" | grep -q "^error .*Login denied" || fail "status: $s"
[ -z "$(n other)" ] || fail "processed without logging in"
kill -0 "$SUKID_PID_a" || fail "sukid died"
ok "a wrong password is logged once and shown by sukictl inbound status"

printf 'secret\n' >"$T/imap.pass"
kill -HUP "$SUKID_PID_a"
wait_for 15 '[ "$(n other)" = 1 ]' || fail "not read after the fix: $(rcli HGETALL $P:inbound)"
grep -q "inbound: polling imap://127.0.0.1:$IMAP_PORT/INBOX again" "$T/sukid-a.log" ||
    fail "the recovery was not logged"
[ -z "$(rcli HGET $P:inbound error)" ] || fail "the error stays"
# STARTTLS it was: this Dovecot refuses a password sent in clear
grep -qx "disable_plaintext_auth = yes" "$T/dc/dovecot.conf" ||
    fail "the test's Dovecot would take a password in clear"
ok "after the fix and SIGHUP the mailbox is read over STARTTLS"

start_sukid b "$CONF"
imap_fill others 40 || fail "APPEND"
wait_for 60 '[ "$(n other)" = 41 ]' || fail "other: $(n other)"
uids=$(cat "$T/sukid-a.log" "$T/sukid-b.log" | grep -o 'inbound: UID [0-9]*' | sort | uniq -d)
[ -z "$uids" ] || fail "done twice: $uids"
[ "$(grep -c 'inbound: UID' "$T/sukid-b.log")" = 0 ] || fail "b polled while a held the lease"
ok "two sukid: one polls, each message once"

stop_sukid a KILL
for i in $(seq 10); do imap_fill other || fail "APPEND"; done
wait_for 30 '[ "$(n other)" = 51 ]' || fail "b did not take over: $(n other)"
[ "$(grep -c 'inbound: UID' "$T/sukid-b.log")" -ge 10 ] || fail "not b's work"
uids=$(cat "$T/sukid-a.log" "$T/sukid-b.log" | grep -o 'inbound: UID [0-9]*' | sort | uniq -d)
[ -z "$uids" ] || fail "done twice after the take-over: $uids"
ok "kill -9 of the poller: the other sukid takes over"
stop_sukid b || fail "sukid b did not exit 0"
exit 0
