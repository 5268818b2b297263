#!/bin/sh
# http_intake.sh - POST /v1/events against a real sukid, redis-server, curl
# and Python http.client: 404 without intake_tokens_file; 405, 401 (no,
# wrong token), 415, 413 (max_body + 1; exactly max_body is taken), 400
# naming every bad event with nothing added, 202 only with every event in
# the stream and applied (a meeting.held gets its follow-up job); a retry of
# the same body applies nothing twice; JSON lines and arrays; with a
# signing secret, a missing or wrong X-Suki-Signature is 401; a keep-alive
# load from several connections and a pipelined connection lose nothing.
. "$top_srcdir/tests/integration/lib.sh"
need curl redis-server redis-cli "$SUKID" "$PY"
[ -f "$top_builddir/plugins/.libs/followup.so" ] || fail "followup.so not built"
mkdir -p "$T/plug"
ln -s "$top_builddir/plugins/.libs/followup.so" "$T/plug/"
CLI="$PY $top_srcdir/tests/integration/http_intake_client.py"

start_redis
HP=$(free_port)
URL=http://127.0.0.1:$HP/v1/events
TOK=tok-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
printf '# webhook producers\n\n  %s  \nsecond-token\n' "$TOK" >"$T/tokens"
chmod 600 "$T/tokens"
RULES='rules = ( { name = "fu"; use = "followup"; on = [ "meeting.held" ];
            after = "3d"; notify = [ "manager" ];
            template = "followup-reminder"; } );'
mkconf() # FILE HTTP-EXTRA
{
    PLUGINS_DIR=$T/plug TEMPLATES_DIR=$top_srcdir/conf/templates \
        write_conf "$1" "$RULES"
    sed -i "s|^http = .*|http = { listen = \"127.0.0.1:$HP\"; $2 };|" "$1"
}
code() { curl -s -o "$T/out" -w '%{http_code}' "$@"; }
start_http() # NAME CONF
{
    "$SUKID" -c "$2" >>"$T/sukid-$1.log" 2>&1 &
    SUKID_PID=$!
    eval "SUKID_PID_$1=$SUKID_PID"
    lib_track $SUKID_PID
    wait_for 15 "[ \"\$(code http://127.0.0.1:$HP/healthz)\" = 200 ] || ! kill -0 $SUKID_PID" ||
        fail "sukid $1 did not answer /healthz"
    wait_for 15 "grep -q 'consumer group ready' '$T/sukid-$1.log'" ||
        fail "sukid $1 intake not ready"
}
xlen() { rcli XLEN suki:events; }
post() # CTYPE FILE [curl args...]
{
    _ct=$1 _f=$2
    shift 2
    code -X POST -H "Authorization: Bearer $TOK" -H "Content-Type: $_ct" \
        --data-binary @"$_f" "$@" "$URL"
}
day=$(date -u -d '+10 days' +%F)

# ---- off: 404 ----
mkconf "$T/off.conf" ""
start_http off "$T/off.conf"
echo '{"type":"x.y","client":"c"}' >"$T/one.json"
[ "$(post application/json "$T/one.json")" = 404 ] || fail "no tokens: $(cat "$T/out")"
[ "$(xlen)" = 0 ] || fail "added while off"
stop_sukid off || fail "sukid off did not stop cleanly"
ok "404 without intake_tokens_file"

