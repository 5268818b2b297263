#!/bin/sh
# http_slowloris.sh - 2,000 slowloris connections (one header byte every
# 2 s, never a whole request) against the unsubscribe listener, with
# http.request_timeout 3s and the default http.max_connections of 512.
# Before, each byte reset evhttp's idle timeout: no slow connection was
# ever closed (2,000 of 2,000 still open after 12 s). Now: past the limit
# each new connection takes the place of the oldest waiting one, every slow
# connection is closed within the deadline (plus the 500 ms tick), /healthz
# on a fresh connection answers within 1 s all along, the shedding is
# logged at most every 10 s, and sukid stays near idle.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli curl "$SUKID"

start_redis
HP=$(free_port)
CONF=$T/sukid.conf
write_conf "$CONF"
sed -i "s|^http = .*|http = { listen = \"127.0.0.1:$HP\"; request_timeout = \"3s\"; };|" "$CONF"
start_sukid a "$CONF"
wait_for 15 '[ "$(curl -s -m 3 http://127.0.0.1:$HP/healthz)" = ok ]' ||
    fail "no /healthz at start"

out=$("$PY" "$top_srcdir/tests/chaos/slowloris.py" "$HP" "$SUKID_PID_a" 2000 12) ||
    fail "slowloris.py failed"
echo "$out"
v() { echo "$out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
[ "$(v opened)" -ge 1900 ] || fail "only $(v opened) connections opened"
[ "$(v open)" = 0 ] || fail "$(v open) slow connections still open after 12 s (deadline 3 s)"
"$PY" -c "import sys; sys.exit(not float(sys.argv[1]) <= 6.0)" "$(v longest)" ||
    fail "a slow connection lived $(v longest) s (deadline 3 s)"
[ "$(v bad)" = 0 ] || fail "$(v bad) of $(v probes) /healthz probes failed or took over 1 s"
# near idle: 2,000 bytes every 2 s cost nothing; 15 % of one core leaves
# room for ASan on a busy machine, where a spinning loop takes 100 %
"$PY" -c "import sys; sys.exit(not float(sys.argv[1]) < 0.15 * 12)" "$(v cpu)" ||
    fail "sukid used $(v cpu) s of CPU in 12 s"
ok "2,000 slow connections: all closed (longest $(v longest) s), /healthz $(v probes)/$(v probes) within 1 s (worst $(v worst) s), CPU $(v cpu) s"

n=$(grep -c 'shedding the oldest' "$T/sukid-a.log")
[ "$n" -ge 1 ] && [ "$n" -le 3 ] || fail "connection limit logged $n times"
m=$(curl -s -m 3 "http://127.0.0.1:$HP/metrics")
lim=$(echo "$m" | sed -n 's/^suki_http_connections_shed_total{reason="limit"} //p')
dl=$(echo "$m" | sed -n 's/^suki_http_connections_shed_total{reason="deadline"} //p')
[ "${dl:-0}" -ge 1 ] || fail "deadline sheds counted: ${dl:-none}"
[ "${lim:-0}" -ge 1000 ] && [ $((lim + dl)) -ge 1900 ] ||
    fail "sheds counted: $lim at the limit, $dl at the deadline"

ok "shed at the limit $lim, at the deadline $dl; logged $n times"

# a request that completes in time is served, keep-alive included
r=$(curl -s -m 3 "http://127.0.0.1:$HP/healthz" "http://127.0.0.1:$HP/healthz")
[ "$r" = "okok" ] || [ "$r" = "ok
ok" ] || fail "keep-alive requests answered '$r'"
kill -0 "$SUKID_PID_a" || fail "sukid died"
stop_sukid a || fail "exit status $?"
ok "sukid stopped cleanly"
