#!/bin/sh
# campaign_basic.sh - campaigns end to end against real redis-server,
# aiosmtpd (content) and Postfix smtp-sink (counts), with curl for the
# unsubscribe link:
#  1. a small audience (consent = "opt-in"): personalised messages with
#     List-Unsubscribe and List-Unsubscribe-Post, skips counted by reason
#     (suppressed, no address, no consent), the owner's summary, metrics;
#  2. unsubscribing through a received message's List-Unsubscribe URL, and
#     the next campaign skipping that client; tag=, set= and the default
#     opt-out (everyone with an address who is not suppressed);
#  3. 20,000 clients at 2,000/s: everyone sent exactly once (counted at
#     the server), the skipped ones not, counters equal the server's count.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/campaign_lib.sh"
need smtp-sink

P=$SUKI_PREFIX
start_redis
start_aiosmtpd "$T/smtp"
CONF=$T/sukid.conf
camp_conf "$CONF" 'consent = "opt-in";'
start_daemon a "$CONF"

# ---- 1. small audience, content checks -------------------------------
populate 12 1 1 1 # c0..c8 get mail; c9 suppressed, c10 no address, c11 no consent
rcli HSET "$P:client:c3" locale tl >/dev/null
rcli HSET "$P:client:w1" name Wholesale email w1@example.ph segment wholesale >/dev/null
"$SUKICTL" -c "$CONF" campaign create spring --template promo \
    --audience segment=retail --owner 'Boss <boss@tindahan.ph>' >/dev/null ||
    fail "create failed"
wait_state spring completed 20
ok "campaign spring completed"
[ "$(cfield spring sent)" = 9 ] || fail "sent $(cfield spring sent), want 9"
[ "$(cfield spring skipped_by_reason.suppressed)" = 1 ] || fail "suppressed count"
[ "$(cfield spring skipped_by_reason.no-address)" = 1 ] || fail "no-address count"
[ "$(cfield spring skipped_by_reason.no-consent)" = 1 ] || fail "no-consent count"
[ "$(cfield spring failed)" = 0 ] || fail "failed count"
[ "$(cfield spring remaining)" = 0 ] || fail "remaining not 0"
# the summary goes out after the last outcome
wait_for 10 '[ "$(cfield spring summary)" = sent ]' || fail "summary not sent"
# each campaign message's sent marker records its client and campaign (what
# a bounce or a reply naming its Message-ID is about)
recs=$(for k in $(rcli --scan --pattern "$P:sent:*.campaign@*"); do rcli GET "$k"; done | sort | tr '\n' ' ')
[ "$recs" = "~campaign:c0:spring: ~campaign:c1:spring: ~campaign:c2:spring: ~campaign:c3:spring: ~campaign:c4:spring: ~campaign:c5:spring: ~campaign:c6:spring: ~campaign:c7:spring: ~campaign:c8:spring: " ] ||
    fail "campaign markers hold: $recs"

"$PY" - "$T/smtp" <<'EOF' || fail "message checks failed"
import email, email.policy, glob, json, sys, re
d = sys.argv[1]
camp, summ = {}, []
for f in sorted(glob.glob(d + "/msg-*.eml")):
    raw = open(f, "rb").read()
    meta = json.load(open(f[:-4] + ".json"))
    m = email.message_from_bytes(raw, policy=email.policy.default)
    if meta["rcpt_tos"] == ["boss@tindahan.ph"]:
        summ.append(m)
        continue
    assert len(meta["rcpt_tos"]) == 1, meta
    camp[meta["rcpt_tos"][0]] = (m, raw)
want = {"c%d@example.ph" % i for i in range(9)}
assert set(camp) == want, sorted(set(camp) ^ want)
for rcpt, (m, raw) in camp.items():
    i = rcpt.split("@")[0][1:]
    lu, lup = m["List-Unsubscribe"], m["List-Unsubscribe-Post"]
    assert lu and re.fullmatch(r"<http://127\.0\.0\.1:\d+/u/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+>", lu), lu
    assert lup == "List-Unsubscribe=One-Click", lup
    assert re.fullmatch(r"<[0-9a-f]{40}\.campaign@tindahan\.ph>", m["Message-ID"]), m["Message-ID"]
    assert b"\r\n" in raw and b"\n\n" not in raw.replace(b"\r\n", b"")
    body = m.get_body(("plain",)).get_content()
    assert lu[1:-1] in body.replace("=\n", ""), body
    if i == "3":
        assert m["Subject"] == "Alok para kay Kliyente 3", m["Subject"]
    else:
        assert m["Subject"] == "An offer for Kliyente %s" % i, m["Subject"]
        assert "campaign spring" in body and "(c%s)" % i in body, body
        assert m.get_body(("html",)) is not None
assert len(summ) == 1, len(summ)
s = summ[0].get_body(("plain",)).get_content()
assert "sent:      9" in s and "1 suppressed, 1 without an address, 1 without consent" in s, s
print("9 personalised messages + 1 summary ok")
EOF
ok "content: List-Unsubscribe, List-Unsubscribe-Post, Message-ID, locale, summary"
m=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '$1 == "suki_campaign_messages_total{result=\"sent\"}" { print $2 }')
[ "$m" = 9 ] || fail "metrics campaign sent = '$m', want 9"

