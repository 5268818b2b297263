#!/bin/sh
# bench_inbound.sh - the IMAP poller: messages processed per second from a
# mailbox of N (10,000) messages in a real Dovecot on loopback (IMAPS), and
# sukid's RSS while it works through them. The mix is a busy reply
# address's: 70% replies to mail suki sent (one contact.email each), 10%
# bounces (5.x.x, suppressed, email.bounced), 10% out-of-office, 10% other
# mail. Messages are written into the maildir directly (imaplib APPEND of
# 10,000 would take longer than the run). Prints figures; asserts nothing
# but that every message was processed.
#
#   top_srcdir=/work/main top_builddir=/work/build-bench \
#       sh bench/bench_inbound.sh [N]
#
# Use a build without sanitizers (configure CFLAGS=-O2).
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/dovecot_lib.sh"
need redis-server redis-cli "$SUKID" "$SUKICTL" "$PY"
N=${1:-10000}
P=$SUKI_PREFIX

start_redis --appendonly no
start_dovecot # its probe message is UID 1
CLIENTS=1000
# what suki sent: one record per client, and the profiles
"$PY" - "$P" "$CLIENTS" <<'PYEOF' | rcli --pipe >/dev/null || fail "records"
import sys
p, n = sys.argv[1], int(sys.argv[2])
def cmd(*a):
    out = "*%d\r\n" % len(a)
    for x in a:
        x = str(x)
        out += "$%d\r\n%s\r\n" % (len(x.encode()), x)
    sys.stdout.write(out)
for i in range(n):
    cmd("SET", "%s:sent:<m%d@example.com>" % (p, i), "thanks:c%d::" % i,
        "EX", 86400)
    cmd("HSET", "%s:client:c%d" % (p, i), "email", "c%d@example.org" % i,
        "manager", "mgr@example.com")
PYEOF
# the mailbox: N messages straight into the maildir (owned by Dovecot's
# mail user); Dovecot indexes them at the first SELECT
"$PY" - "$DC/mail/suki" "$N" "$CLIENTS" "$top_srcdir/tests/integration" <<'PYEOF' ||
import os, sys
sys.path.insert(0, sys.argv[4])
import imap_fill
d, n, clients = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
uid, gid = os.stat(d).st_uid, os.stat(d).st_gid
for i in range(n):
    c = i % clients
    mid = "<m%d@example.com>" % c
    k = i % 10
    if k < 7:
        msg = imap_fill.reply(mid, "c%d@example.org" % c, "Re: thanks", i)
    elif k == 7:
        msg = imap_fill.dsn(mid, "c%d@example.org" % c, "5.1.1")
    elif k == 8:
        msg = imap_fill.ooo(mid, "c%d@example.org" % c)
    else:
        msg = imap_fill.other()
    path = "%s/new/%010d.bench%d.host" % (d, i, i)
    with open(path, "wb") as f:
        f.write(msg)
    os.chown(path, uid, gid)
PYEOF
    fail "fill"
CONF=$T/sukid.conf
printf 'secret\n' >"$T/imap.pass"
chmod 600 "$T/imap.pass"
LOG_LEVEL=notice write_conf "$CONF" "inbound = { url = \"imaps://127.0.0.1:$IMAPS_PORT/INBOX\"; username = \"suki\";
  password_file = \"$T/imap.pass\"; ca_file = \"$DC/cert.pem\"; poll = \"1s\"; };"
now_ms() { echo $(($(date +%s%N) / 1000000)); }
cpu_ms() { awk '{ print ($14 + $15) * 10 }' /proc/"$1"/stat; } # 100 Hz ticks
want=$((N + 1))
echo "inbound benchmark: $N messages (+1), $(nproc) cores"
t0=$(now_ms)
start_sukid a "$CONF"
SPID=$SUKID_PID
rss_max=0
while :; do
    done_n=$(rcli HGET "$P:inbound" uids)
    rss=$(awk '/^VmRSS/ { print $2 }' /proc/$SPID/status)
    [ "${rss:-0}" -gt "$rss_max" ] && rss_max=$rss
    [ "${done_n:-0}" -ge "$want" ] && break
    kill -0 $SPID 2>/dev/null || fail "sukid died"
    [ $(($(now_ms) - t0)) -lt 900000 ] || fail "not done in 15 min: ${done_n:-0}"
    sleep 0.5
done
t1=$(now_ms)
cpu=$(cpu_ms $SPID)
hwm=$(awk '/^VmHWM/ { print $2 }' /proc/$SPID/status)
dt=$((t1 - t0))
echo "processed $want messages in $dt ms: $((want * 1000 / dt)) messages/s"
echo "sukid CPU $cpu ms ($((cpu * 1000 / want)) us a message); RSS max sampled ${rss_max} KiB, VmHWM ${hwm} KiB"
"$SUKICTL" -c "$CONF" inbound status | sed 's/^/  /'
echo "stream: $(rcli XLEN "$P:events") events added"
stop_sukid a || fail "sukid did not stop cleanly"
