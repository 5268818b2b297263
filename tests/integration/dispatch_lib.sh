# dispatch_lib.sh - shared helpers for the dispatch integration tests.
# Sourced by dispatch_*.sh; needs top_srcdir and top_builddir (set by make
# check, or defaulted from the script's location when run by hand).

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
PY=/usr/bin/python3
CLIENT="$top_builddir/tests/integration/dispatch_client"
SMTP_SERVER="$top_srcdir/tests/integration/smtp_server.py"
HTTP_SERVER="$top_srcdir/tests/integration/http_server.py"

# A test that cannot run here fails loudly: a skip would read as a pass.
need() {
    for b in "$@"; do
        if ! command -v "$b" >/dev/null 2>&1 && [ ! -x "$b" ]; then
            echo "FAIL: cannot run here: $b not found (scripts/deps.sh installs it)"
            exit 1
        fi
    done
}

need_py_module() {
    if ! "$PY" -c "import $1" 2>/dev/null; then
        echo "FAIL: cannot run here: python module $1 not found (scripts/deps.sh installs it)"
        exit 1
    fi
}

need "$PY"
if [ ! -x "$CLIENT" ]; then
    echo "FAIL: $CLIENT not built"
    exit 1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/suki-dispatch.XXXXXX")

# Every client run goes through this wrapper: an exit status other than 0
# (or 2, a usage/setup error some checks provoke) means a crash or a
# sanitizer report, which fails the test in finish().
REAL_CLIENT=$CLIENT
CLIENT="$T/client"
cat >"$CLIENT" <<WRAP
#!/bin/sh
"$REAL_CLIENT" "\$@"
rc=\$?
if [ \$rc -ne 0 ] && [ \$rc -ne 2 ]; then
    echo "dispatch_client \$* exited \$rc" >>"$T/client-failures"
fi
exit \$rc
WRAP
chmod +x "$CLIENT"
PIDS=""
cleanup() {
    for p in $PIDS; do
        kill "$p" 2>/dev/null
    done
    for p in $PIDS; do
        wait "$p" 2>/dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

FAILS=0
fail() {
    echo "FAIL: $*"
    FAILS=$((FAILS + 1))
}
ok() {
    echo "ok: $*"
}
finish() {
    if [ -s "$T/client-failures" ]; then
        fail "client runs failed (see their output for sanitizer reports):"
        sed 's/^/    /' "$T/client-failures"
    fi
    if [ "$FAILS" -ne 0 ]; then
        echo "$FAILS check(s) failed"
        exit 1
    fi
    exit 0
}

# free_port: a port nothing listens on right now
free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_file FILE [seconds]: wait until FILE exists
wait_file() {
    _n=0
    while [ ! -s "$1" ]; do
        _n=$((_n + 1))
        if [ "$_n" -gt $((${2:-15} * 10)) ]; then
            echo "FAIL: timed out waiting for $1"
            exit 1
        fi
        sleep 0.1
    done
}

# wait_listen PORT: wait until something accepts on 127.0.0.1:PORT
wait_listen() {
    _n=0
    while ! "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2).close()" 2>/dev/null; do
        _n=$((_n + 1))
        if [ "$_n" -gt 150 ]; then
            echo "FAIL: nothing listens on port $1"
            exit 1
        fi
        sleep 0.1
    done
}

# start_smtp DIR [smtp_server.py options...]: sets SMTP_PORT, SMTP_PID
start_smtp() {
    _d=$1
    shift
    mkdir -p "$_d"
    rm -f "$_d/port"
    "$PY" "$SMTP_SERVER" --dir "$_d" --port-file "$_d/port" "$@" \
        >"$_d/server.log" 2>&1 &
    SMTP_PID=$!
    PIDS="$PIDS $SMTP_PID"
    wait_file "$_d/port"
    SMTP_PORT=$(cat "$_d/port")
}

# spawn_smtp DIR [options...]: start a server without waiting (start many
# at once: each python start-up takes a while); port_of DIR waits for it.
spawn_smtp() {
    _d=$1
    shift
    mkdir -p "$_d"
    rm -f "$_d/port"
    "$PY" "$SMTP_SERVER" --dir "$_d" --port-file "$_d/port" "$@" \
        >"$_d/server.log" 2>&1 &
    PIDS="$PIDS $!"
}

spawn_http() {
    _d=$1
    shift
    mkdir -p "$_d"
    rm -f "$_d/port"
    "$PY" "$HTTP_SERVER" --dir "$_d" --port-file "$_d/port" "$@" \
        >"$_d/server.log" 2>&1 &
    PIDS="$PIDS $!"
}

# port_of DIR: the port of a server started with spawn_smtp/spawn_http
port_of() {
    wait_file "$1/port"
    cat "$1/port"
}

# start_http DIR [http_server.py options...]: sets HTTP_PORT, HTTP_PID
start_http() {
    _d=$1
    shift
    mkdir -p "$_d"
    rm -f "$_d/port"
    "$PY" "$HTTP_SERVER" --dir "$_d" --port-file "$_d/port" "$@" \
        >"$_d/server.log" 2>&1 &
    HTTP_PID=$!
    PIDS="$PIDS $HTTP_PID"
    wait_file "$_d/port"
    HTTP_PORT=$(cat "$_d/port")
}

stop_pid() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# count LINES_MATCHING_REGEX FILE
count() {
    grep -c -E -- "$1" "$2" 2>/dev/null || true
}

# expect_count WHAT N REGEX FILE
expect_count() {
    _c=$(count "$3" "$4")
    if [ "$_c" = "$2" ]; then
        ok "$1 ($_c)"
    else
        fail "$1: expected $2 lines matching '$3' in $4, got $_c"
        sed 's/^/    /' "$4" | head -20
    fi
}

# expect_grep WHAT REGEX FILE
expect_grep() {
    if grep -q -E -- "$2" "$3"; then
        ok "$1"
    else
        fail "$1: no line matching '$2' in $3"
        sed 's/^/    /' "$3" | head -20
    fi
}

# expect_no_grep WHAT REGEX FILE
expect_no_grep() {
    if grep -q -E -- "$2" "$3" 2>/dev/null; then
        fail "$1: unexpected line matching '$2' in $3"
        grep -E -- "$2" "$3" | sed 's/^/    /' | head -5
    else
        ok "$1"
    fi
}

nfiles() {
    # shellcheck disable=SC2012
    ls "$1" 2>/dev/null | grep -c -E -- "$2" || true
}
