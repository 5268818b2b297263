#!/bin/sh
# dispatch_http.sh - suki_dispatch webhooks against a real HTTP server on
# loopback (tests/integration/http_server.py): body and headers as sent,
# classification of 200 / 500 / 429 / 503 / 400, Retry-After in seconds and
# as an HTTP-date, timeouts, connection refused.
. "$(dirname "$0")/dispatch_lib.sh"

spawn_http "$T/ok" --mode 200
spawn_http "$T/f500" --mode 500-then-200 --fail-count 2
spawn_http "$T/r429" --mode 429 --retry-after 3
spawn_http "$T/r503" --mode 503 --retry-after "$(LC_ALL=C TZ=GMT date -d '+120 seconds' '+%a, %d %b %Y %H:%M:%S GMT')"
spawn_http "$T/b400" --mode 400
spawn_http "$T/slow" --mode slow --delay 10

printf '{"text":"Renewal due for acme-ph","n":1}' >"$T/payload.json"

# ---- 200: body and headers arrive as sent ---------------------------------
P=$(port_of "$T/ok")
"$CLIENT" --url "http://127.0.0.1:$P/hooks/abc" --body-file "$T/payload.json" \
    --header "X-Suki-Token: s3cret" --header "X-Other: two words" \
    --count 5 --max-conn 2 >"$T/ok.out" 2>&1
expect_count "200: 5 SENT with the status" 5 '^RESULT .*status=sent code=200 .*reply=HTTP 200: \{"ok":true\}' "$T/ok.out"
expect_count "200: server got 5 POSTs on the path" 5 '^[0-9]+ POST /hooks/abc 200$' "$T/ok/requests.log"
if cmp -s "$T/payload.json" "$T/ok/body-1.json"; then
    ok "200: body byte-for-byte"
else
    fail "200: body differs: $(cat "$T/ok/body-1.json")"
fi
expect_grep "200: Content-Type application/json" '^Content-Type: application/json' "$T/ok/headers-1.txt"
expect_grep "200: extra header from config" '^X-Suki-Token: s3cret' "$T/ok/headers-1.txt"
expect_grep "200: header value with spaces" '^X-Other: two words' "$T/ok/headers-1.txt"
expect_no_grep "200: no Expect: 100-continue" '^Expect:' "$T/ok/headers-1.txt"

# ---- 500 then 200 -----------------------------------------------------------
P=$(port_of "$T/f500")
"$CLIENT" --url "http://127.0.0.1:$P/h" --resend 2 >"$T/f500.out" 2>&1
expect_count "500: TEMPFAIL twice with status and body" 2 \
    '^RESULT .*status=tempfail code=500 .*reply=HTTP 500: upstream broken' "$T/f500.out"
expect_grep "500 then 200: SENT on the third attempt" '^RESULT i=0 .*status=sent code=200 .*attempt=2' "$T/f500.out"
if grep -q '"i":0' "$T/f500/body-3.json"; then ok "500 then 200: the resend carried the same body"
else fail "500 then 200: body-3 $(cat "$T/f500/body-3.json" 2>&1)"; fi

# ---- 429 with Retry-After seconds -------------------------------------------
P=$(port_of "$T/r429")
"$CLIENT" --url "http://127.0.0.1:$P/h" >"$T/r429.out" 2>&1
expect_grep "429: TEMPFAIL, retry_after_ms 3000" \
    '^RESULT .*status=tempfail code=429 retry_after_ms=3000 .*reply=HTTP 429: slow down' "$T/r429.out"

# ---- 503 with Retry-After as an HTTP-date ----------------------------------
P=$(port_of "$T/r503")
"$CLIENT" --url "http://127.0.0.1:$P/h" >"$T/r503.out" 2>&1
ra=$(sed -n 's/^RESULT .*code=503 retry_after_ms=\([0-9]*\) .*/\1/p' "$T/r503.out")
if [ -n "$ra" ] && [ "$ra" -gt 100000 ] && [ "$ra" -le 121000 ]; then
    ok "503: TEMPFAIL, Retry-After date -> ${ra} ms"
else
    fail "503: retry_after '$ra'"
    cat "$T/r503.out"
fi

# ---- 400 ---------------------------------------------------------------------
P=$(port_of "$T/b400")
"$CLIENT" --url "http://127.0.0.1:$P/h" >"$T/b400.out" 2>&1
expect_grep "400: PERMFAIL with the body" \
    '^RESULT .*status=permfail code=400 retry_after_ms=0 .*reply=HTTP 400: \{"error":"bad payload"\}' "$T/b400.out"

# ---- timeout, refused ----------------------------------------------------------
P=$(port_of "$T/slow")
"$CLIENT" --url "http://127.0.0.1:$P/h" --timeout-ms 500 >"$T/slow.out" 2>&1
expect_grep "slow: TEMPFAIL on timeout" '^RESULT .*status=tempfail code=0 .*reply=.*[Tt]imed out' "$T/slow.out"
DOWN=$(free_port)
"$CLIENT" --url "http://127.0.0.1:$DOWN/h" --breaker 2 --count 4 --max-conn 1 \
    --cooldown-ms 60000 --deadline-ms 1500 --state >"$T/down.out" 2>&1
expect_count "refused: 2 TEMPFAIL" 2 '^RESULT .*status=tempfail code=0 .*cancelled=0 .*reply=Failed to connect' "$T/down.out"
expect_grep "refused: breaker open" '^STATE name=t breaker=open fails=2 queued=2' "$T/down.out"

# ---- a header with CR/LF in the configuration is refused whole --------------
"$CLIENT" --url "http://127.0.0.1:$(port_of "$T/ok")/h" \
    --header "$(printf 'X-Bad: a\r\nX-Injected: 1')" >"$T/badhdr.out" 2>"$T/badhdr.err"
expect_grep "header with CRLF: configure refuses" 'configure: Invalid argument' "$T/badhdr.err"

finish
