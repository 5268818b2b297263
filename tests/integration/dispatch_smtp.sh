#!/bin/sh
# dispatch_smtp.sh - suki_dispatch over SMTP against real servers on
# loopback: aiosmtpd (tests/integration/smtp_server.py) in its modes, with
# STARTTLS and a throw-away CA made with the openssl CLI, and Postfix's
# smtp-sink for connection reuse.
. "$(dirname "$0")/dispatch_lib.sh"

need openssl smtp-sink
need_py_module aiosmtpd

SMTP="--starttls off --from sender@suki.test"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$T/key.pem" \
    -out "$T/cert.pem" >"$T/openssl.log" 2>&1 || {
    fail "openssl could not make a certificate"
    cat "$T/openssl.log"
}
# start the servers together: python start-up dominates the run time
spawn_smtp "$T/acc"
spawn_smtp "$T/seq"
spawn_smtp "$T/mc1"
spawn_smtp "$T/mc8"
spawn_smtp "$T/f451" --mode fail451 --fail-count 1
spawn_smtp "$T/f451m" --mode fail451 --fail-count 1 --fail-at mail
spawn_smtp "$T/r550" --mode reject550
spawn_smtp "$T/r550one" --mode reject550 --reject-rcpt bad@rcpt.test
spawn_smtp "$T/inj"
spawn_smtp "$T/tls" --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" --require-starttls
spawn_smtp "$T/slow" --mode slow --delay 10
spawn_smtp "$T/smtps" --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" --implicit-tls

# ---- accept: everything arrives, once, intact ----------------------------
SMTP_PORT=$(port_of "$T/acc")
"$CLIENT" --url "smtp://127.0.0.1:$SMTP_PORT" $SMTP --rcpt a@rcpt.test \
    --count 20 --max-conn 4 --size 4096 >"$T/acc.out" 2>"$T/acc.err"
expect_count "accept: 20 results SENT" 20 '^RESULT .* status=sent code=250 ' "$T/acc.out"
expect_grep "accept: summary" '^SUMMARY sent=20 tempfail=0 permfail=0' "$T/acc.out"
expect_count "accept: server stored 20 messages" 20 '^DATA [0-9]+ 250' "$T/acc/events.log"
n=$(nfiles "$T/acc" '^msg-[0-9]+\.eml$')
[ "$n" = 20 ] && ok "accept: 20 .eml files" || fail "accept: $n .eml files"
# every message-id arrived exactly once
ids=$(cat "$T"/acc/msg-*.eml | tr -d '\r' | grep '^Message-ID:' | sort | uniq | wc -l)
[ "$ids" = 20 ] && ok "accept: 20 distinct Message-IDs" || fail "accept: $ids distinct ids"
# body intact, including a line starting with a dot (dot-stuffing)
if tr -d '\r' <"$T/acc/msg-1.eml" | grep -q '^\.leading dot line$' &&
    tr -d '\r' <"$T/acc/msg-1.eml" | tail -1 | grep -q '^END <m-'; then
    ok "accept: message intact (leading dot kept, ends with END line)"
else
    fail "accept: message content damaged"
fi
sess=$(count '^CONNECT' "$T/acc/events.log")
[ "$sess" -le 4 ] && ok "accept: $sess sessions <= max_connections 4" ||
    fail "accept: $sess sessions > max_connections 4"

# sequential messages reuse one connection
SMTP_PORT=$(port_of "$T/seq")
"$CLIENT" --url "smtp://127.0.0.1:$SMTP_PORT" $SMTP --rcpt a@rcpt.test \
    --count 5 --max-conn 1 --sequential >"$T/seq.out" 2>&1
expect_count "reuse: 5 SENT" 5 '^RESULT .*status=sent' "$T/seq.out"
expect_count "reuse: one connection for 5 messages" 1 '^CONNECT' "$T/seq/events.log"

# ---- max_connections 1 and 8 both deliver everything --------------------
for mc in 1 8; do
    SMTP_PORT=$(port_of "$T/mc$mc")
    "$CLIENT" --url "smtp://127.0.0.1:$SMTP_PORT" $SMTP --rcpt a@rcpt.test \
        --count 60 --max-conn $mc --size 4096 >"$T/mc$mc.out" 2>&1
    expect_grep "max_conn $mc: all 60 sent" '^SUMMARY sent=60 tempfail=0 permfail=0' "$T/mc$mc.out"
    expect_count "max_conn $mc: server got 60" 60 '^DATA [0-9]+ 250' "$T/mc$mc/events.log"
    sess=$(count '^CONNECT' "$T/mc$mc/events.log")
    [ "$sess" -ge 1 ] && [ "$sess" -le $mc ] &&
        ok "max_conn $mc: $sess session(s)" || fail "max_conn $mc: $sess sessions"
