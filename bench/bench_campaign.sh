#!/bin/sh
# bench_campaign.sh - campaign figures against a real redis-server and
# Postfix smtp-sink (no dump, so the sink costs little):
#   1. messages/s of one campaign to smtp-sink (N clients, default 50,000,
#      no rate limit on the campaign or the transport);
#   2. time from `campaign create` to the first message accepted by the
#      server for a 1,000,000-client audience (M, default 1000000), and
#      sukid's memory (VmRSS peak, sampled every 200 ms, and VmHWM) while
#      that campaign runs for 30 s at full speed.
# Prints figures; asserts nothing.
#
#   top_srcdir=/work/main top_builddir=/work/build-bench \
#       sh bench/bench_campaign.sh [N] [M]
#
# Use a build without sanitizers (configure CFLAGS=-O2).
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/campaign_lib.sh"
need smtp-sink
N=${1:-50000}
M=${2:-1000000}
RUN_S=${RUN_S:-30}
CONNS=${CONNS:-8}

start_redis --appendonly no
SMTP_PORT=$(free_port)
_u=
[ "$(id -u)" = 0 ] && _u="-u nobody"
# shellcheck disable=SC2086
smtp-sink $_u "127.0.0.1:$SMTP_PORT" 512 >"$T/sink.log" 2>&1 &
lib_track $!
wait_for 10 "port_open $SMTP_PORT" ||
    fail "smtp-sink did not start"
CONF=$T/sukid.conf
LOG_LEVEL=notice camp_conf "$CONF" 'rate = "1000000/s";' \
    "max_connections = $CONNS;"
now_ms() { echo $(($(date +%s%N) / 1000000)); }
hget() { rcli HGET "$SUKI_PREFIX:campaign:$1" "$2"; }

echo "== 1. throughput: $N clients, $CONNS SMTP connections"
populate "$N"
rcpu() { rcli INFO cpu | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%d", s * 1000000 }'; }
ticks() { [ -n "$1" ] && awk '{ print $14 + $15 }' /proc/"$1"/stat || echo 0; }
RCPU0=$(rcpu)
start_daemon a "$CONF"
"$SUKICTL" -c "$CONF" campaign create tput --template promo --audience all \
    >/dev/null || fail "create"
wait_for 600 '[ "$(hget tput state)" = completed ]' || fail "not completed"
sent=$(hget tput sent)
t_start=$(hget tput started)
t_end=$(hget tput finished)
ms=$((t_end - t_start))
echo "sent $sent in $ms ms: $((sent * 1000 / (ms > 0 ? ms : 1))) messages/s" \
    "(sukid VmHWM $(awk '/^VmHWM/ { print $2 }' /proc/"$SUKID_PID"/status) kB," \
    "its delivery agent $(awk '/^VmHWM/ { print $2 }' /proc/"$(agent_pid a)"/status) kB)"
HZ=$(getconf CLK_TCK)
echo "CPU per message: sukid $(($(ticks "$SUKID_PID") * 1000000 / HZ / sent)) us," \
    "its delivery agent $(($(ticks "$(agent_pid a)") * 1000000 / HZ / sent)) us," \
    "redis $((($(rcpu) - RCPU0) / sent)) us"
stop_sukid a || fail "stop"

echo "== 2. $M clients: time to the first message, memory"
rcli FLUSHALL >/dev/null
t0=$(now_ms)
populate "$M"
echo "populated $M client profiles in $(($(now_ms) - t0)) ms" \
    "(redis used_memory $(rcli INFO memory | sed -n 's/^used_memory_human:\(.*\)\r$/\1/p'))"
start_daemon b "$CONF"
rss0=$(awk '/^VmRSS/ { print $2 }' /proc/"$SUKID_PID"/status)
t0=$(now_ms)
"$SUKICTL" -c "$CONF" campaign create huge --template promo --audience all \
    >/dev/null || fail "create"
while [ -z "$(hget huge sent)" ] || [ "$(hget huge sent)" = 0 ]; do
    sleep 0.01
    [ $(($(now_ms) - t0)) -gt 60000 ] && fail "no message within 60 s"
done
first=$(($(now_ms) - t0))
echo "first message accepted and recorded $first ms after create" \
    "(the daemons look for new campaigns every 250 ms)"
peak=0
end=$(($(now_ms) + RUN_S * 1000))
while [ "$(now_ms)" -lt "$end" ]; do
    r=$(awk '/^VmRSS/ { print $2 }' /proc/"$SUKID_PID"/status)
    [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.2
done
s=$(hget huge sent)
hwm=$(awk '/^VmHWM/ { print $2 }' /proc/"$SUKID_PID"/status)
echo "after ${RUN_S}s: sent $s ($((s / RUN_S))/s), queued $(hget huge queued);" \
    "sukid VmRSS at start $rss0 kB, peak $peak kB ($((peak / 1024)) MiB)," \
    "VmHWM $hwm kB; delivery agent VmHWM" \
    "$(awk '/^VmHWM/ { print $2 }' /proc/"$(agent_pid b)"/status) kB"
"$SUKICTL" -c "$CONF" campaign status huge | grep -E '^(remaining|sent)'
"$SUKICTL" -c "$CONF" campaign cancel huge >/dev/null
stop_sukid b || fail "stop"
