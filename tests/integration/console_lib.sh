# console_lib.sh - a sukid with the operator console on, for console_api.sh
# and console_browser.sh (on top of sched_lib.sh: the rule sched-test).
#
#   . "$top_srcdir/tests/integration/console_lib.sh"
#   console_start          # redis, an SMTP server, sukid; CP, CURL_BASE
#   console_user admin pw  # sukictl console passwd
#
# The email transport goes to smtp_server.py on $SP (started here, accept
# mode unless SMTP_MODE / SMTP_ARGS say otherwise), recording into $SMTPD.
. "$top_srcdir/tests/integration/sched_lib.sh"

need curl redis-server redis-cli

# smtp_start [ARGS...] - smtp_server.py on $SP (a new one: free_port) into
# $SMTPD; sets SMTP_PID.
smtp_start()
{
    SMTPD=${SMTPD:-$T/smtpd}
    rm -f "$T/smtp.port"
    "$PY" "$top_srcdir/tests/integration/smtp_server.py" --dir "$SMTPD" \
        --port "$SP" --port-file "$T/smtp.port" "$@" >>"$T/smtp.log" 2>&1 &
    SMTP_PID=$!
    lib_track $SMTP_PID
    wait_for 10 '[ -s "$T/smtp.port" ]' || fail "smtp server did not start"
}

smtp_stop()
{
    kill "$SMTP_PID" 2>/dev/null
    wait "$SMTP_PID" 2>/dev/null
    lib_untrack "$SMTP_PID"
}

console_start()
{
    mkdir -p "$T/templates"
    # a campaign template (the console tests create campaigns that wait)
    cat >"$T/templates/promo.en.tmpl" <<'EOT'
subject: An offer for {{client.name}}
--- text
Hello {{client.name}}. Unsubscribe: {{unsubscribe_url}}
EOT
    start_redis
    SP=$(free_port)
    smtp_start ${SMTP_ARGS:-}
    CP=$(free_port)
    CONF=$T/sukid.conf
    EMAIL="url = \"smtp://127.0.0.1:$SP\"; starttls = \"off\"; retry_initial = \"1s\";" sched_conf "$CONF" \
        "console = { listen = \"127.0.0.1:$CP\"; users_file = \"$T/console.users\"; ${CONSOLE_EXTRA:-} };"
    : >"$T/console.users"
    chmod 600 "$T/console.users"
    start_sched a "$CONF"
    CURL_BASE=http://127.0.0.1:$CP
    wait_for 10 "curl -fs -o /dev/null $CURL_BASE/" ||
        fail "the console does not answer on $CURL_BASE"
}

# console_user NAME PASSWORD
console_user()
{
    printf '%s\n' "$2" | sukictl console passwd "$1" >/dev/null ||
        fail "sukictl console passwd $1 failed"
}
