# campaign_lib.sh - helpers for the campaign tests (source after lib.sh).
#
#   start_redis
#   start_aiosmtpd DIR [smtp_server.py options]   # SMTP_PORT, SMTP_PID
#   start_sink DIR                                # smtp-sink; SMTP_PORT
#   camp_conf FILE [EXTRA_CAMPAIGNS] [TRANSPORT_EXTRA]
#   start_daemon NAME CONF                        # waits for /healthz 200
#   populate N [opts]                             # N clients c0..c(N-1)
#   wait_state NAME STATE SECONDS
#   cfield NAME FIELD                             # from status --json
#
# Every server is started through lib_track, so lib.sh kills it at exit.

need redis-server redis-cli curl "$SUKID" "$SUKICTL"

# a template that shows what was personalised
mkdir -p "$T/templates" "$T/plugins"
cat >"$T/templates/promo.en.tmpl" <<'EOF'
subject: An offer for {{client.name}}
--- text
Hello {{client.name}} ({{client.id}}),
this is campaign {{rule.name}}.
Unsubscribe: {{unsubscribe_url}}
--- html
<p>Hello {{client.name}}, <a href="{{unsubscribe_url}}">unsubscribe</a></p>
EOF
cat >"$T/templates/promo.tl.tmpl" <<'EOF'
subject: Alok para kay {{client.name}}
--- text
Kumusta {{client.name}} ({{client.id}})!
Unsubscribe: {{unsubscribe_url}}
EOF

# start_aiosmtpd DIR [options] - the scriptable aiosmtpd server (one .eml
# per message, events.log); sets SMTP_PORT and SMTP_PID.
start_aiosmtpd()
{
    _d=$1
    shift
    mkdir -p "$_d"
    rm -f "$_d/port"
    "$PY" "$top_srcdir/tests/integration/smtp_server.py" --dir "$_d" \
        --port-file "$_d/port" "$@" >"$_d/server.log" 2>&1 &
    SMTP_PID=$!
    lib_track $SMTP_PID
    wait_for 15 "[ -s '$_d/port' ]" || fail "smtp server did not start"
    SMTP_PORT=$(cat "$_d/port")
}

stop_smtp()
{
    kill "$SMTP_PID" 2>/dev/null
    wait "$SMTP_PID" 2>/dev/null
    lib_untrack "$SMTP_PID"
}

# port_open PORT - something listens on 127.0.0.1:PORT
port_open()
{
    "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null
}

# start_sink DIR - Postfix smtp-sink, every transaction appended to
# DIR/dump (X-Rcpt-Args lines count the recipients); sets SMTP_PORT.
start_sink()
{
    need smtp-sink
    mkdir -p "$1"
    # smtp-sink drops to nobody (as root it must): let it reach its dir
    chmod 711 "$T"
    chmod 777 "$1"
    SMTP_PORT=$(free_port)
    _u=
    [ "$(id -u)" = 0 ] && _u="-u nobody"
    # shellcheck disable=SC2086
    smtp-sink $_u -D "$1/dump" "127.0.0.1:$SMTP_PORT" 256 \
        >"$1/sink.log" 2>&1 &
    SMTP_PID=$!
    lib_track $SMTP_PID
    wait_for 10 "port_open $SMTP_PORT" ||
        fail "smtp-sink did not start"
    # it must also be able to write its dump: send one message by hand
    "$PY" -c 'import smtplib,sys; s=smtplib.SMTP("127.0.0.1", int(sys.argv[1])); s.sendmail("probe@test", ["probe@test"], "Subject: probe\r\n\r\nprobe\r\n"); s.quit()' "$SMTP_PORT" ||
        fail "smtp-sink does not take mail"
    wait_for 5 "grep -q '^X-Rcpt-Args: <probe@test>' '$1/dump'" ||
        fail "smtp-sink does not write $1/dump"
    kill -0 "$SMTP_PID" || fail "smtp-sink died: $(cat "$1/sink.log")"
}

# sink_rcpts DIR - recipients the sink received, one per line
sink_rcpts()
{
    sed -n 's/^X-Rcpt-Args: <\([^>]*\)>.*/\1/p' "$1/dump" 2>/dev/null |
        grep -v '^probe@test$'
}

