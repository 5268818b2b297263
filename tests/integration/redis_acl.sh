#!/bin/sh
# redis_acl.sh - sukid, its agent and sukictl log in as a Redis 6 ACL user
# (redis.username + password_file: AUTH username password) that has exactly
# the ACL documented in sukid(8), and run the normal flow with it: events
# from the stream and a list, a rule scheduling a job, due jobs fired and
# sent (the agent's sent markers), sukictl status, jobs and dead. A user
# lacking a command, a key or the right password gets a clear error.
. "$top_srcdir/tests/integration/sched_lib.sh"

start_redis
P=$SUKI_PREFIX
PW=$T/redis.pass
printf 's3cret-%s\n' "$$" >"$PW"
chmod 600 "$PW"
# The documented ACL (man/sukid.8, "REDIS ACL"), as one line per user.
CMDS=$(sed -n '/^\.\\" acl-commands-begin/,/^\.\\" acl-commands-end/p' \
    "$top_srcdir/man/sukid.8" | grep -v '^\.' | tr '\n' ' ')
[ -n "$CMDS" ] || fail "no command list found in man/sukid.8"
# every command a Lua script calls must be in the list (the C side is
# covered by the run below)
for c in $(cat "$top_srcdir"/lib/store/*.lua |
    grep -oE "redis\.p?call\(['\"][A-Za-z]+" | sed -E "s/.*\(['\"]//" |
    tr A-Z a-z | sort -u); do
    echo " $CMDS " | grep -q " +$c " ||
        fail "lib/store calls $c, which the ACL in sukid(8) lacks"
done
# and so must every command the C code sends: an argv literal ({"HSET", ...)
# or a sukictl_cmd format; a word Redis does not know as a command (an
# error name) is left out, and so are AUTH (every user may) and SENTINEL
# (sent to the sentinels, not to this server)
for c in $( {
    grep -rhoE '\{ *"[A-Z]+"' "$top_srcdir/daemon" "$top_srcdir/lib" "$top_srcdir/ctl"
    grep -rhoE 'sukictl_cmd\([a-z]+, *"[A-Z]+' "$top_srcdir/ctl"
} | grep -oE '[A-Z]{3,}' | tr A-Z a-z | sort -u); do
    case $c in auth | sentinel) continue ;; esac
    [ -n "$(rcli COMMAND INFO "$c" | head -1)" ] || continue
    echo " $CMDS " | grep -qE " \+$c( |\|)" ||
        fail "the C code sends $(echo "$c" | tr a-z A-Z), which the ACL in sukid(8) lacks"
done
acl_user()
{
    _u=$1
    shift
    # shellcheck disable=SC2086
    rcli ACL SETUSER "$_u" reset on ">$(cat "$PW")" resetchannels \
        "~$P:*" "~crm:events" -@all $CMDS "$@" >/dev/null ||
        fail "ACL SETUSER $_u failed"
}
acl_user suki
[ "$(rcli --user suki --pass "$(cat "$PW")" --no-auth-warning TYPE "$P:nothing")" = none ] ||
    fail "the ACL user cannot log in"

CONF=$T/sukid.conf
REDIS_EXTRA="username = \"suki\"; password_file = \"$PW\";" \
INTAKE_EXTRA='lists = [ "crm:events" ];' sched_conf "$CONF"
"$SUKID" -t -c "$CONF" >/dev/null || fail "config refused"

NOW=$(now_ms)
add_jobs --count 5 --due "$NOW"
start_sched a "$CONF"
wait_for 20 '[ "$(spool_count)" = 5 ]' || fail "$(spool_count) of 5 sent"
wait_for 10 '[ "$(zcard)" = 0 ]' || fail "$(zcard) jobs left after sending"
[ "$(rcli --scan --pattern "$P:sent:*" | wc -l)" = 5 ] ||
    fail "sent markers: $(rcli --scan --pattern "$P:sent:*" | wc -l)"
ok "5 due jobs fired, sent and marked as the ACL user"

gen_events 500 --ids
rcli LPUSH crm:events '{"type":"client.created","client":"lst","data":{"name":"L"}}' >/dev/null
rcli XADD "$P:events" '*' event '{"type":"sched.test","client":"acme","id":"s1"}' >/dev/null
rcli XADD "$P:events" '*' event 'not json' >/dev/null
wait_for 30 '[ "$(stat applied)" -ge 502 ]' || fail "applied $(stat applied) of 502"
[ "$(clients_not_once 500)" = 0 ] || fail "an event not applied once"
[ "$(rcli HGET "$P:client:lst" name)" = L ] || fail "list event not applied"
wait_for 10 '[ "$(zcard)" = 1 ]' || fail "the rule scheduled no job"
wait_for 10 '[ "$(stat invalid)" = 1 ]' || fail "bad event not dead-lettered"
ok "502 events (stream and list) applied, a job scheduled, a dead letter"

sukictl status >"$T/status.out" 2>&1 || fail "sukictl status: $(cat "$T/status.out")"
sukictl jobs | grep -q "sched-test:acme:" || fail "sukictl jobs"
sukictl dead | grep -q "not json\|invalid" || fail "sukictl dead: $(sukictl dead)"
ok "sukictl status, jobs and dead as the ACL user"

grep -q "NOPERM\|WRONGPASS\|NOAUTH" "$T/sukid-a.log" &&
    fail "a refused command: $(grep "NOPERM\|WRONGPASS\|NOAUTH" "$T/sukid-a.log" | head -3)"
stop_sukid a || fail "sukid did not exit 0"
ok "no command refused in the whole run; clean stop"

# ---- a user without a permission --------------------------------------
# no EVALSHA: the handshake's SCRIPT LOAD passes, the first script call
# fails, so take SCRIPT LOAD away too: the link never comes up
acl_user nosha -evalsha -script\|load
sed 's/username = "suki"/username = "nosha"/' "$CONF" >"$T/nosha.conf"
"$SUKID" -c "$T/nosha.conf" >"$T/nosha.log" 2>&1 &
NP=$!
lib_track $NP
wait_for 15 'grep -q "NOPERM" "$T/nosha.log"' || fail "no NOPERM error: $(cat "$T/nosha.log")"
grep "NOPERM" "$T/nosha.log" | head -1 | grep -q "nosha.*script|load\|script|load.*nosha\|user nosha" ||
    fail "the error does not say which user and command: $(grep NOPERM "$T/nosha.log" | head -1)"
kill "$NP"
wait "$NP" 2>/dev/null
lib_untrack "$NP"
ok "a user without SCRIPT LOAD: $(grep NOPERM "$T/nosha.log" | head -1 | cut -c1-160)"

# a key outside the ACL (the input list): a clear error, nothing lost
acl_user nolist
rcli ACL SETUSER nolist resetkeys "~$P:*" >/dev/null
sed 's/username = "suki"/username = "nolist"/' "$CONF" >"$T/nolist.conf"
rcli LPUSH crm:events '{"type":"client.created","client":"lst2"}' >/dev/null
"$SUKID" -c "$T/nolist.conf" >"$T/nolist.log" 2>&1 &
NP=$!
lib_track $NP
wait_for 15 'grep -q "NOPERM" "$T/nolist.log"' || fail "no NOPERM error: $(cat "$T/nolist.log")"
[ "$(rcli LLEN crm:events)" = 1 ] || fail "the list item was lost"
kill "$NP"
wait "$NP" 2>/dev/null
lib_untrack "$NP"
ok "a user without the list's key: $(grep NOPERM "$T/nolist.log" | head -1 | cut -c1-160)"

# a wrong password: sukictl says so and exits non-zero
echo wrong >"$T/bad.pass"
chmod 600 "$T/bad.pass"
sed "s|$PW|$T/bad.pass|" "$CONF" >"$T/badpw.conf"
"$SUKICTL" -c "$T/badpw.conf" status >"$T/badpw.out" 2>&1 && fail "sukictl with a bad password exited 0"
grep -q "AUTH as suki failed: WRONGPASS" "$T/badpw.out" || fail "sukictl: $(cat "$T/badpw.out")"
ok "a wrong password: $(grep -o "redis AUTH as suki failed.*" "$T/badpw.out")"
exit 0