# a tokens file others can read is refused at load
cp "$T/tokens" "$T/tokens.open"
chmod 644 "$T/tokens.open"
mkconf "$T/open.conf" "intake_tokens_file = \"$T/tokens.open\";"
"$SUKID" -t -c "$T/open.conf" >"$T/t.out" 2>&1 && fail "0644 tokens accepted"
grep -q 'intake_tokens_file.*chmod 600' "$T/t.out" || fail "-t: $(cat "$T/t.out")"
printf '# only comments\n\n' >"$T/tokens.none"
chmod 600 "$T/tokens.none"
mkconf "$T/none.conf" "intake_tokens_file = \"$T/tokens.none\";"
"$SUKID" -t -c "$T/none.conf" >"$T/t.out" 2>&1 && fail "empty tokens accepted"
grep -q 'holds no token' "$T/t.out" || fail "-t: $(cat "$T/t.out")"
ok "tokens file: 0644 and token-less refused by sukid -t"
# under systemd the file comes as the credential suki_<name>
mkdir -p "$T/cred"
cp "$T/tokens" "$T/cred/suki_intake.tokens"
chmod 600 "$T/cred/suki_intake.tokens"
mkconf "$T/cred.conf" 'intake_tokens_file = "/nonexistent/credentials/intake.tokens";'
"$SUKID" -t -c "$T/cred.conf" >"$T/t.out" 2>&1 && fail "missing tokens file accepted"
CREDENTIALS_DIRECTORY=$T/cred "$SUKID" -t -c "$T/cred.conf" >"$T/t.out" 2>&1 ||
    fail "credential not used: $(cat "$T/t.out")"
ok "tokens file read from \$CREDENTIALS_DIRECTORY/suki_intake.tokens"

# ---- on ----
mkconf "$T/a.conf" "intake_tokens_file = \"$T/tokens\";"
"$SUKID" -t -c "$T/a.conf" >"$T/t.out" 2>&1 || fail "-t: $(cat "$T/t.out")"
start_http a "$T/a.conf"

[ "$(code "$URL")" = 405 ] || fail "GET: $(cat "$T/out")"
[ "$(code -X PUT --data x "$URL")" = 405 ] || fail "PUT"
curl -s -D - -o /dev/null "$URL" | grep -qi '^allow: POST' || fail "no Allow"
ok "405 for GET and PUT, with Allow: POST"

[ "$(code -X POST -H 'Content-Type: application/json' --data-binary @"$T/one.json" "$URL")" = 401 ] ||
    fail "no token: $(cat "$T/out")"
[ "$(code -X POST -H 'Authorization: Bearer nope' -H 'Content-Type: application/json' --data-binary @"$T/one.json" "$URL")" = 401 ] ||
    fail "wrong token"
[ "$(code -X POST -H "Authorization: Bearer ${TOK}x" -H 'Content-Type: application/json' --data-binary @"$T/one.json" "$URL")" = 401 ] ||
    fail "token with a suffix"
[ "$(code -X POST -H "Authorization: Basic $TOK" -H 'Content-Type: application/json' --data-binary @"$T/one.json" "$URL")" = 401 ] ||
    fail "not bearer"
[ "$(xlen)" = 0 ] || fail "added without a token"
ok "401 without a valid token, nothing added"

[ "$(post text/plain "$T/one.json")" = 415 ] || fail "text/plain: $(cat "$T/out")"
[ "$(post application/x-www-form-urlencoded "$T/one.json")" = 415 ] || fail "form"
[ "$(xlen)" = 0 ] || fail "added with 415"
ok "415 for other content types"

# one event, the second token, charset parameter
printf '{"type":"meeting.held","client":"m1","id":"m1-1","at":"%sT10:00:00Z","manager":"a@example.com"}\n' "$day" >"$T/m1.json"
st=$(code -X POST -H 'Authorization: Bearer second-token' \
    -H 'Content-Type: application/json; charset=utf-8' --data-binary @"$T/m1.json" "$URL")
[ "$st" = 202 ] || fail "one event: $st $(cat "$T/out")"
[ "$(cat "$T/out")" = '{"accepted":1}' ] || fail "202 body: $(cat "$T/out")"
[ "$(xlen)" = 1 ] || fail "xlen $(xlen) after 202"
wait_for 10 '[ "$(rcli ZCARD suki:jobs)" = 1 ]' || fail "no follow-up job"
rcli HKEYS suki:job:m1 | grep -q . || fail "job not m1's"
ok "202 {\"accepted\":1}: in the stream, applied, follow-up job scheduled"

