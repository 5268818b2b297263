# chaos_lib.sh - the workload and the end checks shared by the fault runs
# (redis_kill.sh, redis_loading.sh, ...); sources sched_lib.sh.
#
#   . "$top_srcdir/tests/chaos/chaos_lib.sh"
#   start_redis; chaos_smtpd; CONF=$T/sukid.conf; chaos_conf "$CONF"
#   start_sched a "$CONF"
#   chaos_warmup 600                  # events k0..k599, then sukid's fds
#                                     # and RSS are noted (chaos_mark)
#   produce_bg 1000 600 100           # the load the fault hits
#   ... the fault ...
#   produce_wait; chaos_end           # every check, then stop sukid
#
# The workload: each event (type sched.test, at an hour ago, a producer id)
# schedules a reminder of the rule sched-test that is due at once, so every
# acknowledged event must end as exactly one message at the server, and
# nothing may be left scheduled, pending or dead-lettered.
# chaos_end checks (each failure says which):
#   - chaos_check.py: every reminder of an acknowledged event exactly once
#     at the server, every acknowledged event applied exactly once (the
#     files $T/maybe and $T/dup_ok relax it where a test says why);
#   - nothing pending in the consumer group, no job left in P:jobs, no dead
#     letter;
#   - sukid's descriptors no more than at chaos_mark, its RSS at most
#     CHAOS_RSS_SLACK KiB (default 8192) above it;
#   - idle CPU: at most CHAOS_IDLE_TICKS clock ticks (default 15, i.e.
#     5 % of one core) over 3 idle seconds.

. "$top_srcdir/tests/integration/sched_lib.sh"
need redis-server redis-cli "$SUKID"
"$PY" -c "import aiosmtpd" 2>/dev/null ||
    fail "cannot run here: python module aiosmtpd not found"

CHAOS_RSS_SLACK=${CHAOS_RSS_SLACK:-8192}

# A sanitizer build keeps freed memory in quarantine (256 MiB by default)
# before it reuses it, so its RSS climbs with all that is freed; with a
# small quarantine RSS follows what sukid holds, which is what is checked.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4"
CHAOS_IDLE_TICKS=${CHAOS_IDLE_TICKS:-15}
: >"$T/acked"
: >"$T/maybe"
: >"$T/dup_ok"
SMTPD_DIRS=""

# chaos_smtpd [smtp_server.py options] - start the test SMTP server on
# SMTP_PORT (picked once, so that a restart comes back on the same port);
# each start records into a directory of its own ($T/smtpd.N, listed in
# SMTPD_DIRS: a restarted server numbers its messages from 1 again).
chaos_smtpd()
{
    SMTP_PORT=${SMTP_PORT:-$(free_port)}
    _n=$(($(echo $SMTPD_DIRS | wc -w) + 1))
    SMTPD=$T/smtpd.$_n
    SMTPD_DIRS="$SMTPD_DIRS $SMTPD"
    "$PY" "$top_srcdir/tests/integration/smtp_server.py" --dir "$SMTPD" \
        --port "$SMTP_PORT" --port-file "$SMTPD/port" "$@" \
        >>"$T/smtp.log" 2>&1 &
    SMTP_PID=$!
    lib_track $SMTP_PID
    wait_for 15 '[ -s "$SMTPD/port" ]' || fail "smtp server did not start"
}

# chaos_smtpd_stop - stop the SMTP server: SIGTERM stops its loop between
# two replies, so the connections die at once but no message is taken
# without its "250" going out (a kill -9 right after the server stored a
# message and before its reply is SMTP's own duplicate window, RFC 1047)
chaos_smtpd_stop()
{
    kill -TERM "$SMTP_PID" 2>/dev/null
    wait "$SMTP_PID" 2>/dev/null
    lib_untrack "$SMTP_PID"
}

# chaos_conf FILE [EXTRA] - sched_conf for the SMTP server of chaos_smtpd,
# with short retries and leases and a 2 s claim_idle, so that whatever a
# fault leaves behind comes back within a CI run. MAX_CONN (4) and
# SMTP_TIMEOUT (5s) set the email transport's max_connections and timeout,
# EMAIL_EXTRA adds other keys to it. With CHAOS_SPOOL=DIR the transport
# is that spool directory instead (and chaos_end reads it).
chaos_conf()
{
    _url="url = \"smtp://127.0.0.1:${SMTP_PORT:-}\"; starttls = \"off\";"
    [ -n "${CHAOS_SPOOL:-}" ] && _url="url = \"spool://$CHAOS_SPOOL\";"
    SCHED_EXTRA=${SCHED_EXTRA:-'lease = "5s";'} \
        EMAIL="$_url
               timeout = \"${SMTP_TIMEOUT:-5s}\"; retry_initial = \"1s\";
               retry_max = \"2s\"; max_attempts = 1000;
               max_connections = ${MAX_CONN:-4}; ${EMAIL_EXTRA:-}" \
        sched_conf "$1" "${2:-}"
    sed -i 's|^intake = { |intake = { claim_idle = "2s"; max_deliveries = 1000; |' "$1"
    "$SUKID" -t -c "$1" >/dev/null || fail "config refused: $("$SUKID" -t -c "$1" 2>&1)"
}

