#!/bin/sh
# http_unsubscribe.sh - GET|POST /u/TOKEN against a real Redis and curl.
# Tokens are made here independently (Python hmac) from the secret the
# daemons shared through Redis: GET shows a page and changes nothing, POST
# (RFC 8058 one-click) suppresses the address and sets consent=false with a
# 200 and no redirect or cookie; 1,000 forged tokens all get 400 and change
# nothing; a second sukid adopts the same secret; a secret file overrides.
# Tokens carry their issue time (the first format, without it, still
# works): one made before the client's latest consent.subscribed is
# refused (410, nothing changed), and http.unsubscribe_max_age refuses
# older ones.
. "$top_srcdir/tests/integration/lib.sh"
need curl redis-server redis-cli "$SUKID"

start_redis
P=$SUKI_PREFIX
HP=$(free_port)
CONF=$T/sukid.conf
write_conf "$CONF"
sed -i "s|^http = .*|http = { listen = \"127.0.0.1:$HP\"; public_url = \"http://127.0.0.1:$HP/\"; };|" "$CONF"
URL=http://127.0.0.1:$HP

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

start_http()
{
    "$SUKID" -c "$2" >>"$T/sukid-$1.log" 2>&1 &
    SUKID_PID=$!
    eval "SUKID_PID_$1=$SUKID_PID"
    lib_track $SUKID_PID
    wait_for 15 "[ \"\$(code http://127.0.0.1:$3/healthz)\" = 200 ] || ! kill -0 $SUKID_PID" ||
        fail "sukid $1 did not answer /healthz with 200"
    kill -0 "$SUKID_PID" 2>/dev/null || fail "sukid $1 exited at start"
}

# token SECRET CLIENT ADDR [ISSUED] - the token formats of lib/unsub.h:
# without ISSUED the first (no time, as in links sent before the time was
# added), with it the second (ISSUED seconds since the epoch)
token()
{
    "$PY" -c '
import hmac, hashlib, base64, sys
s, c, a = (x.encode() for x in sys.argv[1:4])
p, label = c + b"\0" + a.lower(), b"suki-unsub-1"
if len(sys.argv) > 4:
    p, label = p + b"\0" + sys.argv[4].encode(), b"suki-unsub-2"
m = hmac.new(s, label + b"\0" + p, hashlib.sha256).digest()[:16]
e = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
print(e(p) + "." + e(m))' "$@"
}

rcli HSET "$P:client:c1" email Maria@Example.PH name Maria consent true >/dev/null
rcli HSET "$P:client:c2" email juan@example.ph name Juan >/dev/null

