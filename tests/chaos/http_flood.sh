#!/bin/sh
# http_flood.sh - the HTTP listener (whose unsubscribe pages face the
# internet) under a flood of idle connections:
#  1. with only 128 descriptors, 300 idle connections: accept() runs out of
#     descriptors. Before, the listener stayed readable, so the loop spun
#     and logged "Too many open files" at 15-30 MB/s; now the shortage is
#     logged once, a reserve descriptor sheds each pending connection and
#     accepting pauses. When the flood goes, /healthz answers again.
#  2. under the default soft limit of 1024 (hard 8192), 2,000 idle
#     connections: sukid raised its soft limit, so /healthz still answers.
#  3. two Content-Length headers that disagree: 400 and the connection
#     closed (it was answered 200).
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli curl prlimit "$SUKID"

start_redis
HP=$(free_port)
CONF=$T/sukid.conf
write_conf "$CONF"
sed -i "s|^http = .*|http = { listen = \"127.0.0.1:$HP\"; };|" "$CONF"
code() { curl -s -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:$HP/healthz"; }

# flood N - hold N idle connections to the port until $T/flood.stop exists
flood()
{
    rm -f "$T/flood.stop" "$T/flood.up"
    "$PY" -c '
import os, socket, sys, time
n, port, up, stop = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
socks = []
for i in range(n):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
    except OSError:
        pass
    socks.append(s)
open(up, "w").write("%d\n" % len(socks))
while not os.path.exists(stop):
    time.sleep(0.1)
' "$1" "$HP" "$T/flood.up" "$T/flood.stop" &
    FLOOD=$!
    lib_track $FLOOD
    wait_for 60 '[ -s "$T/flood.up" ]' || fail "flood did not start"
}

# 1. out of descriptors
prlimit --nofile=128:128 "$SUKID" -c "$CONF" >>"$T/sukid-a.log" 2>&1 &
SUKID_PID_a=$!
lib_track $!
wait_for 15 '[ "$(code)" = 200 ]' || fail "no /healthz at start"
flood 300
sleep 3
n=$(grep -c 'Too many open files\|out of file descriptors' "$T/sukid-a.log")
[ "$n" -le 3 ] || fail "descriptor shortage logged $n times in 3 s"
[ "$(wc -c <"$T/sukid-a.log")" -lt 100000 ] || fail "log flooded: $(wc -c <"$T/sukid-a.log") bytes"
grep -q 'out of file descriptors' "$T/sukid-a.log" || fail "shortage not logged"
touch "$T/flood.stop"
wait "$FLOOD"
lib_untrack "$FLOOD"
wait_for 10 '[ "$(code)" = 200 ]' || fail "/healthz did not come back after the flood"
kill -0 "$SUKID_PID_a" || fail "sukid died"
ok "out of descriptors: logged once, no spin, back when the flood ends"
stop_sukid a || fail "exit status $?"

# 2. the default soft limit of 1024
prlimit --nofile=1024:8192 "$SUKID" -c "$CONF" >>"$T/sukid-b.log" 2>&1 &
SUKID_PID_b=$!
lib_track $!
wait_for 15 '[ "$(code)" = 200 ]' || fail "b: no /healthz at start"
flood 2000
[ "$(code)" = 200 ] || fail "/healthz unreachable behind 2,000 idle connections"
grep -q 'out of file descriptors' "$T/sukid-b.log" && fail "b ran out of descriptors"
touch "$T/flood.stop"
wait "$FLOOD"
lib_untrack "$FLOOD"
ok "2,000 idle connections under a soft limit of 1024: /healthz answers"

# 3. conflicting Content-Length
out=$(printf 'POST /u/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc' |
    "$PY" -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.stdin.buffer.read())
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
print(data.split(b"\r\n")[0].decode())
' "$HP")
[ "$out" = "HTTP/1.1 400 Bad Request" ] || fail "conflicting Content-Length answered '$out'"
ok "conflicting Content-Length refused and the connection closed"
stop_sukid b || fail "exit status $?"