# ---- 2. unsubscribe through the received header -----------------------
f=$(grep -l '"c5@example.ph"' "$T"/smtp/msg-*.json | head -1)
url=$(grep -m1 '^List-Unsubscribe:' "${f%.json}.eml" | sed 's/^[^<]*<\([^>]*\)>.*/\1/' | tr -d '\r')
[ -n "$url" ] || fail "no List-Unsubscribe in c5's message"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d 'List-Unsubscribe=One-Click' "$url")
[ "$code" = 200 ] || fail "one-click POST answered $code"
[ "$(rcli SISMEMBER "$P:suppressed" c5@example.ph)" = 1 ] || fail "c5 not suppressed"
[ "$(rcli HGET "$P:client:c5" consent)" = false ] || fail "c5 consent not false"
ok "one-click unsubscribe from c5's List-Unsubscribe header"
n0=$(ls "$T"/smtp/msg-*.eml | wc -l)
"$SUKICTL" -c "$CONF" campaign create summer --template promo --audience segment=retail >/dev/null ||
    fail "create summer"
wait_state summer completed 20
[ "$(cfield summer sent)" = 8 ] || fail "summer sent $(cfield summer sent), want 8"
[ "$(cfield summer skipped_by_reason.suppressed)" = 2 ] || fail "summer: c5 not skipped as suppressed"
grep -l '"c5@example.ph"' "$T"/smtp/msg-*.json | wc -l | grep -qx 1 || fail "c5 got a second message"
[ $(($(ls "$T"/smtp/msg-*.eml | wc -l) - n0)) = 8 ] || fail "server did not get 8 more"
ok "next campaign skipped the unsubscribed client"

# suppress / unsuppress by hand
"$SUKICTL" -c "$CONF" suppress C1@Example.PH | grep -q "c1@example.ph is suppressed" || fail "suppress output"
[ "$(rcli SISMEMBER "$P:suppressed" c1@example.ph)" = 1 ] || fail "suppress did not add"
"$SUKICTL" -c "$CONF" unsuppress c1@example.ph | grep -q "no longer" || fail "unsuppress output"
[ "$(rcli SISMEMBER "$P:suppressed" c1@example.ph)" = 0 ] || fail "unsuppress did not remove"
"$SUKICTL" -c "$CONF" suppress 'not an address' >/dev/null 2>&1; [ $? = 2 ] || fail "bad address not a usage error"

# tag= and set= audiences
rcli HSET "$P:client:c0" tags "a, vip" >/dev/null
rcli HSET "$P:client:c1" tags "vip" >/dev/null
rcli HSET "$P:client:c2" tags "vipx,b" >/dev/null
rcli SADD picked c2 c4 ghost >/dev/null
"$SUKICTL" -c "$CONF" campaign create vip --template promo --audience tag=vip >/dev/null || fail "create vip"
"$SUKICTL" -c "$CONF" campaign create picked --template promo --audience set=picked >/dev/null || fail "create picked"
wait_state vip completed 20
wait_state picked completed 20
[ "$(cfield vip sent)" = 2 ] || fail "tag=vip sent $(cfield vip sent), want 2"
[ "$(cfield picked sent)" = 2 ] || fail "set=picked sent $(cfield picked sent), want 2"
[ "$(cfield picked skipped_by_reason.no-address)" = 1 ] || fail "set member without a profile not skipped"
ok "tag= and set= audiences"

# opt-out (the default): consent=false does not matter, suppression does
camp_conf "$CONF"
kill -HUP "$SUKID_PID_a"
wait_for 10 'grep -q "configuration reloaded" "$T/sukid-a.log"' || fail "reload"
"$SUKICTL" -c "$CONF" campaign create optout --template promo --audience segment=retail >/dev/null
wait_state optout completed 20
[ "$(cfield optout sent)" = 9 ] || fail "opt-out sent $(cfield optout sent), want 9"
[ "$(cfield optout skipped_by_reason.no-consent)" = 0 ] || fail "opt-out skipped for consent"
[ "$(cfield optout skipped_by_reason.suppressed)" = 2 ] || fail "opt-out suppressed count"
grep -l '"c11@example.ph"' "$T"/smtp/msg-*.json | wc -l | grep -qx 1 || fail "c11 (consent=false) not mailed under opt-out"
ok "opt-out sends to everyone with an address who is not suppressed"
stop_sukid a || fail "sukid exit status"
stop_smtp

# ---- 3. 20,000 clients at 2,000/s, counted at smtp-sink ---------------
rcli FLUSHALL >/dev/null
start_sink "$T/sink"
camp_conf "$CONF" 'rate = "100/s"; consent = "opt-in";'
start_daemon b "$CONF"
populate 20000 100 100 100
"$SUKICTL" -c "$CONF" campaign create big --template promo --audience all --rate 2000/s >/dev/null ||
    fail "create big"
wait_state big completed 120
"$SUKICTL" -c "$CONF" campaign status big
sink_rcpts "$T/sink" >"$T/rcpts"
total=$(wc -l <"$T/rcpts")
dups=$(sort "$T/rcpts" | uniq -d | wc -l)
[ "$dups" = 0 ] || fail "$dups recipients got the campaign twice"
[ "$total" = 19700 ] || fail "server got $total messages, want 19700"
[ "$(cfield big sent)" = "$total" ] || fail "status sent $(cfield big sent) != server $total"
for r in suppressed no-address no-consent; do
    [ "$(cfield big skipped_by_reason.$r)" = 100 ] || fail "skipped $r: $(cfield big skipped_by_reason.$r)"
done
[ "$(cfield big queued)" = 0 ] || fail "queued left"
[ "$(rcli HLEN "$P:cledger:big")" = 20000 ] || fail "ledger has $(rcli HLEN "$P:cledger:big") entries"
sort -u "$T/rcpts" >"$T/got"
seq 0 19699 | sed 's/.*/c&@example.ph/' | sort >"$T/want"
cmp -s "$T/got" "$T/want" || fail "recipients differ from the expected 19700"
ok "20000 clients: 19700 sent once each (server count = status), 300 skipped by reason"
stop_sukid b || fail "sukid exit status"