done

# ---- 451 then 250 ---------------------------------------------------------
SMTP_PORT=$(port_of "$T/f451")
"$CLIENT" --url "smtp://127.0.0.1:$SMTP_PORT" $SMTP --rcpt a@rcpt.test \
    --resend 1 >"$T/f451.out" 2>&1
expect_grep "451: first attempt TEMPFAIL with the reply" \
    '^RESULT i=0 .*status=tempfail code=451 .*attempt=0 .*reply=451 4\.3\.0 Try again later' "$T/f451.out"
expect_grep "451: resend SENT" '^RESULT i=0 .*status=sent code=250 .*attempt=1' "$T/f451.out"
expect_count "451: delivered once" 1 '^DATA [0-9]+ 250' "$T/f451/events.log"

SMTP_PORT=$(port_of "$T/f451m")
"$CLIENT" --url "smtp://127.0.0.1:$SMTP_PORT" $SMTP --rcpt a@rcpt.test \
    >"$T/f451m.out" 2>&1
expect_grep "451 at MAIL: TEMPFAIL" '^RESULT .*status=tempfail code=451 ' "$T/f451m.out"

# ---- 550 ------------------------------------------------------------------
SMTP_PORT=$(port_of "$T/r550")
"$CLIENT" --url "smtp://127.0.0.1:$SMTP_PORT" $SMTP --rcpt nobody@rcpt.test \
    >"$T/r550.out" 2>&1
expect_grep "550: PERMFAIL with the server's reply" \
    '^RESULT .*status=permfail code=550 .*reply=550 5\.1\.1 <nobody@rcpt\.test>: Recipient address rejected' "$T/r550.out"
expect_count "550: nothing stored" 0 '^DATA' "$T/r550/events.log"

# one of two recipients refused: the other gets it exactly once
SMTP_PORT=$(port_of "$T/r550one")
"$CLIENT" --url "smtp://127.0.0.1:$SMTP_PORT" $SMTP --rcpt good@rcpt.test \
    --rcpt bad@rcpt.test >"$T/r550one.out" 2>&1
expect_grep "one bad rcpt: message SENT, 1 recipient failed" \
    '^RESULT .*status=sent code=250 .*rcpt_failed=1 ' "$T/r550one.out"
expect_grep "one bad rcpt: good recipient sent" '^RCPT i=0 addr=good@rcpt\.test status=sent code=250' "$T/r550one.out"
expect_grep "one bad rcpt: bad recipient PERMFAIL 550" \
    '^RCPT i=0 addr=bad@rcpt\.test status=permfail code=550 reply=550 5\.1\.1' "$T/r550one.out"
expect_count "one bad rcpt: delivered once" 1 '^DATA [0-9]+ 250' "$T/r550one/events.log"
if grep -q '"rcpt_tos": \["good@rcpt.test"\]' "$T/r550one/msg-1.json"; then
    ok "one bad rcpt: envelope holds only the good recipient"
else
    fail "one bad rcpt: envelope $(cat "$T/r550one/msg-1.json")"
fi

# ---- address refused before any network -----------------------------------
SMTP_PORT=$(port_of "$T/inj")
"$CLIENT" --url "smtp://127.0.0.1:$SMTP_PORT" $SMTP \
    --rcpt "$(printf 'x@rcpt.test\r\nRCPT TO:<evil@rcpt.test>')" >"$T/inj.out" 2>&1
expect_grep "CRLF in address: PERMFAIL, not sent" \
    '^RESULT .*status=permfail code=0 .*reply=refused envelope address .*contains CR or LF \(not sent\)' "$T/inj.out"
"$CLIENT" --url "smtp://127.0.0.1:$SMTP_PORT" --starttls off \
    --from "a@x.test> SIZE=1" --rcpt ok@rcpt.test >"$T/inj2.out" 2>&1
expect_grep "'>' in sender: PERMFAIL" '^RESULT .*status=permfail .*refused envelope address' "$T/inj2.out"
expect_count "refused addresses: server never contacted" 0 '^CONNECT' "$T/inj/events.log"

# ---- STARTTLS ---------------------------------------------------------------
TLSPORT=$(port_of "$T/tls")
"$CLIENT" --url "smtp://127.0.0.1:$TLSPORT" --starttls required \
    --ca "$T/cert.pem" --from s@suki.test --rcpt a@rcpt.test >"$T/tls.out" 2>&1