# camp_conf FILE [CAMPAIGNS] [TRANSPORT] - sukid.conf for the test Redis,
# the SMTP server on SMTP_PORT and HTTP on HTTP_PORT (picked here).
camp_conf()
{
    HTTP_PORT=${HTTP_PORT:-$(free_port)}
    _tx='rate = "5000/s"; max_connections = 8;'
    [ -n "${3:-}" ] && _tx=$3
    cat >"$1" <<EOF
redis = { url = "redis://127.0.0.1:$REDIS_PORT/0"; prefix = "$SUKI_PREFIX";
          command_timeout = "5s"; connect_timeout = "2s"; };
intake = { stream = "$SUKI_PREFIX:events"; block = "200ms"; };
plugins = { dir = "$T/plugins"; };
templates = { dir = "$T/templates"; };
transports = { email = { url = "smtp://127.0.0.1:$SMTP_PORT";
                         starttls = "off"; timeout = "10s";
                         from = "Tindahan <shop@tindahan.ph>";
                         $_tx }; };
campaigns = { ${2:-} };
http = { listen = "127.0.0.1:$HTTP_PORT";
         public_url = "http://127.0.0.1:$HTTP_PORT"; };
daemon = { shutdown_timeout = "5s"; log_level = "${LOG_LEVEL:-info}"; };
EOF
}

# start_daemon NAME CONF - sukid, ready when /healthz says 200.
start_daemon()
{
    "$SUKID" -c "$2" >>"$T/sukid-$1.log" 2>&1 &
    SUKID_PID=$!
    eval "SUKID_PID_$1=$SUKID_PID"
    lib_track $SUKID_PID
    wait_for 15 "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$HTTP_PORT/healthz)\" = 200 ] || ! kill -0 $SUKID_PID" ||
        fail "sukid $1 did not become healthy"
    kill -0 "$SUKID_PID" 2>/dev/null || fail "sukid $1 exited at start"
}

# populate N [SUPPRESSED NOADDR NOCONSENT] - clients c0.. with name, email,
# segment retail and consent=true; the last SUPPRESSED+NOADDR+NOCONSENT of
# them are suppressed (upper-case address), without an address, or
# consent=false (skipped under consent = "opt-in" only).
populate()
{
    "$PY" - "$SUKI_PREFIX" "$@" <<'EOF' | redis-cli -p "$REDIS_PORT" --pipe >"$T/pipe.out" ||
import sys
P, n = sys.argv[1], int(sys.argv[2])
sup, noa, noc = (int(x) for x in (sys.argv[3:6] + ["0", "0", "0"])[:3])
out = sys.stdout.buffer
def cmd(*a):
    out.write(b"*%d\r\n" % len(a))
    for x in a:
        x = x.encode()
        out.write(b"$%d\r\n%s\r\n" % (len(x), x))
first_skip = n - sup - noa - noc
for i in range(n):
    c = "c%d" % i
    f = ["name", "Kliyente %d" % i, "segment", "retail"]
    if i < first_skip or i >= first_skip + sup + noa:
        f += ["email", "c%d@example.ph" % i]
    if first_skip <= i < first_skip + sup:
        f += ["email", "C%d@Example.PH" % i]
        cmd("SADD", P + ":suppressed", "c%d@example.ph" % i)
    f += ["consent", "false" if i >= first_skip + sup + noa else "true"]
    cmd("HSET", P + ":client:" + c, *f)
EOF
        fail "populate failed"
    grep -q "errors: 0" "$T/pipe.out" || fail "populate: $(cat "$T/pipe.out")"
}

# cfield NAME FIELD - one field of `sukictl --json campaign status NAME`
cfield()
{
    "$SUKICTL" -c "$CONF" --json campaign status "$1" |
        "$PY" -c 'import json,sys; v=json.load(sys.stdin); f=sys.argv[1].split(".")
for k in f: v = v[k]
print(v if not isinstance(v, bool) else str(v).lower())' "$2"
}

# wait_state NAME STATE SECONDS
wait_state()
{
    wait_for "$3" "[ \"\$(cfield $1 state)\" = $2 ]" ||
        fail "campaign $1 is $(cfield "$1" state), not $2, after $3 s"
}