# the same body again: a second stream entry, applied once
post application/json "$T/m1.json" >/dev/null
[ "$(xlen)" = 2 ] || fail "retry xlen $(xlen)"
wait_for 10 '[ "$(stat duplicate)" = 1 ]' || fail "retry not a duplicate ($(stat duplicate))"
[ "$(rcli ZCARD suki:jobs)" = 1 ] || fail "retry: jobs $(rcli ZCARD suki:jobs)"
[ "$(rcli HLEN suki:job:m1)" = 1 ] || fail "retry: m1 jobs"
ok "a retry of the same body is a duplicate: one job"

# an array of three meetings
printf '[{"type":"meeting.held","client":"m2","id":"m2-1","at":"%sT10:00:00Z"},\n {"type":"meeting.held","client":"m3","id":"m3-1","at":"%sT10:00:00Z"}, {"type":"x.y","client":"m4"}]' "$day" "$day" >"$T/arr.json"
[ "$(post application/json "$T/arr.json")" = 202 ] || fail "array: $(cat "$T/out")"
[ "$(cat "$T/out")" = '{"accepted":3}' ] || fail "array body: $(cat "$T/out")"
[ "$(xlen)" = 5 ] || fail "array xlen $(xlen)"
wait_for 10 '[ "$(rcli ZCARD suki:jobs)" = 3 ]' || fail "array jobs $(rcli ZCARD suki:jobs)"
ok "JSON array: 3 accepted, 2 more follow-ups"

# JSON lines, CRLF and a blank line
printf '{"type":"meeting.held","client":"m5","id":"m5-1","at":"%sT10:00:00Z"}\r\n\n{"type":"x.y","client":"m6"}\n' "$day" >"$T/lines.ndjson"
[ "$(post application/x-ndjson "$T/lines.ndjson")" = 202 ] || fail "lines: $(cat "$T/out")"
[ "$(cat "$T/out")" = '{"accepted":2}' ] || fail "lines body: $(cat "$T/out")"
[ "$(xlen)" = 7 ] || fail "lines xlen $(xlen)"
wait_for 10 '[ "$(rcli ZCARD suki:jobs)" = 4 ]' || fail "lines jobs"
ok "JSON lines: 2 accepted"

# 400: every bad event named, nothing added
printf '[{"type":"meeting.held","client":"b1"}, {"client":"b2"}, 7, {"type":"ok.one","client":"b3"}, {"type":"x.y","client":"b4","at":"yesterday"}]' >"$T/bad.json"
[ "$(post application/json "$T/bad.json")" = 400 ] || fail "bad array: $(cat "$T/out")"
"$PY" - "$T/out" <<'PYEOF' || fail "400 body: $(cat "$T/out")"
import json, sys
e = json.load(open(sys.argv[1]))["errors"]
assert [x["index"] for x in e] == [1, 2, 4], e
assert "type" in e[0]["error"] and "object" in e[1]["error"], e
assert "at" in e[2]["error"], e
PYEOF
printf '{"type":"ok.one","client":"b5"}\nnot json\n{"type":"Bad Type","client":"b6"}\n' >"$T/bad.ndjson"
[ "$(post application/x-ndjson "$T/bad.ndjson")" = 400 ] || fail "bad lines"
"$PY" -c 'import json,sys; e=json.load(open(sys.argv[1]))["errors"]; assert [(x["index"],x["line"]) for x in e]==[(1,2),(2,3)], e' "$T/out" ||
    fail "400 lines body: $(cat "$T/out")"
printf '[{"type":"x.y","client":"b7"},' >"$T/trunc.json"
[ "$(post application/json "$T/trunc.json")" = 400 ] || fail "truncated array"
grep -q 'not a JSON array' "$T/out" || fail "truncated: $(cat "$T/out")"
printf '[]' >"$T/empty.json"
[ "$(post application/json "$T/empty.json")" = 400 ] || fail "empty array"
printf '\xff\xfe{"type":"x.y","client":"b8"}' >"$T/utf.json"
[ "$(post application/json "$T/utf.json")" = 400 ] || fail "invalid UTF-8"
[ "$(xlen)" = 7 ] || fail "400 added: xlen $(xlen)"
ok "400 names indexes 1 2 4 (array) and lines 2 3 (JSON lines); nothing added"