expect_grep "STARTTLS with the CA: SENT" '^RESULT .*status=sent code=250 ' "$T/tls.out"
expect_grep "STARTTLS with the CA: server saw TLS" '"tls": true' "$T/tls/msg-1.json"
mails_before=$(count '^MAIL' "$T/tls/events.log")
"$CLIENT" --url "smtp://127.0.0.1:$TLSPORT" --starttls required \
    --from s@suki.test --rcpt a@rcpt.test >"$T/tlsbad.out" 2>&1
expect_grep "STARTTLS without the CA: TEMPFAIL with a clear reply" \
    '^RESULT .*status=tempfail code=0 .*reply=TLS failure, nothing was sent \(check ca_file, tls_verify and the server certificate of transport t\): .*certificate' "$T/tlsbad.out"
expect_count "STARTTLS without the CA: no MAIL FROM reached the server" \
    "$mails_before" '^MAIL' "$T/tls/events.log"
expect_grep "STARTTLS without the CA: the client did start TLS" '^STARTTLS' "$T/tls/events.log"
# starttls = try with a broken certificate still refuses to go plain
"$CLIENT" --url "smtp://127.0.0.1:$TLSPORT" --starttls try \
    --from s@suki.test --rcpt a@rcpt.test >"$T/tlstry.out" 2>&1
expect_grep "starttls try, bad certificate: TEMPFAIL" '^RESULT .*status=tempfail .*TLS failure' "$T/tlstry.out"
expect_count "starttls try, bad certificate: still no MAIL FROM" \
    "$mails_before" '^MAIL' "$T/tls/events.log"
# required against a server without STARTTLS: never plain text
"$CLIENT" --url "smtp://127.0.0.1:$(cat "$T/acc/port")" --starttls required \
    --from s@suki.test --rcpt a@rcpt.test >"$T/notls.out" 2>&1
expect_grep "starttls required, server without it: TEMPFAIL" \
    '^RESULT .*status=tempfail .*reply=TLS required \(starttls = required\) but the server does not offer STARTTLS; nothing was sent' "$T/notls.out"
expect_count "starttls required, server without it: no new MAIL" 20 '^MAIL' "$T/acc/events.log"

# smtps:// (TLS from the first byte)
SPORT=$(port_of "$T/smtps")
"$CLIENT" --url "smtps://127.0.0.1:$SPORT" --starttls off --ca "$T/cert.pem" \
    --from s@suki.test --rcpt a@rcpt.test >"$T/smtps.out" 2>&1
expect_grep "smtps with the CA: SENT" '^RESULT .*status=sent code=250 ' "$T/smtps.out"
expect_grep "smtps with the CA: server saw TLS" '"tls": true' "$T/smtps/msg-1.json"
"$CLIENT" --url "smtps://127.0.0.1:$SPORT" --starttls off \
    --from s@suki.test --rcpt a@rcpt.test >"$T/smtpsbad.out" 2>&1
expect_grep "smtps without the CA: TEMPFAIL, TLS failure" '^RESULT .*status=tempfail code=0 .*reply=TLS failure' "$T/smtpsbad.out"
expect_count "smtps without the CA: one MAIL only (the good run)" 1 '^MAIL' "$T/smtps/events.log"

# ---- null sender (bounces, DSNs) ----------------------------------------------
"$CLIENT" --url "smtp://127.0.0.1:$(cat "$T/seq/port")" --starttls off --from "" \
    --rcpt a@rcpt.test >"$T/null.out" 2>&1
expect_grep "null sender: SENT" '^RESULT .*status=sent code=250 ' "$T/null.out"
expect_grep "null sender: MAIL FROM:<>" '^MAIL <>$' "$T/seq/events.log"

# ---- timeout ------------------------------------------------------------------
SMTP_PORT=$(port_of "$T/slow")
"$CLIENT" --url "smtp://127.0.0.1:$SMTP_PORT" $SMTP --rcpt a@rcpt.test \
    --timeout-ms 700 --count 2 --sequential --max-conn 1 >"$T/slow.out" 2>&1
expect_count "slow server: TEMPFAIL on timeout" 2 \
    '^RESULT .*status=tempfail code=0 .*reply=.*([Tt]imed? ?out|timeout)' "$T/slow.out"
# libcurl 7.88 would reuse the timed-out connection (and read the late
# reply as the next message's); dispatch kills it, so each got its own
expect_count "slow server: no reuse of a timed-out connection" 2 '^CONNECT' "$T/slow/events.log"
# shutting down does not wait for the hung server (it answers after 10 s)
el=$(sed -n 's/^SUMMARY .*elapsed_ms=\([0-9]*\).*/\1/p' "$T/slow.out")
[ -n "$el" ] && [ "$el" -lt 8000 ] && ok "slow server: shutdown did not wait for it (${el} ms)" ||
    fail "slow server: shutdown took ${el} ms"

