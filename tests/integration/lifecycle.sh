#!/bin/sh
# lifecycle.sh - sukid against a real redis-server: READY=1 over
# NOTIFY_SOCKET, surviving a Redis outage and reconnecting, SIGHUP with a
# broken config keeps the old one, SIGHUP with a good one applies it, SIGTERM
# exits 0 with STOPPING=1.
set -eu
command -v redis-server >/dev/null || { echo "FAIL: cannot run here: redis-server missing"; exit 1; }
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "FAIL: cannot run here: $PY missing"; exit 1; }

T=$(mktemp -d /tmp/suki-lifecycle.XXXXXX)
SUKID_PID= NOTIFY_PID=
cleanup() {
    [ -n "$SUKID_PID" ] && kill -9 "$SUKID_PID" 2>/dev/null || true
    [ -n "$NOTIFY_PID" ] && kill "$NOTIFY_PID" 2>/dev/null || true
    if [ -f "$T/redis.pid" ]; then
        rp=$(cat "$T/redis.pid")
        kill "$rp" 2>/dev/null || true
        # redis-server is not our child: poll until it is gone, so it does
        # not write into the directory while it is being removed.
        n=50
        while kill -0 "$rp" 2>/dev/null && [ "$n" -gt 0 ]; do
            sleep 0.1; n=$((n - 1))
        done
    fi
    rm -rf "$T" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

fail() { echo "FAIL: $*"; echo "--- sukid log"; cat "$T/sukid.log" || true; exit 1; }

# wait_for SECONDS COMMAND...: poll until the command succeeds.
wait_for() {
    n=$(( $1 * 10 )); shift
    while [ "$n" -gt 0 ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1; n=$((n - 1))
    done
    return 1
}

start_redis() {
    redis-server --port 0 --unixsocket "$T/redis.sock" --unixsocketperm 700 \
        --save '' --appendonly no --daemonize yes --pidfile "$T/redis.pid" \
        --logfile "$T/redis.log" --dir "$T"
    wait_for 10 redis-cli -s "$T/redis.sock" ping || fail "redis did not start"
}

mkdir -p "$T/plugins" "$T/templates" "$T/spool"
cat > "$T/sukid.conf" <<CONF
redis = { url = "unix://$T/redis.sock"; connect_timeout = "1s"; };
plugins = { dir = "$T/plugins"; };
templates = { dir = "$T/templates"; };
transports = { email = { url = "spool://$T/spool"; }; };
http = { listen = ""; };
CONF

# A datagram socket standing in for systemd's notify socket.
"$PY" - "$T/notify.sock" "$T/notify.log" <<'PYEOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        log.write(s.recv(4096).decode() + "\n")
PYEOF
NOTIFY_PID=$!
wait_for 5 test -S "$T/notify.sock" || fail "notify socket"

start_redis
NOTIFY_SOCKET="$T/notify.sock" "${SUKID:-$top_builddir/sukid}" -c "$T/sukid.conf" \
    >"$T/sukid.log" 2>&1 &
SUKID_PID=$!

wait_for 10 grep -q "READY=1" "$T/notify.log" || fail "no READY=1"
echo "ok: READY=1 after redis connected"

# Redis goes away: sukid stays up and says so.
redis-cli -s "$T/redis.sock" shutdown nosave >/dev/null 2>&1 || true
wait_for 10 grep -q "lost connection" "$T/sukid.log" || fail "no lost-connection log"
sleep 1
kill -0 "$SUKID_PID" || fail "sukid died without redis"
grep -q "cannot connect" "$T/sukid.log" || fail "no retry log"
echo "ok: survives redis outage"

start_redis
wait_for 15 sh -c "[ \$(grep -c 'redis main: connected' '$T/sukid.log') -ge 2 ]" \
    || fail "did not reconnect"
echo "ok: reconnected"

# A broken config on SIGHUP is reported and the old one keeps running.
cp "$T/sukid.conf" "$T/good.conf"
echo 'intake = { batch = "lots"; };' >> "$T/sukid.conf"
kill -HUP "$SUKID_PID"
wait_for 10 grep -q "reload failed" "$T/sukid.log" || fail "no reload failure log"
grep -q "'batch' must be an integer" "$T/sukid.log" || fail "reason not logged"
kill -0 "$SUKID_PID" || fail "sukid died on a bad reload"
echo "ok: bad reload kept the old config"

cp "$T/good.conf" "$T/sukid.conf"
kill -HUP "$SUKID_PID"
wait_for 10 grep -q "configuration reloaded" "$T/sukid.log" || fail "good reload not applied"
echo "ok: good reload applied"

kill -TERM "$SUKID_PID"
rc=0
wait "$SUKID_PID" || rc=$?
SUKID_PID=
[ "$rc" -eq 0 ] || fail "exit status $rc after SIGTERM"
grep -q "STOPPING=1" "$T/notify.log" || fail "no STOPPING=1"
echo "ok: SIGTERM -> exit 0"
