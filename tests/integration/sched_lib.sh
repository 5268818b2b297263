# sched_lib.sh - helpers of the scheduler tests, on top of lib.sh.
#
#   . "$top_srcdir/tests/integration/sched_lib.sh"
#   start_redis; CONF=$T/sukid.conf; write_conf "$CONF"
#   add_jobs --count 10 --due "$(now_ms)"      # straight into Redis
#   start_sched a "$CONF"                      # waits for "scheduler: ready"
#   wait_for 10 '[ "$(spool_count)" = 10 ]'

. "$top_srcdir/tests/integration/lib.sh"

need "$SUKID" "$SUKICTL" "$PY"

# lib.sh starts Redis as `eval "redis-server ..." &`, whose $! is the
# subshell: killing it leaves redis-server running. exec makes $! Redis.
_redis_spawn()
{
    eval "exec redis-server $REDIS_ARGS" &
    REDIS_PID=$!
    lib_track $REDIS_PID
    wait_for 10 '[ "$(redis-cli -p $REDIS_PORT PING)" = PONG ]' ||
        fail "redis did not start on port $REDIS_PORT"
    wait_for 20 'rcli INFO persistence | grep -q "^loading:0"' ||
        fail "redis did not finish loading"
}

# sched_conf FILE [EXTRA] - write_conf plus the rule "sched-test" (plugin
# followup from the build tree, template sched-test in $T/templates) that
# the jobs of add_jobs belong to. MAX_LATENESS
# (unset: never stale) and SCHED_EXTRA (more keys of the scheduler group) are honoured.
sched_conf()
{
    mkdir -p "$T/plugins" "$T/templates"
    ln -sf "$top_builddir/plugins/.libs/followup.so" "$T/plugins/followup.so"
    cat >"$T/templates/sched-test.en.tmpl" <<'EOT'
subject: Reminder {{rule.name}} for {{client.id}}
--- text
Job of {{client.id}} ({{rule.subject}}) due {{due}}.
EOT
    write_conf "$1" "scheduler = { ${SCHED_EXTRA:-} };
rules = ( { name = \"sched-test\"; use = \"followup\"; on = [ \"sched.test\" ];
            after = \"1h\"; notify = [ \"ops@example.com\" ];
            template = \"sched-test\";
            ${MAX_LATENESS:+max_lateness = \"$MAX_LATENESS\";} } );
${2:-}"
}

# now_ms - wall clock in epoch milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# add_jobs ARGS... - write jobs into the test Redis (sched_jobs.py options).
add_jobs()
{
    "$PY" "$top_srcdir/tests/integration/sched_jobs.py" \
        --prefix "$SUKI_PREFIX" --send "$REDIS_PORT" --rule sched-test \
        --template sched-test "$@" ||
        fail "could not write jobs"
}

# start_sched NAME CONF - start sukid and wait for its first claim.
start_sched()
{
    _name=$1
    _log=$T/sukid-$_name.log
    _want=$(($(grep -c "scheduler: ready" "$_log" 2>/dev/null || true) + 1))
    "$SUKID" -c "$2" >>"$_log" 2>&1 &
    SUKID_PID=$!
    eval "SUKID_PID_$_name=$SUKID_PID"
    lib_track $SUKID_PID
    wait_for 15 "[ \$(grep -c 'scheduler: ready' '$_log') -ge $_want ] || ! kill -0 $SUKID_PID" ||
        fail "sukid $_name did not become ready"
    kill -0 "$SUKID_PID" 2>/dev/null || fail "sukid $_name exited at start"
}

# spool_count - number of messages in the spool directory.
spool_count() { find "$T/spool" -maxdepth 1 -name '*.eml' | wc -l; }

# zcard - jobs scheduled.
zcard() { rcli ZCARD "$SUKI_PREFIX:jobs"; }
