# sched_lib.sh - helpers of the scheduler tests, on top of lib.sh.
#
#   . "$top_srcdir/tests/integration/sched_lib.sh"
#   start_redis; CONF=$T/sukid.conf; write_conf "$CONF"
#   add_jobs --count 10 --due "$(now_ms)"      # straight into Redis
#   start_sched a "$CONF"                      # waits for "scheduler: ready"
#   wait_for 10 '[ "$(spool_count)" = 10 ]'

. "$top_srcdir/tests/integration/lib.sh"

need "$SUKID" "$SUKICTL" "$PY"

# sched_conf FILE [EXTRA] - a sukid.conf for the test Redis with the rule
# "sched-test" (plugin followup from the build tree, template sched-test in
# $T/templates) that the jobs of add_jobs belong to. Settings:
#   MAX_LATENESS   the rule's max_lateness (unset: never stale)
#   SCHED_EXTRA    keys of the scheduler group (lease, batch)
#   EMAIL          the email transport's keys (default: spool in $T/spool)
#   CHAT           keys of a webhook transport "chat" (default: none)
#   HTTP_PORT      serve /metrics there (default: http off)
#   LOG_LEVEL      default info
#   REDIS_EXTRA, INTAKE_EXTRA  keys of the redis and intake groups
sched_conf()
{
    mkdir -p "$T/plugins" "$T/templates" "$T/spool"
    ln -sf "$top_builddir/plugins/.libs/followup.so" "$T/plugins/followup.so"
    cat >"$T/templates/sched-test.en.tmpl" <<'EOT'
subject: Reminder {{rule.name}} for {{client.id}}
--- text
Job of {{client.id}} ({{rule.subject}}) due {{due}}.
EOT
    _listen=""
    [ -n "${HTTP_PORT:-}" ] && _listen="127.0.0.1:$HTTP_PORT"
    _email=${EMAIL:-"url = \"spool://$T/spool\";"}
    _chat=""
    [ -n "${CHAT:-}" ] && _chat="chat = { $CHAT };"
    _ml=""
    [ -n "${MAX_LATENESS:-}" ] && _ml="max_lateness = \"$MAX_LATENESS\";"
    cat >"$1" <<EOF
redis = { url = "redis://127.0.0.1:$REDIS_PORT/0"; prefix = "$SUKI_PREFIX";
          command_timeout = "5s"; connect_timeout = "2s"; ${REDIS_EXTRA:-} };
intake = { stream = "$SUKI_PREFIX:events"; block = "200ms"; ${INTAKE_EXTRA:-} };
scheduler = { ${SCHED_EXTRA:-} };
plugins = { dir = "$T/plugins"; };
templates = { dir = "$T/templates"; };
transports = { email = { $_email
                         from = "Test <test@example.com>"; };
               $_chat };
http = { listen = "$_listen"; };
daemon = { shutdown_timeout = "5s"; log_level = "${LOG_LEVEL:-info}"; };
rules = ( { name = "sched-test"; use = "followup"; on = [ "sched.test" ];
            after = "1h"; notify = [ "ops@example.com" ];
            template = "sched-test";
            $_ml } );
${2:-}
EOF
}

# slow_smtpd DELAY - start smtp_server.py recording into $SMTPD ($T/smtpd)
# and answering the final "." after DELAY seconds; sets SP to its port.
slow_smtpd()
{
    SMTPD=$T/smtpd
    "$PY" "$top_srcdir/tests/integration/smtp_server.py" --dir "$SMTPD" \
        --port-file "$T/smtp.port" --mode slow --delay "$1" >"$T/smtp.log" 2>&1 &
    lib_track $!
    wait_for 10 '[ -s "$T/smtp.port" ]' || fail "smtp server did not start"
    SP=$(cat "$T/smtp.port")
}

# smtpd_count REGEX - lines of slow_smtpd's event log matching REGEX (awk).
smtpd_count() { cat "$SMTPD/events.log" 2>/dev/null | awk "/$1/ { n++ } END { print n + 0 }"; }
# mail_count - transactions (MAIL FROM) slow_smtpd has seen.
mail_count() { smtpd_count '^MAIL '; }

# metric NAME - the value of one sample of sukid's /metrics (HTTP_PORT).
metric()
{
    curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" |
        awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print "none" }'
}

# now_ms - wall clock in epoch milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# add_jobs ARGS... - write jobs into the test Redis (sched_jobs.py options)
# of the rule sched-test (its template, channel and notify list unless
# --template, --channel or --notify give the job its own).
add_jobs()
{
    "$PY" "$top_srcdir/tests/integration/sched_jobs.py" \
        --prefix "$SUKI_PREFIX" --send "$REDIS_PORT" --rule sched-test "$@" ||
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
