#!/bin/sh
# campaign_kill.sh - kill -9 sukid three times while a 20,000-client
# campaign runs at 2,000/s (real redis-server and Postfix smtp-sink), restart
# it each time, and check the outcome at the server: every recipient that
# should get the campaign got it, nobody else did, the ledger and counters
# agree with the server, nobody was skipped silently and nobody got it twice.
#
# A message the server took in the instant before the kill, whose "250" had
# not reached sukid's bookkeeping, is finished by sukid's delivery agent
# (a child process that outlives it), which sets its sent marker; the next
# runner finds the marker and records it as sent. So the server must see
# every recipient exactly once.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/campaign_lib.sh"
need smtp-sink

P=$SUKI_PREFIX
start_redis
start_sink "$T/sink"
CONF=$T/sukid.conf
camp_conf "$CONF" 'consent = "opt-in";'
start_daemon a "$CONF"
populate 20000 100 100 100
"$SUKICTL" -c "$CONF" campaign create kill --template promo --audience all \
    --rate 2000/s --owner boss@tindahan.ph >/dev/null || fail "create"

sent() { cfield kill sent; }
for k in 1 2 3; do
    want=$((k * 4000))
    wait_for 60 "[ \$(sent) -ge $want ]" || fail "no progress to $want (sent $(sent))"
    # a random moment within the next half second
    sleep "0.$(($(od -An -N1 -tu1 /dev/urandom) % 5))"
    stop_sukid a KILL
    ok "kill -9 #$k at sent=$(sent) queued=$(cfield kill queued)"
    start_daemon a "$CONF"
done
wait_state kill completed 120
wait_for 15 '[ "$(cfield kill summary)" = sent ]' || fail "owner summary not sent"
"$SUKICTL" -c "$CONF" campaign status kill

"$PY" - "$T/sink/dump" <<'EOF' || fail "server-side checks failed"
import re, sys, collections
data = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
# smtp-sink appends each transaction: X-* envelope lines, then the message,
# then an empty line; split on the envelope header.
parts = re.split(r"(?m)^(?=X-Client-Addr: )", data)
by_rcpt = collections.defaultdict(list)
summary = 0
for p in parts:
    m = re.search(r"(?m)^X-Rcpt-Args: <([^>]*)>", p)
    if not m or m.group(1) == "probe@test":
        continue
    rcpt = m.group(1)
    if rcpt == "boss@tindahan.ph":
        summary += 1
        continue
    mid = re.search(r"(?mi)^Message-ID: (\S+)", p).group(1)
    body = p.split("\r\n\r\n", 1)[-1] if "\r\n\r\n" in p else p.split("\n\n", 1)[-1]
    by_rcpt[rcpt].append((mid, re.sub(r"(?m)^(Date|Received|X-[A-Za-z-]+): .*\n?", "", body)))
want = {"c%d@example.ph" % i for i in range(19700)}
got = set(by_rcpt)
missing, extra = want - got, got - want
assert not missing, "never received: %d, e.g. %s" % (len(missing), sorted(missing)[:5])
assert not extra, "should not have received: %s" % sorted(extra)[:5]
dup = {r: len(m) for r, m in by_rcpt.items() if len(m) > 1}
assert not dup, "%d recipients got the campaign more than once, e.g. %s" % (
    len(dup), sorted(dup.items())[:5])
assert summary == 1, "owner summaries: %d" % summary
print("distinct recipients %d (all expected), each exactly once" % len(got))
open(sys.argv[1] + ".distinct", "w").write(str(len(got)))
EOF
ok "$(cat "$T/sink/dump.distinct") recipients at the server, each exactly once"
[ "$(cfield kill sent)" = 19700 ] || fail "status sent $(cfield kill sent), want 19700"
for r in suppressed no-address no-consent; do
    [ "$(cfield kill skipped_by_reason.$r)" = 100 ] || fail "skipped $r: $(cfield kill skipped_by_reason.$r)"
done
[ "$(cfield kill queued)" = 0 ] || fail "queued left: $(cfield kill queued)"
[ "$(cfield kill failed)" = 0 ] || fail "failed: $(cfield kill failed)"
[ "$(rcli HLEN "$P:cledger:kill")" = 20000 ] || fail "ledger entries $(rcli HLEN "$P:cledger:kill")"
[ "$(rcli SCARD "$P:cpending:kill")" = 0 ] || fail "pending left"
[ "$(rcli SCARD "$P:cinflight:kill")" = 0 ] || fail "in-flight left"
ok "status agrees: 19700 sent, 300 skipped by reason, nothing queued"
stop_sukid a || fail "sukid exit status"
