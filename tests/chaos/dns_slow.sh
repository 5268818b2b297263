#!/bin/sh
# dns_slow.sh - Redis named by a host name whose lookup never gets an
# answer (a name server that swallows every query): the loop keeps serving
# /healthz (503, Redis unreachable) within a second every time, because the
# name is looked up with evdns, not with the blocking getaddrinfo() inside
# hiredis that froze the loop for the resolver's whole timeout on every
# reconnect. A name from /etc/hosts connects and events apply.
# Runs sukid in a private mount namespace (unshare -m, as root) with its
# own /etc/resolv.conf and /etc/hosts.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli curl unshare mount "$SUKID"
[ "$(id -u)" = 0 ] || fail "cannot run here: needs root for unshare -m"
unshare -m true || fail "cannot run here: unshare -m refused"

start_redis
# a name server on 127.0.0.2:53 that reads every query and never answers
"$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.2", 53))
open(sys.argv[1], "w").write("up\n")
while True:
    s.recv(4096)
' "$T/dns.up" >"$T/dns.log" 2>&1 &
lib_track $!
wait_for 10 '[ -s "$T/dns.up" ]' || fail "blackhole name server did not start"
printf 'nameserver 127.0.0.2\noptions timeout:5 attempts:2\n' >"$T/resolv.conf"
printf '127.0.0.1 localhost\n127.0.0.1 redis.suki.test\n' >"$T/hosts"

# run_ns NAME CONF - sukid NAME in its own mount namespace
run_ns()
{
    unshare -m sh -c 'mount --bind "$1" /etc/resolv.conf &&
        mount --bind "$2" /etc/hosts && exec "$3" -c "$4"' sh \
        "$T/resolv.conf" "$T/hosts" "$SUKID" "$2" >>"$T/sukid-$1.log" 2>&1 &
    eval "SUKID_PID_$1=$!"
    lib_track $!
}

HP=$(free_port)
CONF=$T/sukid.conf
write_conf "$CONF"
sed -i "s|redis://127.0.0.1:|redis://redis.blackhole.test:|; s|^http = .*|http = { listen = \"127.0.0.1:$HP\"; };|" "$CONF"
run_ns a "$CONF"
wait_for 10 '[ "$(curl -s -o /dev/null -w "%{http_code}" --max-time 1 http://127.0.0.1:$HP/healthz)" = 503 ]' ||
    fail "no /healthz at start"
slow=0
for i in $(seq 1 16); do
    c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$HP/healthz")
    [ "$c" = 503 ] || slow=$((slow + 1))
    sleep 0.5
done
[ "$slow" = 0 ] || fail "$slow of 16 /healthz probes got no answer within 1 s while DNS hung"
grep -q "redis.blackhole.test" "$T/sukid-a.log" || fail "lookup failure not logged"
ok "a host name lookup that never answers does not stop the loop"
stop_sukid a || fail "exit status $?"

CONF2=$T/sukid2.conf
write_conf "$CONF2"
sed -i "s|redis://127.0.0.1:|redis://redis.suki.test:|" "$CONF2"
run_ns b "$CONF2"
wait_for 15 'grep -q "consumer group ready" "$T/sukid-b.log"' || fail "no connection by /etc/hosts name"
rcli XADD suki:events '*' event '{"type":"a.b","client":"h1"}' >/dev/null
wait_for 10 '[ "$(stat applied)" = 1 ]' || fail "event not applied"
ok "a name from /etc/hosts connects"
stop_sukid b || fail "exit status $?"