# produce COUNT START RATE [producer.py options] - write events
# k<START>..k<START+COUNT-1> through producer.py (in the foreground: see
# produce_bg). Acknowledged ones go to $T/acked.
produce()
{
    _c=$1 _s=$2 _r=$3
    shift 3
    "$PY" "$top_srcdir/tests/chaos/producer.py" --port "$REDIS_PORT" \
        --stream "$SUKI_PREFIX:events" --acked "$T/acked" --count "$_c" \
        --start "$_s" --rate "$_r" "$@" >>"$T/producer.log" 2>&1
}

# produce_bg COUNT START RATE - produce in the background (PRODUCER pid)
produce_bg()
{
    produce "$@" &
    PRODUCER=$!
    lib_track $PRODUCER
}

produce_wait()
{
    wait "$PRODUCER" || fail "the producer failed: $(tail -3 "$T/producer.log")"
    lib_untrack "$PRODUCER"
}

proc_fds() { ls /proc/"$1"/fd | wc -l; }
proc_rss() { awk '/^VmRSS/ { print $2 }' /proc/"$1"/status; }
proc_ticks() { awk '{ print $14 + $15 }' /proc/"$1"/stat; }

# chaos_warmup N - a burst of N events (k0..k<N-1>) as fast as the
# producer goes, their reminders sent, then chaos_mark: the backlog a fault
# builds up has been through sukid once, so the allocator's high-water
# mark is reached before the mark, and what grows after it is held memory
chaos_warmup()
{
    produce "$1" 0 5000
    chaos_quiet 60
    chaos_mark
}

# chaos_mark - note sukid a's descriptors and RSS (after a warm-up: the
# lanes, the agent's channel and the allocator's arenas exist by then)
chaos_mark()
{
    MARK_FD=$(proc_fds "$SUKID_PID_a")
    MARK_RSS=$(proc_rss "$SUKID_PID_a")
}

# chaos_quiet SECONDS - wait until every acknowledged event is applied and
# nothing is scheduled or pending
chaos_quiet()
{
    _n=$(sort -u "$T/acked" | wc -l)
    wait_for "$1" '[ "$(stat applied)" -ge "$_n" ] && [ "$(zcard)" = 0 ] &&
                   [ "$(group_pending)" = 0 ]' ||
        fail "not quiet after $1 s: applied $(stat applied) of $_n, jobs $(zcard), pending $(group_pending)"
}

# chaos_end [SECONDS] - wait for quiet (default 60 s), run every check,
# print the figures and stop sukid a (exit status 0)
chaos_end()
{
    chaos_quiet "${1:-60}"
    sleep 2 # a second copy of anything would be on its way by now
    sort -u "$T/acked" >"$T/want"
    # shellcheck disable=SC2046
    _from=$(for d in $SMTPD_DIRS; do echo --smtpd "$d"; done)
    [ -n "${CHAOS_SPOOL:-}" ] &&
        _from="--spool $CHAOS_SPOOL --log $T/sukid-a.log"
    out=$("$PY" "$top_srcdir/tests/chaos/chaos_check.py" $_from \
        --want "$T/want" --maybe "$T/maybe" --dup-ok "$T/dup_ok" \
        --port "$REDIS_PORT" --prefix "$SUKI_PREFIX") || fail "$out"
    echo "$out"
    [ "$(group_pending)" = 0 ] || fail "pending: $(group_pending)"
    [ "$(zcard)" = 0 ] || fail "jobs left: $(zcard)"
    _dead=$(rcli XLEN "$SUKI_PREFIX:dead")
    [ "$_dead" = 0 ] ||
        fail "$_dead dead letters: $(rcli XRANGE "$SUKI_PREFIX:dead" - + COUNT 2)"
    _p=$SUKID_PID_a
    _t0=$(proc_ticks "$_p")
    sleep 3
    _t1=$(proc_ticks "$_p")
    END_FD=$(proc_fds "$_p")
    END_RSS=$(proc_rss "$_p")
    echo "sukid: fds $MARK_FD -> $END_FD, RSS $MARK_RSS -> $END_RSS KiB, idle CPU $((_t1 - _t0)) ticks in 3 s"
    [ "$END_FD" -le "$MARK_FD" ] || fail "descriptors grew: $MARK_FD -> $END_FD"
    [ "$END_RSS" -le $((MARK_RSS + CHAOS_RSS_SLACK)) ] ||
        fail "RSS grew: $MARK_RSS -> $END_RSS KiB"
    [ $((_t1 - _t0)) -le "$CHAOS_IDLE_TICKS" ] ||
        fail "idle sukid busy: $((_t1 - _t0)) ticks in 3 s"
    stop_sukid a || fail "sukid exit status $?"
}
