#!/bin/sh
# sukictl_status.sh - sukictl status on a fresh Redis (no stream, no group,
# no sukid): zeros, not "ERR no such key", and exit 1 saying that no sukid
# runs; exit 0 once a sukid has started; exit 1 again as soon as it stopped.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID" "$SUKICTL"

start_redis
CONF=$T/sukid.conf
write_conf "$CONF"
J='import json,sys; o=json.load(sys.stdin)'

sukictl status >"$T/st.out" 2>"$T/st.err"
rc=$?
cat "$T/st.out" "$T/st.err"
[ $rc = 1 ] || fail "fresh Redis, no sukid: exit $rc, want 1"
grep -q 'no sukid is running' "$T/st.err" || fail "does not say that no sukid runs"
grep -qi 'ERR\|no such key' "$T/st.out" "$T/st.err" && fail "a Redis error leaked"
grep -q '^pending  *0$' "$T/st.out" || fail "pending not 0"
sukictl --json status >"$T/st.json" 2>"$T/st.err"
[ $? = 1 ] || fail "--json, no sukid: want exit 1"
grep -qi 'no such key' "$T/st.err" && fail "--json: a Redis error leaked"
"$PY" -c "$J
assert o['redis_reachable'] is True, o
assert o['daemons'] == [], o
for k in ('stream_length', 'pending', 'lag', 'consumers', 'dead_entries',
          'jobs_scheduled', 'events_applied'):
    assert o[k] == 0 and type(o[k]) is int, (k, o)" <"$T/st.json" ||
    fail "--json figures on a fresh Redis: $(cat "$T/st.json")"
ok "fresh Redis: zeros, exit 1, no sukid"

# A producer came first: the stream exists, the group does not yet.
rcli XADD suki:events '*' event '{"type":"a.b","client":"c1"}' >/dev/null
sukictl --json status >"$T/st.json" 2>"$T/st.err"
grep -qi 'ERR\|no such' "$T/st.err" && fail "stream without group: $(cat "$T/st.err")"
"$PY" -c "$J
assert o['stream_length'] == 1 and o['lag'] == 1 and o['pending'] == 0, o" \
    <"$T/st.json" || fail "stream without group: $(cat "$T/st.json")"
ok "stream without a group: lag is the stream"

start_sukid a "$CONF"
wait_for 10 'sukictl status >/dev/null 2>&1' ||
    fail "status with a live sukid: $(sukictl status 2>&1)"
sukictl status >"$T/st.out" 2>"$T/st.err" || fail "status: exit $?"
grep -q '^daemons  *1$' "$T/st.out" || fail "daemon not listed: $(cat "$T/st.out")"
[ ! -s "$T/st.err" ] || fail "stderr with a live sukid: $(cat "$T/st.err")"
ok "live sukid: exit 0"

# (Here for the Redis it needs.) After "--", --help is an argument, and the
# "--" is not: cancel looks up a job of that name (cli_help.sh has the rest).
sukictl cancel -- --help >"$T/c.out" 2>&1 && fail "cancel -- --help: exit 0"
grep -q 'no such job: --help' "$T/c.out" || fail "cancel -- --help: $(cat "$T/c.out")"
ok "cancel -- --help looks up a job named --help"

stop_sukid a || fail "sukid exit status"
sukictl status >/dev/null 2>"$T/st.err" && fail "status exit 0 after sukid stopped"
grep -q 'no sukid is running' "$T/st.err" || fail "after stop: $(cat "$T/st.err")"
ok "stopped sukid: exit 1 at once"
