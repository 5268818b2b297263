# dovecot_lib.sh - a real Dovecot for the inbound tests (source after
# lib.sh). Its own configuration in $T/dc: passwd-file (user suki,
# password secret), maildir, IMAPS with a self-signed certificate
# ($T/dc/cert.pem, for 127.0.0.1) and IMAP with STARTTLS, both on free
# loopback ports. Run in the foreground (dovecot -F) under lib_track, so
# it is killed by its pid at exit; a system Dovecot is never touched.
#
#   start_dovecot        # IMAPS_PORT, IMAP_PORT, DC, DOVECOT_PID
#   imap_fill KIND ARGS  # tests/integration/imap_fill.py against it

start_dovecot()
{
    need dovecot openssl
    DC=$T/dc
    mkdir -p "$DC/run" "$DC/mail" "$DC/log"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$DC/key.pem" \
        -out "$DC/cert.pem" -days 2 -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        >"$DC/openssl.log" 2>&1 || fail "cannot make a certificate"
    IMAPS_PORT=$(free_port)
    IMAP_PORT=$(free_port)
    # Dovecot refuses uid 0 for mail: the mailbox belongs to nobody, who
    # must reach it through $T
    _uid=$(id -u nobody) _gid=$(id -g nobody)
    chmod 711 "$T"
    chown "$_uid:$_gid" "$DC/mail"
    echo "suki:{PLAIN}secret:$_uid:$_gid::$DC/mail/suki" >"$DC/passwd"
    cat >"$DC/dovecot.conf" <<EOC
base_dir = $DC/run
state_dir = $DC/run/state
instance_name = suki-test-$$
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <$DC/cert.pem
ssl_key = <$DC/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain
first_valid_uid = 1
default_login_user = dovenull
default_internal_user = nobody
default_internal_group = $(id -gn nobody)
log_path = $DC/log/dovecot.log
mail_location = maildir:$DC/mail/%u
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DC/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $DC/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
}
EOC
    mkdir -p "$DC/run/state"
    dovecot -F -c "$DC/dovecot.conf" >"$DC/log/fg.log" 2>&1 &
    DOVECOT_PID=$!
    lib_track $DOVECOT_PID
    wait_for 15 "port_open $IMAPS_PORT && port_open $IMAP_PORT" ||
        fail "dovecot did not start: $(cat "$DC/log/fg.log" "$DC/log/dovecot.log" 2>/dev/null)"
    # a login works (the test's own client, not sukid)
    imap_fill other || fail "cannot APPEND to dovecot: $(tail -5 "$DC/log/dovecot.log")"
}

port_open()
{
    "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null
}

imap_fill()
{
    "$PY" "$top_srcdir/tests/integration/imap_fill.py" "$IMAPS_PORT" "$DC/cert.pem" "$@"
}
