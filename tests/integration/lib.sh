# lib.sh - shared helpers for the integration tests (source it; POSIX sh +
# a few bash-isms are fine: tests run with $(SHELL), which is bash here).
#
#   . "$top_srcdir/tests/integration/lib.sh"
#   need redis-server redis-cli        # fail loudly when one is missing
#   start_redis                        # REDIS_PORT, REDIS_PID, REDIS_DIR
#   write_conf "$T/sukid.conf" 'intake = { claim_idle = "1s"; };'
#   start_sukid a "$T/sukid.conf"      # SUKID_PID_a, log in $T/sukid-a.log
#   rcli XADD suki:events '*' event '{"type":"x.y","client":"c"}'
#   wait_for 10 '[ "$(rcli HGET suki:stats applied)" = 1 ]' || fail "not applied"
#   stop_sukid a                       # SIGTERM, waits for exit, checks 0
#
# Every test gets a private directory $T (mktemp -d) removed at exit, and
# every process started through these helpers is killed at exit by its pid
# (never by name). Readiness is always polled (wait_for), never slept.
# Variables a test may set before calling the helpers:
#   SUKI_PREFIX (default "suki") - redis.prefix in write_conf.
#   KEEP_TMP=1 - keep $T for a post-mortem.

set -u

# smtp-sink and friends live in /usr/sbin, which a non-login PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

if [ -z "${top_srcdir:-}" ]; then
    # not under make: find the tree from this file (bash) or the script
    _lib=${BASH_SOURCE:-$0}
    top_srcdir=$(cd "$(dirname "$_lib")/../.." && pwd)
fi
top_builddir=${top_builddir:-$(pwd)}
SUKID=${SUKID:-$top_builddir/sukid}
SUKICTL=${SUKICTL:-$top_builddir/sukictl}
PY=/usr/bin/python3
SUKI_PREFIX=${SUKI_PREFIX:-suki}

T=$(mktemp -d "${TMPDIR:-/tmp}/suki-test.XXXXXX")
LIB_PIDS=""

lib_cleanup()
{
    rc=$?
    for p in $LIB_PIDS; do
        kill -9 "$p" 2>/dev/null
    done
    for p in $LIB_PIDS; do
        wait "$p" 2>/dev/null
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "kept $T" >&2
    else
        rm -rf "$T"
    fi
    exit $rc
}
trap lib_cleanup EXIT
trap 'exit 130' INT TERM

# need BIN... - fail the test, saying why, when a required program is
# missing: a test that cannot run here must never read as a pass or a skip.
need()
{
    for b in "$@"; do
        if ! command -v "$b" >/dev/null 2>&1 && [ ! -x "$b" ]; then
            echo "FAIL: cannot run here: $b not found (scripts/deps.sh installs it)" >&2
            exit 1
        fi
    done
}

