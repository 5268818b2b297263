#!/bin/sh
# run-smtp.sh - SMTP delivery figures: suki_dispatch with max_connections 1
# and 8, a bare libcurl multi loop (the ceiling), and Postfix's smtp-source,
# all against one Postfix smtp-sink on loopback with 4 KiB messages.
#
#   bench/run-smtp.sh [BUILDDIR] [MESSAGES]
#
# Build without sanitizers for meaningful numbers (configure without
# --enable-sanitizers; `make bench/bench_smtp`). Prints one line per run:
# msgs/s, CPU seconds and CPU microseconds per message (client process
# only), and the client's peak RSS.
set -e
B=${1:-.}
N=${2:-20000}
BENCH="$B/bench/bench_smtp"
[ -x "$BENCH" ] || { echo "no $BENCH (make bench/bench_smtp)"; exit 1; }
command -v smtp-sink >/dev/null || { echo "smtp-sink not found (postfix)"; exit 1; }
PY=/usr/bin/python3

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
USER_OPT=
[ "$(id -u)" = 0 ] && USER_OPT="-u nobody"
smtp-sink $USER_OPT "127.0.0.1:$PORT" 1000 &
SINK=$!
trap 'kill $SINK 2>/dev/null; wait $SINK 2>/dev/null' EXIT
until $PY -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2).close()" 2>/dev/null; do
    sleep 0.1
done

echo "# $N messages of 4096 bytes to smtp-sink 127.0.0.1:$PORT; $(nproc) CPUs"
for c in 1 8; do
    "$BENCH" --url "smtp://127.0.0.1:$PORT" --mode dispatch --conns $c --count "$N" --size 4096
    "$BENCH" --url "smtp://127.0.0.1:$PORT" --mode bare --conns $c --count "$N" --size 4096
done
# Postfix's own client, same sink, measured the same way: as given (a new
# connection per message) and with -d (keep the connection: like us)
for s in 1 8; do
    for d in "" -d; do
        $PY - "$N" "$s" "$PORT" $d <<'PYEOF'
import resource, subprocess, sys, time
n, s, port = sys.argv[1], sys.argv[2], sys.argv[3]
extra = sys.argv[4:]
t = time.monotonic()
subprocess.run(["smtp-source", "-s", s, "-l", "4096", "-m", n] + extra +
               ["127.0.0.1:" + port], check=True)
wall = time.monotonic() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = ru.ru_utime + ru.ru_stime
name = "smtp-src" + ("-d" if extra else "")
print("%-8s conns=%-2s msgs=%s wall_s=%.2f msgs_per_s=%.0f cpu_s=%.2f "
      "cpu_us_per_msg=%.0f maxrss_kib=%d failed=-"
      % (name, s, n, wall, int(n) / wall, cpu, cpu * 1e6 / int(n),
         ru.ru_maxrss))
PYEOF
    done
done