# ---- server down: quick TEMPFAIL, breaker opens ------------------------------
DOWN=$(free_port)
"$CLIENT" --url "smtp://127.0.0.1:$DOWN" $SMTP --rcpt a@rcpt.test --count 6 \
    --max-conn 1 --breaker 3 --cooldown-ms 60000 --deadline-ms 1500 --state \
    >"$T/down.out" 2>"$T/down.err"
expect_count "server down: 3 TEMPFAIL (connection refused) before the deadline" 3 \
    '^RESULT .*status=tempfail code=0 .*cancelled=0 .*reply=Failed to connect to 127\.0\.0\.1' "$T/down.out"
expect_grep "server down: breaker open, 3 still queued" \
    '^STATE name=t breaker=open fails=3 queued=3 in_flight=0 ' "$T/down.out"
expect_count "server down: queued ones cancelled at shutdown" 3 '^RESULT .*cancelled=1 ' "$T/down.out"
expect_grep "server down: breaker logged" 'circuit breaker open for 1m after 3 consecutive' "$T/down.err"

# the server comes back during the cooldown: one probe, then the rest. The
# server has started up already and binds within milliseconds of the second
# TEMPFAIL, so a slow host cannot push its return past the cooldown.
BACK=$(free_port)
spawn_smtp "$T/back" --port "$BACK" --listen-after "$T/back.go"
wait_file "$T/back/waiting"
"$CLIENT" --url "smtp://127.0.0.1:$BACK" $SMTP --rcpt a@rcpt.test --count 5 \
    --max-conn 1 --breaker 2 --cooldown-ms 3000 --state >"$T/back.out" 2>&1 &
CPID=$!
PIDS="$PIDS $CPID"
n=0
while [ "$(count '^RESULT' "$T/back.out")" -lt 2 ] && [ $n -lt 300 ]; do
    sleep 0.05
    n=$((n + 1))
done
touch "$T/back.go"
port_of "$T/back" >/dev/null
wait $CPID
expect_grep "breaker recovers: 2 TEMPFAIL then 3 SENT" \
    '^SUMMARY sent=3 tempfail=2 permfail=0 cancelled=0' "$T/back.out"
expect_grep "breaker recovers: closed again" '^STATE name=t breaker=closed fails=0' "$T/back.out"

# ---- Postfix smtp-sink: connection reuse -------------------------------------
SINKPORT=$(free_port)
SINKUSER=
[ "$(id -u)" = 0 ] && SINKUSER="-u nobody"
smtp-sink $SINKUSER -c "127.0.0.1:$SINKPORT" 100 >"$T/sink.out" 2>&1 &
SINKPID=$!
PIDS="$PIDS $SINKPID"
wait_listen "$SINKPORT"
# that readiness probe was one session without QUIT; wait until it counts
n=0
until tr '\r' '\n' <"$T/sink.out" | grep -q '^sess=1 '; do
    n=$((n + 1))
    [ $n -gt 50 ] && break
    sleep 0.1
done
"$CLIENT" --url "smtp://127.0.0.1:$SINKPORT" $SMTP --rcpt a@rcpt.test \
    --count 200 --max-conn 4 --size 4096 >"$T/sink1.out" 2>&1
expect_grep "smtp-sink: 200 sent" '^SUMMARY sent=200 tempfail=0 permfail=0' "$T/sink1.out"
# smtp-sink -c prints "sess=S quit=Q mesg=M" (CR-separated) as sessions end
n=0
while :; do
    last=$(tr '\r' '\n' <"$T/sink.out" | grep '^sess=' | tail -1)
    case "$last" in *"mesg=200") q=${last#*quit=}; q=${q%% *}
        s=${last#sess=}; s=${s%% *}
        [ "$s" -ge 2 ] && [ "$q" = $((s - 1)) ] && break ;;
    esac
    n=$((n + 1))
    [ $n -gt 50 ] && break
    sleep 0.1
done
s=${last#sess=}
s=${s%% *}
s=$((s - 1)) # minus the readiness probe
case "$last" in
*"mesg=200")
    if [ "$s" -ge 1 ] && [ "$s" -le 4 ]; then
        ok "smtp-sink: 200 messages over $s connection(s), each closed with QUIT ($last, one probe)"
    else
        fail "smtp-sink: $last (expected at most 4 sessions)"
    fi ;;
*) fail "smtp-sink counters: '$last'" ;;
esac

finish