start_http a "$CONF" "$HP"
wait_for 10 '[ -n "$(rcli GET "$P:secret")" ]' || fail "no shared secret in $P:secret"
SECRET=$(rcli GET "$P:secret")
[ ${#SECRET} = 64 ] || fail "secret is not 256 bits of hex: '$SECRET'"
# the daemon reads the secret at its next tick
wait_for 5 'grep -q "shared unsubscribe secret" "$T/sukid-a.log"' || fail "daemon did not adopt the secret"
TOK=$(token "$SECRET" c1 Maria@Example.PH)
ok "shared secret in redis; token $TOK"

# ---- GET: a page with a button, nothing changes ----
curl -s -D "$T/gh" -o "$T/get.html" "$URL/u/$TOK"
head -1 "$T/gh" | grep -q ' 200' || fail "GET status $(head -1 "$T/gh")"
grep -q '<form method="post">' "$T/get.html" || fail "no POST form in the page"
grep -q 'maria@example.ph' "$T/get.html" || fail "page does not name the address"
[ "$(code -I "$URL/u/$TOK")" = 200 ] || fail "HEAD not 200"
[ "$(rcli SISMEMBER "$P:suppressed" maria@example.ph)" = 0 ] || fail "GET suppressed the address"
[ "$(rcli HGET "$P:client:c1" consent)" = true ] || fail "GET changed consent"
ok "GET shows a confirmation form and changes nothing"

# ---- bad tokens: 400, nothing changes (before any real unsubscribe) ----
WRONG=$(token 0123456789abcdef0123456789abcdef c2 juan@example.ph)
"$PY" - "$SECRET" "$TOK" "$WRONG" "$URL" >"$T/forged.curl" <<'EOF'
import base64, hmac, hashlib, random, sys
secret, good, wrong, url = sys.argv[1:5]
rnd = random.Random(8058)
e = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
toks = set()
def add(t):
    if t != good:
        toks.add(t)
add(wrong)                                     # another secret
p, m = good.split(".")
while len(toks) < 1000:
    k = rnd.randrange(7)
    if k == 0:    # one character of the MAC changed
        i = rnd.randrange(len(m)); add(p + "." + m[:i] + rnd.choice(alpha) + m[i + 1:])
    elif k == 1:  # one character of the payload changed
        i = rnd.randrange(len(p)); add(p[:i] + rnd.choice(alpha) + p[i + 1:] + "." + m)
    elif k == 2:  # c2's payload with c1's MAC, or a random MAC
        q = e(b"c2\0juan@example.ph")
        add(q + "." + (m if rnd.random() < 0.5 else e(rnd.randbytes(16))))
    elif k == 3:  # truncated
        add(good[:rnd.randrange(len(good))] or "x")
    elif k == 4:  # garbage of the right alphabet
        add("".join(rnd.choice(alpha + ".") for _ in range(rnd.randrange(1, 120))))
    elif k == 5:  # signed under a guessed secret
        s = rnd.randbytes(32).hex().encode()
        q = b"c2\0juan@example.ph"
        add(e(q) + "." + e(hmac.new(s, b"suki-unsub-1\0" + q, hashlib.sha256).digest()[:16]))
    else:         # MAC extended or shortened by a byte
        add(p + "." + (e(base64.urlsafe_b64decode(m + "==") + b"\0") if rnd.random() < 0.5
                       else e(base64.urlsafe_b64decode(m + "==")[:15])))
for t in sorted(toks):
    print('url = "%s/u/%s"' % (url, t))
    print('output = "/dev/null"')
EOF
[ "$(grep -c '^url' "$T/forged.curl")" = 1000 ] || fail "did not make 1000 forgeries"
before=$(rcli SMEMBERS "$P:suppressed" | sort | tr '\n' ' ')$(rcli HGETALL "$P:client:c2" | tr '\n' ' ')
curl -s -X POST -d 'List-Unsubscribe=One-Click' -w '%{http_code}\n' -K "$T/forged.curl" >"$T/forged.codes"
[ "$(wc -l <"$T/forged.codes")" = 1000 ] || fail "not 1000 answers"
bad=$(grep -vc '^400$' "$T/forged.codes")
[ "$bad" = 0 ] || fail "$bad forged tokens not answered 400: $(sort "$T/forged.codes" | uniq -c | tr '\n' ' ')"
# GET with a forged token is 400 too
[ "$(code "$URL/u/$WRONG")" = 400 ] || fail "GET with a forged token not 400"
after=$(rcli SMEMBERS "$P:suppressed" | sort | tr '\n' ' ')$(rcli HGETALL "$P:client:c2" | tr '\n' ' ')
[ "$before" = "$after" ] || fail "forged tokens changed redis: '$before' -> '$after'"
[ "$(rcli EXISTS "$P:suppressed")" = 0 ] || fail "suppressed set exists after forgeries only"
ok "1000 forged tokens: all 400, nothing changed"

# ---- POST: one-click unsubscribe ----
curl -s -D "$T/ph" -o "$T/post.html" -X POST -d 'List-Unsubscribe=One-Click' "$URL/u/$TOK"
head -1 "$T/ph" | grep -q ' 200' || fail "POST status $(head -1 "$T/ph")"
grep -qi '^location:' "$T/ph" && fail "POST redirects"
grep -qi '^set-cookie:' "$T/ph" && fail "POST sets a cookie"
[ "$(rcli SISMEMBER "$P:suppressed" maria@example.ph)" = 1 ] || fail "address not suppressed"
[ "$(rcli HGET "$P:client:c1" consent)" = false ] || fail "consent not false"
[ "$(rcli HGET "$P:client:c1" email)" = Maria@Example.PH ] || fail "profile email changed"
[ "$(rcli HGET "$P:client:c2" consent)" = "" ] || fail "another client touched"
# again: same answer, nothing new
[ "$(code -X POST -d 'List-Unsubscribe=One-Click' "$URL/u/$TOK")" = 200 ] || fail "second POST not 200"
[ "$(rcli SCARD "$P:suppressed")" = 1 ] || fail "suppressed set has $(rcli SCARD "$P:suppressed") members"
ok "POST suppressed maria@example.ph and set consent=false; no redirect, no cookie"

# ---- a profile whose address has changed keeps its consent ----
rcli HSET "$P:client:c3" email new@example.ph consent true >/dev/null
T3=$(token "$SECRET" c3 old@example.ph)
[ "$(code -X POST "$URL/u/$T3")" = 200 ] || fail "POST for an old address not 200"
[ "$(rcli SISMEMBER "$P:suppressed" old@example.ph)" = 1 ] || fail "old address not suppressed"
[ "$(rcli HGET "$P:client:c3" consent)" = true ] || fail "consent of the new address changed"
# a client with no profile: address suppressed, no profile created
T4=$(token "$SECRET" ghost ghost@example.ph)
[ "$(code -X POST "$URL/u/$T4")" = 200 ] || fail "POST for a gone client not 200"
[ "$(rcli EXISTS "$P:client:ghost")" = 0 ] || fail "a profile was created for a gone client"
ok "old address and gone client handled"

# ---- a link from before the client subscribed again is refused ----
rcli HSET "$P:client:c6" email rosa@example.ph name Rosa >/dev/null
OLD6=$(token "$SECRET" c6 rosa@example.ph)
BEFORE6=$(token "$SECRET" c6 rosa@example.ph $(($(date +%s) - 60)))
[ "$(code -X POST "$URL/u/$OLD6")" = 200 ] || fail "first-format token refused"
[ "$(rcli SISMEMBER "$P:suppressed" rosa@example.ph)" = 1 ] || fail "rosa not suppressed"
rcli XADD "$P:events" '*' event '{"type":"consent.subscribed","client":"c6"}' >/dev/null
wait_for 10 '[ "$(rcli SISMEMBER "$P:suppressed" rosa@example.ph)" = 0 ]' ||
    fail "consent.subscribed did not lift the suppression"
[ "$(rcli HEXISTS "$P:subscribed" c6)" = 1 ] || fail "no subscribe time for c6"
for t in "$OLD6" "$BEFORE6"; do
    curl -s -o "$T/stale.html" -w '%{http_code}' -X POST \
        -d 'List-Unsubscribe=One-Click' "$URL/u/$t" >"$T/stale.code"
    [ "$(cat "$T/stale.code")" = 410 ] ||
        fail "a link from before the new subscription answered $(cat "$T/stale.code")"
    grep -q 'out of date' "$T/stale.html" || fail "no clear page: $(cat "$T/stale.html")"
    [ "$(rcli SISMEMBER "$P:suppressed" rosa@example.ph)" = 0 ] ||
        fail "an old link undid the new subscription"
done
grep -q 'refused unsubscribe link of client c6: made before' "$T/sukid-a.log" ||
    fail "the refusal is not logged"
# GET still shows the page (it changes nothing either way)
[ "$(code "$URL/u/$OLD6")" = 200 ] || fail "GET of an old link not 200"
sleep 1 # the new link is made in a later second than the subscription
NEW6=$(token "$SECRET" c6 rosa@example.ph "$(date +%s)")
[ "$(code -X POST "$URL/u/$NEW6")" = 200 ] || fail "a link made after the subscription refused"
[ "$(rcli SISMEMBER "$P:suppressed" rosa@example.ph)" = 1 ] || fail "new link did not suppress"
ok "re-subscribed client: old links 410 and change nothing, a new one unsubscribes"

# ---- a second daemon adopts the same secret ----
HPB=$(free_port)
CONFB=$T/b.conf
sed "s|127.0.0.1:$HP|127.0.0.1:$HPB|g" "$CONF" >"$CONFB"
start_http b "$CONFB" "$HPB"
wait_for 5 'grep -q "shared unsubscribe secret" "$T/sukid-b.log"' || fail "b did not adopt the secret"
[ "$(rcli GET "$P:secret")" = "$SECRET" ] || fail "the secret changed"
T5=$(token "$SECRET" c2 juan@example.ph)
[ "$(code -X POST "http://127.0.0.1:$HPB/u/$T5")" = 200 ] || fail "b refused a token of the shared secret"
[ "$(rcli SISMEMBER "$P:suppressed" juan@example.ph)" = 1 ] || fail "b did not suppress"
ok "second sukid shares the secret"
stop_sukid b || fail "b exit status"

# ---- a secret file overrides the shared one ----
printf 'file-secret-0123456789abcdef\n' >"$T/unsub.secret"
chmod 600 "$T/unsub.secret"
HPC=$(free_port)
CONFC=$T/c.conf
sed "s|listen = \"127.0.0.1:$HP\";|listen = \"127.0.0.1:$HPC\"; unsubscribe_secret_file = \"$T/unsub.secret\"; unsubscribe_max_age = \"30d\";|" "$CONF" >"$CONFC"
start_http c "$CONFC" "$HPC"
rcli HSET "$P:client:c5" email ana@example.ph >/dev/null
NOW=$(date +%s)
[ "$(code -X POST "http://127.0.0.1:$HPC/u/$(token "$SECRET" c5 ana@example.ph "$NOW")")" = 400 ] ||
    fail "file-secret daemon accepted a token of the redis secret"
# c limits the age of a link to 30 days: older ones, and the first format
# (made at 0 as far as it knows), are refused and change nothing
FS=file-secret-0123456789abcdef
for t in "$(token $FS c5 ana@example.ph $((NOW - 31 * 86400)))" "$(token $FS c5 ana@example.ph)"; do
    [ "$(code -X POST "http://127.0.0.1:$HPC/u/$t")" = 410 ] ||
        fail "a link older than unsubscribe_max_age not refused"
done
[ "$(rcli SISMEMBER "$P:suppressed" ana@example.ph)" = 0 ] || fail "an expired link suppressed"
grep -q 'older than http.unsubscribe_max_age' "$T/sukid-c.log" || fail "expiry not logged"
[ "$(code -X POST "http://127.0.0.1:$HPC/u/$(token $FS c5 ana@example.ph $((NOW - 29 * 86400)))")" = 200 ] ||
    fail "file-secret daemon refused its own token"
[ "$(rcli SISMEMBER "$P:suppressed" ana@example.ph)" = 1 ] || fail "c did not suppress"
ok "secret file overrides the shared secret"
stop_sukid c || fail "c exit status"

# a too short secret refuses the start
printf 'short\n' >"$T/short.secret"
chmod 600 "$T/short.secret"
sed "s|$T/unsub.secret|$T/short.secret|" "$CONFC" >"$T/d.conf"
"$SUKID" -c "$T/d.conf" >"$T/d.out" 2>&1 && fail "started with a 5-byte secret"
grep -q "too short" "$T/d.out" || fail "no clear message: $(cat "$T/d.out")"
ok "short secret refused: $(grep -o 'unsubscribe secret is too short[^;]*' "$T/d.out")"

# redis down: POST is 503 (try again), nothing lost later
stop_redis
wait_for 10 '[ "$(code "$URL/healthz")" = 503 ]' || fail "healthz not 503"
c=$(code -X POST "$URL/u/$TOK")
[ "$c" = 503 ] || fail "POST without redis answered $c"
ok "POST without redis: 503"

stop_sukid a || fail "sukid exit status $? on SIGTERM"