# 413: max_body (default 1 MiB) taken, one byte more refused
"$PY" - "$T" "$day" <<'PYEOF'
import json, sys
d, day = sys.argv[1], sys.argv[2]
ev = [{"type": "meeting.held", "client": "big", "id": "big-1",
       "at": day + "T10:00:00Z"}]
s = json.dumps(ev)
pad = 1048576 - len(s)
open(d + "/max.json", "w").write(s[:-1] + " " * pad + "]")
open(d + "/over.json", "w").write(s[:-1] + " " * (pad + 1) + "]")
PYEOF
[ "$(wc -c <"$T/max.json")" -eq 1048576 ] || fail "max.json size"
[ "$(post application/json "$T/over.json")" = 413 ] || fail "max_body+1: $(cat "$T/out")"
[ "$(xlen)" = 7 ] || fail "413 added"
[ "$(post application/json "$T/max.json")" = 202 ] || fail "max_body: $(head -c 300 "$T/out")"
[ "$(xlen)" = 8 ] || fail "max_body xlen $(xlen)"
# chunked bodies have the same limit
[ "$(post application/json "$T/over.json" -H 'Transfer-Encoding: chunked')" = 413 ] ||
    fail "chunked max_body+1: $(head -c 300 "$T/out")"
[ "$(xlen)" = 8 ] || fail "chunked 413 added"
[ "$(post application/json "$T/arr.json" -H 'Transfer-Encoding: chunked')" = 202 ] ||
    fail "chunked: $(cat "$T/out")"