# fail MSG - print MSG and the tail of every log in $T, then exit 1.
fail()
{
    echo "FAIL: $*" >&2
    for f in "$T"/*.log; do
        [ -f "$f" ] || continue
        echo "---- $f (last 30 lines)" >&2
        tail -n 30 "$f" >&2
    done
    exit 1
}

# ok MSG - progress line on stdout (the .log of the test).
ok() { echo "ok: $*"; }

# free_port - print a TCP port nobody listens on right now.
free_port()
{
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for SECONDS 'shell condition' - poll every 50 ms; 0 when it became
# true, 1 on timeout.
wait_for()
{
    _deadline=$(($(date +%s%N) / 1000000 + $1 * 1000))
    while ! eval "$2" >/dev/null 2>&1; do
        if [ $(($(date +%s%N) / 1000000)) -ge $_deadline ]; then
            return 1
        fi
        sleep 0.05
    done
    return 0
}

# lib_track PID - kill this pid at exit.
lib_track() { LIB_PIDS="$LIB_PIDS $1"; }
lib_untrack()
{
    _n=""
    for p in $LIB_PIDS; do [ "$p" = "$1" ] || _n="$_n $p"; done
    LIB_PIDS=$_n
}

# rcli ARGS... - redis-cli against the test Redis (raw output).
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# start_redis [EXTRA redis-server ARGS...] - start a private Redis on a free
# port with its files in $T/redis (AOF on, RDB off: pass --appendonly no to
# turn AOF off). Sets REDIS_PORT, REDIS_PID, REDIS_DIR, REDIS_ARGS.
start_redis()
{
    need redis-server redis-cli
    REDIS_DIR=$T/redis
    mkdir -p "$REDIS_DIR"
    REDIS_PORT=${REDIS_PORT:-$(free_port)}
    # One line: eval treats a newline as the end of a command.
    REDIS_ARGS="--port $REDIS_PORT --bind 127.0.0.1 --dir $REDIS_DIR"
    REDIS_ARGS="$REDIS_ARGS --save '' --appendonly yes --appendfsync everysec"
    REDIS_ARGS="$REDIS_ARGS --logfile $T/redis.log $*"
    _redis_spawn
}

_redis_spawn()
{
    # exec: $! must be redis-server itself, not a subshell, so that the
    # cleanup's kill reaches it.
    eval "exec redis-server $REDIS_ARGS" >/dev/null 2>&1 &
    REDIS_PID=$!
    lib_track $REDIS_PID
    wait_for 10 '[ "$(redis-cli -p $REDIS_PORT PING)" = PONG ]' ||
        fail "redis did not start on port $REDIS_PORT"
    # loading the AOF after a restart: wait until it is done
    wait_for 20 'rcli INFO persistence | grep -q "^loading:0"' ||
        fail "redis did not finish loading"
}

# stop_redis [kill] - SHUTDOWN (or kill -9 with "kill") and wait for exit.
stop_redis()
{
    if [ "${1:-}" = kill ]; then
        kill -9 "$REDIS_PID" 2>/dev/null
    else
        rcli SHUTDOWN >/dev/null 2>&1
    fi
    wait "$REDIS_PID" 2>/dev/null
    lib_untrack "$REDIS_PID"
}

# restart_redis - stop (SHUTDOWN, which writes the AOF out) and start again
# with the same port, directory and arguments.
restart_redis()
{
    stop_redis "${1:-}"
    _redis_spawn
}

# write_conf FILE [EXTRA] - a minimal sukid.conf for the test Redis: spool
# transport in $T/spool, empty plugins and templates dirs in $T, http off,
# claim_idle $CLAIM_IDLE (1s), block $BLOCK (200ms); PLUGINS_DIR and
# TEMPLATES_DIR override the (empty) plugin and template directories. EXTRA is appended
# verbatim (libconfig allows a group or key only once: pass whole groups
# that write_conf does not write, or set INTAKE_EXTRA / REDIS_EXTRA for
# other keys inside intake / redis).
write_conf()
{
    mkdir -p "$T/spool" "$T/plugins" "$T/templates"
    cat >"$1" <<EOF
redis = { url = "redis://127.0.0.1:$REDIS_PORT/0"; prefix = "$SUKI_PREFIX";
          command_timeout = "5s"; connect_timeout = "2s"; ${REDIS_EXTRA:-} };
intake = { stream = "$SUKI_PREFIX:events"; claim_idle = "${CLAIM_IDLE:-1s}";
           block = "${BLOCK:-200ms}"; ${INTAKE_EXTRA:-} };
plugins = { dir = "${PLUGINS_DIR:-$T/plugins}"; };
templates = { dir = "${TEMPLATES_DIR:-$T/templates}"; };
transports = { email = { url = "spool://$T/spool";
                         from = "Test <test@example.com>"; }; };
http = { listen = ""; };
daemon = { shutdown_timeout = "5s"; log_level = "${LOG_LEVEL:-info}"; };
${2:-}
EOF
}

# start_sukid NAME CONF - start sukid in the background (log in
# $T/sukid-NAME.log) and wait until its intake link is up. Sets SUKID_PID_NAME
# and SUKID_PID (the last one started).
start_sukid()
{
    _name=$1
    _log=$T/sukid-$_name.log
    "$SUKID" -c "$2" >>"$_log" 2>&1 &
    SUKID_PID=$!
    eval "SUKID_PID_$_name=$SUKID_PID"
    lib_track $SUKID_PID
    # "redis intake: connected" is logged once per connect; count them so
    # that a restart into the same log waits for the new one.
    _want=$(($(grep -c "consumer group ready" "$_log") + 1))
    wait_for 15 "[ \$(grep -c 'consumer group ready' '$_log') -ge $_want ] || ! kill -0 $SUKID_PID" ||
        fail "sukid $_name did not become ready"
    kill -0 "$SUKID_PID" 2>/dev/null || fail "sukid $_name exited at start"
}

# stop_sukid NAME [SIGNAL] - send SIGNAL (default TERM), wait, and return
# the exit status (for KILL: 0).
stop_sukid()
{
    eval "_pid=\$SUKID_PID_$1"
    kill -"${2:-TERM}" "$_pid" 2>/dev/null
    wait "$_pid" 2>/dev/null
    _rc=$?
    lib_untrack "$_pid"
    [ "${2:-TERM}" = KILL ] && return 0
    return $_rc
}

# agent_pid NAME - pid of the newest delivery agent sukid NAME started (from
# its log $T/sukid-NAME.log), or nothing.
agent_pid()
{
    grep -o 'delivery agent started (pid [0-9]*' "$T/sukid-$1.log" |
        tail -1 | grep -o '[0-9]*$'
}

# sukictl ARGS... - the built sukictl with the test config ($CONF).
sukictl() { "$SUKICTL" -c "$CONF" "$@"; }

# ---- events -------------------------------------------------------------

# gen_events N [--start S] [--ids] [--cmd lpush --key LIST] ... - push N
# generated events (client c<i>, one each) through redis-cli --pipe. See
# sukitest.py for the options.
gen_events()
{
    "$PY" "$top_srcdir/tests/integration/sukitest.py" gen "$@" \
        >"$T/gen.resp" || fail "gen_events $*: generator failed"
    redis-cli -p "$REDIS_PORT" --pipe <"$T/gen.resp" >"$T/gen.out" 2>&1 ||
        fail "gen_events $*: redis-cli --pipe failed: $(cat "$T/gen.out")"
    rm -f "$T/gen.resp"
}

# pyredis 'PYTHON' - run PYTHON with r = sukitest.Redis (raw bytes client).
pyredis()
{
    "$PY" -c "import sys; sys.path.insert(0, '$top_srcdir/tests/integration')
from sukitest import Redis
r = Redis($REDIS_PORT)
$1"
}

# stat NAME - a shared counter P:stats events_NAME (0 when unset).
stat()
{
    _v=$(rcli HGET "$SUKI_PREFIX:stats" "events_$1")
    echo "${_v:-0}"
}

# clients_not_once N [START] - how many of the clients c<START>..c<START+N-1>
# do not have exactly one applied event (P:client-events <id> != 1).
clients_not_once()
{
    rcli EVAL "local bad = 0
        for i = tonumber(ARGV[2]), tonumber(ARGV[2]) + tonumber(ARGV[1]) - 1 do
          if redis.call('HGET', ARGV[3] .. ':client-events', 'c' .. i) ~= '1'
          then bad = bad + 1 end
        end
        return bad" 0 "$1" "${2:-0}" "$SUKI_PREFIX"
}

# group_pending - entries pending in the consumer group "sukid".
group_pending()
{
    rcli XINFO GROUPS "$SUKI_PREFIX:events" |
        awk 'p { print; exit } $0 == "pending" { p = 1 }'
}
