#!/bin/sh
# soak.sh - kill -9 at random moments while everything runs at once: a
# campaign to 4,000 clients, 3,000 events flowing in (each schedules a
# reminder that is due at once) and their reminders going out, all through
# one real smtp-sink.
#  A. SOAK_KILLS (default 30) kill -9 of sukid, restarted each time: every
#     event applied exactly once, every reminder and campaign message at the
#     server exactly once, nothing pending, nothing stuck in flight.
#  B. SOAK_AGENT_KILLS (default 5) kill -9 of the delivery agent while 2,000
#     more reminders go out: none lost; a message the agent had handed to
#     the server but not yet marked can go out twice (the window sukid(8)
#     documents), and the test prints how many did.
#  Then the last sukid is left idle: its descriptors and RSS do not grow,
#  and it uses next to no CPU.
# SOAK_KILLS=100 SOAK_AGENT_KILLS=20 tests/chaos/soak.sh is the long run.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/campaign_lib.sh"
need smtp-sink
KILLS=${SOAK_KILLS:-30}
AKILLS=${SOAK_AGENT_KILLS:-5}
P=$SUKI_PREFIX

start_redis
start_sink "$T/sink"
CONF=$T/sukid.conf
camp_conf "$CONF"
ln -sf "$top_builddir/plugins/.libs/followup.so" "$T/plugins/followup.so"
cat >>"$CONF" <<'EOC'
rules = ( { name = "soak"; use = "followup"; on = [ "soak.*" ]; after = "1h";
            notify = [ "ops@tindahan.ph" ]; template = "promo"; } );
EOC
sed -i 's|^intake = { |intake = { max_deliveries = 1000; |' "$CONF"
"$SUKID" -t -c "$CONF" >/dev/null || fail "config refused"
start_daemon a "$CONF"
populate 4000
"$SUKICTL" -c "$CONF" campaign create soak --template promo --audience all \
    --rate 400/s >/dev/null || fail "campaign create"

# push N events of TYPE for clients PREFIX0.., at an hour ago: each one's
# reminder is due at once
push_events()
{
    "$PY" - "$1" "$2" "$3" "$P" <<'EOP' | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
import json, sys, time
n, typ, cp, P = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
out = sys.stdout.buffer
for i in range(n):
    ev = json.dumps({"type": typ, "client": "%s%d" % (cp, i), "at": at})
    args = [b"XADD", (P + ":events").encode(), b"*", b"event", ev.encode()]
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
EOP
}
( for k in 0 1 2 3 4 5; do
    push_events 500 soak.a "e${k}x"
    sleep 0.4
  done ) &
PRODUCER=$!
lib_track $PRODUCER

sukid_pid() { eval "echo \$SUKID_PID_a"; }
rnd() { echo "0.$(($(od -An -N1 -tu1 /dev/urandom) % 6 + 2))"; }
k=0
while [ $k -lt "$KILLS" ]; do
    sleep "$(rnd)"
    stop_sukid a KILL
    k=$((k + 1))
    start_daemon a "$CONF"
done
wait $PRODUCER
lib_untrack $PRODUCER
ok "A: $KILLS kill -9 of sukid under load"

reminders() { grep -c '^X-Rcpt-Args: <ops@tindahan.ph>' "$T/sink/dump" 2>/dev/null || true; }
wait_state soak completed 180
wait_for 120 '[ "$(stat applied)" -ge 3000 ] && [ "$(rcli ZCARD "$P:jobs")" = 0 ]' ||
    fail "A: applied $(stat applied), jobs left $(rcli ZCARD "$P:jobs")"
sleep 2
[ "$(stat applied)" = 3000 ] || fail "A: applied $(stat applied), want 3000"
[ "$(group_pending)" = 0 ] || fail "A: pending $(group_pending)"

# check_sink WANT_REMINDERS ALLOW_DUP_REMINDERS - per-recipient and
# per-Message-ID counts at the server; prints "dups N"
check_sink()
{
    "$PY" - "$T/sink/dump" "$1" "$2" <<'EOP'
import re, sys, collections
data = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
want_rem, allow = int(sys.argv[2]), sys.argv[3] == "1"
camp, rem = collections.Counter(), collections.Counter()
for p in re.split(r"(?m)^(?=X-Client-Addr: )", data):
    m = re.search(r"(?m)^X-Rcpt-Args: <([^>]*)>", p)
    if not m or m.group(1) == "probe@test":
        continue
    mid = re.search(r"(?mi)^Message-ID: (\S+)", p).group(1)
    (rem if m.group(1) == "ops@tindahan.ph" else camp)[
        mid if m.group(1) == "ops@tindahan.ph" else m.group(1)] += 1
assert len(camp) == 4000, "campaign recipients %d, want 4000" % len(camp)
cd = [r for r, n in camp.items() if n > 1]
assert not cd, "%d campaign recipients twice, e.g. %s" % (len(cd), cd[:3])
assert len(rem) == want_rem, "reminders %d distinct, want %d" % (len(rem), want_rem)
rd = sum(n - 1 for n in rem.values())
assert allow or rd == 0, "%d reminders twice" % rd
print("dups %d" % rd)
EOP
}
out=$(check_sink 3000 0) || fail "A: $out"
ok "A: 3,000 events applied once, 3,000 reminders and 4,000 campaign messages at the server, each once"

# B: the agent killed while reminders go out
push_events 2000 soak.b f &
PRODUCER=$!
lib_track $PRODUCER
k=0
while [ $k -lt "$AKILLS" ]; do
    sleep "$(rnd)"
    ap=$(agent_pid a)
    [ -n "$ap" ] && kill -9 "$ap" 2>/dev/null
    k=$((k + 1))
    # the next agent: sukid starts one at once, or after 1 s
    wait_for 10 '[ "$(agent_pid a)" != "$ap" ]' || fail "B: no new agent after kill $k"
done
wait $PRODUCER
lib_untrack $PRODUCER
wait_for 120 '[ "$(stat applied)" -ge 5000 ] && [ "$(rcli ZCARD "$P:jobs")" = 0 ]' ||
    fail "B: applied $(stat applied), jobs left $(rcli ZCARD "$P:jobs")"
sleep 2
out=$(check_sink 5000 1) || fail "B: $out"
ok "B: $AKILLS kill -9 of the agent: no reminder lost, $(echo "$out" | sed 's/dups //') sent twice (the agent's documented window)"

# idle: descriptors and memory flat, CPU near zero
pid=$(sukid_pid)
fds() { ls /proc/"$1"/fd | wc -l; }
rss() { awk '/^VmRSS/ { print $2 }' /proc/"$1"/status; }
ticks() { awk '{ print $14 + $15 }' /proc/"$1"/stat; }
f0=$(fds "$pid") r0=$(rss "$pid") t0=$(ticks "$pid")
sleep 5
f1=$(fds "$pid") r1=$(rss "$pid") t1=$(ticks "$pid")
echo "idle sukid: fds $f0 -> $f1, RSS $r0 -> $r1 KiB, CPU $((t1 - t0)) ticks in 5 s"
[ "$f1" -le "$((f0 + 2))" ] || fail "descriptors grew: $f0 -> $f1"
[ "$((t1 - t0))" -le 100 ] || fail "idle sukid busy: $((t1 - t0)) ticks in 5 s"
ok "idle: fds $f0 -> $f1, RSS $r0 -> $r1 KiB, $((t1 - t0)) CPU ticks in 5 s"
stop_sukid a || fail "exit status $?"