[ "$(xlen)" = 11 ] || fail "chunked xlen $(xlen)"
# the other paths keep their small limit
[ "$(code -X POST --data-binary @"$T/max.json" "http://127.0.0.1:$HP/u/x")" = 413 ] ||
    fail "large body to /u/"
ok "413 at 1048577 bytes (also chunked); 1048576 accepted"

rcli SET suki:events2 x >/dev/null # for the last part

# ---- load: keep-alive connections and a pipelined one ----
before=$(xlen)
applied0=$(stat applied)
out=$($CLI load "$HP" "$TOK" 8 4000 10 100000) || fail "load: $out"
[ "${out% *}" = 4000 ] || fail "load accepted ${out% *}"
out=$($CLI load "$HP" "$TOK" 4 400 1 104000) || fail "load batch 1: $out"
[ "${out% *}" = 400 ] || fail "load batch 1 accepted ${out% *}"
out=$($CLI pipe "$HP" "$TOK" 60 10 104400 2>&1) || fail "pipe: $out"
[ "$out" = 600 ] || fail "pipe accepted $out"
[ "$(($(xlen) - before))" = 5000 ] || fail "load xlen +$(($(xlen) - before))"
wait_for 60 '[ "$(($(stat applied) - applied0))" -ge 5000 ]' ||
    fail "load applied $(($(stat applied) - applied0))"
[ "$(clients_not_once 5000 100000)" = 0 ] ||
    fail "clients not applied once: $(clients_not_once 5000 100000)"
ok "5000 events over 8+4 keep-alive and 1 pipelined connection: all in, each applied once"

curl -s "http://127.0.0.1:$HP/metrics" >"$T/metrics"
for r in accepted invalid unauthorized method media_type; do
    grep -q "^suki_http_intake_total{result=\"$r\"} [1-9]" "$T/metrics" ||
        fail "metric $r: $(grep http_intake "$T/metrics")"
done
ok "suki_http_intake_total counts every result"

# a reload takes a changed tokens file
printf 'rotated-token\n' >"$T/tokens"
kill -HUP "$SUKID_PID_a"
wait_for 10 'grep -q "configuration reloaded" "$T/sukid-a.log"' || fail "no reload"
[ "$(post application/json "$T/m1.json")" = 401 ] || fail "old token after reload"
st=$(code -X POST -H 'Authorization: Bearer rotated-token' \
    -H 'Content-Type: application/json' --data-binary @"$T/m1.json" "$URL")
[ "$st" = 202 ] || fail "new token after reload: $st $(cat "$T/out")"
printf '%s\n' "$TOK" >"$T/tokens"
ok "SIGHUP: the old token refused, the new one taken"
stop_sukid a || fail "sukid a did not stop cleanly"

# ---- signed ----
SECRET=sig-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$SECRET" >"$T/sig"
chmod 600 "$T/sig"
mkconf "$T/b.conf" "intake_tokens_file = \"$T/tokens\"; intake_signing_secret_file = \"$T/sig\";"
start_http b "$T/b.conf"
sig() { printf 'sha256=%s' "$(openssl dgst -sha256 -hmac "$SECRET" -r <"$1" | cut -d' ' -f1)"; }
printf '{"type":"meeting.held","client":"s1","id":"s1-1","at":"%sT10:00:00Z"}' "$day" >"$T/s1.json"
n0=$(xlen)
[ "$(post application/json "$T/s1.json")" = 401 ] || fail "unsigned: $(cat "$T/out")"
[ "$(post application/json "$T/s1.json" -H "X-Suki-Signature: sha256=$(printf '%064d' 0)")" = 401 ] ||
    fail "wrong signature"
[ "$(post application/json "$T/m1.json" -H "X-Suki-Signature: $(sig "$T/s1.json")")" = 401 ] ||
    fail "signature of another body"
[ "$(xlen)" = "$n0" ] || fail "added unsigned"
[ "$(code -X POST -H 'Authorization: Bearer nope' -H 'Content-Type: application/json' -H "X-Suki-Signature: $(sig "$T/s1.json")" --data-binary @"$T/s1.json" "$URL")" = 401 ] ||
    fail "signed without a token"
[ "$(post application/json "$T/s1.json" -H "X-Suki-Signature: $(sig "$T/s1.json")")" = 202 ] ||
    fail "signed: $(cat "$T/out")"
out=$($CLI req "$HP" "$TOK" application/json "$T/s1.json" "$(sig "$T/s1.json")")
[ "${out%% *}" = 202 ] || fail "http.client signed: $out"
[ "$(xlen)" = $((n0 + 2)) ] || fail "signed xlen"
wait_for 10 '[ "$(rcli HLEN suki:job:s1)" = 1 ]' || fail "signed event not applied"
ok "signature: missing, wrong or another body's 401; right one 202 and applied"
stop_sukid b || fail "sukid b did not stop cleanly"

# ---- Redis refusing: 503, nothing added ----
sed 's|stream = "suki:events";|stream = "suki:events2";|' "$T/b.conf" >"$T/c.conf"
sed -i 's|intake_signing_secret_file = "[^"]*";||' "$T/c.conf"
grep -q events2 "$T/c.conf" || fail "c.conf"
"$SUKID" -c "$T/c.conf" >>"$T/sukid-c.log" 2>&1 &
p=$!
lib_track $p
wait_for 15 "[ \"\$(code http://127.0.0.1:$HP/healthz)\" = 200 ]" || fail "sukid c"
st=$(post application/json "$T/one.json")
[ "$st" = 503 ] || fail "wrong-type stream: $st $(cat "$T/out")"
[ "$(rcli TYPE suki:events2)" = string ] || fail "events2 changed"
curl -s "http://127.0.0.1:$HP/metrics" |
    grep -q '^suki_http_intake_total{result="unavailable"} 1$' || fail "metric unavailable"
kill -TERM $p
wait $p || fail "sukid c did not stop cleanly"
ok "a stream key of another type: 503, nothing written"
