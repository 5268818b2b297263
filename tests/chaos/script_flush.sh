#!/bin/sh
# script_flush.sh - Redis loses its script cache (SCRIPT FLUSH) just as the
# apply of the batch that sets two clients' time zone goes out, with later
# batches read ahead. Before, the apply was sent again as EVAL after
# commands pipelined behind it had run, so a later batch's profile read
# missed the time zone and its follow-ups were due in the wrong zone. Now
# every event is applied once, in order: both follow-ups are due at 09:00
# Manila, nothing is pending.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID"
mkdir -p "$T/plug"
ln -s "$top_builddir/plugins/.libs/followup.so" "$T/plug/" ||
    fail "followup.so not built"

start_redis
"$PY" "$top_srcdir/tests/chaos/fault_proxy.py" --listen-port-file "$T/proxy.port" \
    --to "$REDIS_PORT" --match 'Asia/Manila' --action flush >"$T/proxy.log" 2>&1 &
lib_track $!
wait_for 10 '[ -s "$T/proxy.port" ]' || fail "proxy did not start"

day=$(TZ=Asia/Manila date -d '+10 days' +%F)
at="${day}T10:00:00+08:00"
due_ms=$(($(date -d "$(date -d "$day +3 days" +%F)T01:00:00Z" +%s) * 1000))
for i in $(seq 1 60); do
    case $i in
    5) ev='{"type":"client.updated","client":"z","data":{"timezone":"Asia/Manila"}}' ;;
    6) ev='{"type":"client.updated","client":"w","data":{"timezone":"Asia/Manila"}}' ;;
    10) ev='{"type":"meeting.held","client":"w","at":"'"$at"'"}' ;;
    13) ev='{"type":"meeting.held","client":"z","at":"'"$at"'"}' ;;
    *) ev="{\"type\":\"meeting.held\",\"client\":\"f$i\"}" ;;
    esac
    rcli XADD suki:events '*' event "$ev" >/dev/null
done

CONF=$T/sukid.conf
RP=$REDIS_PORT
REDIS_PORT=$(cat "$T/proxy.port")
PLUGINS_DIR=$T/plug TEMPLATES_DIR=$top_srcdir/conf/templates \
INTAKE_EXTRA='batch = 4;' write_conf "$CONF" '
timezone = "America/New_York";
rules = ( { name = "fu"; use = "followup"; on = [ "meeting.held" ];
            after = "3d"; at_local = "09:00";
            notify = [ "manager" ]; template = "followup-reminder"; } );'
REDIS_PORT=$RP
start_sukid a "$CONF"
wait_for 20 '[ "$(stat applied)" = 60 ]' || fail "applied $(stat applied)"
grep -q FLUSHED "$T/proxy.log" || fail "the script cache was not flushed"
for c in z w; do
    k=$(rcli HKEYS suki:job:$c)
    [ "$(rcli ZSCORE suki:jobs "$k")" = "$due_ms" ] ||
        fail "$c: due $(rcli ZSCORE suki:jobs "$k"), want $due_ms (09:00 Manila)"
done
[ "$(rcli ZCARD suki:jobs)" = 58 ] || fail "jobs: $(rcli ZCARD suki:jobs)"
[ "$(group_pending)" = 0 ] || fail "pending $(group_pending)"
[ "$(rcli HGET suki:client-events z)" = 2 ] || fail "z: $(rcli HGET suki:client-events z) events"
ok "script cache flushed under a read-ahead pipeline: applied once, in order"
stop_sukid a || fail "exit status $?"
