#!/bin/sh
# bench_report.sh - what the monthly reports cost. Prints figures; asserts
# nothing. Use builds without sanitizers (configure CFLAGS=-O2).
#
#   top_srcdir=. OLD=/path/to/main-build NEW=/path/to/this-build \
#       sh bench/bench_report.sh intake [N] [ROUNDS]
#     intake with the shipped rules and a CRM's day (sukitest.py gen --mix,
#     19,997 clients of 1,000 managers), drained by one sukid: OLD (a build
#     without the counters) and NEW with reports.monthly on, alternated
#     ROUNDS times (default 5), events/s each and the ratio NEW/OLD per
#     round, then the medians. NEW without reports runs too (counters off).
#   top_srcdir=. NEW=/path/to/this-build sh bench/bench_report.sh send [M] [C]
#     M managers (1,000) with C clients each (100), a month of counters
#     (20 events per client): the time from a report run's start until
#     every manager's report and the roll-up are delivered (spool), and the
#     Redis bytes per manager-month (MEMORY USAGE of the counter keys).
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${NEW:?NEW=build directory}
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli
mode=${1:-intake}

start_redis --appendonly no
now_ms() { echo $(($(date +%s%N) / 1000000)); }
RULES=$(awk '/^roles = \{/,/^\};/; /^rules = \(/,/^\);/' "$top_srcdir/conf/sukid.conf")
REPORTS='reports = { monthly = { day = 1; at = "08:00"; timezone = "Asia/Manila"; }; };'

# Redis's CPU (user + sys) so far, in microseconds
redis_cpu_us()
{
    rcli INFO cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ { s += $2 }
        END { printf "%.0f\n", s * 1000000 }'
}

# drain LABEL BUILD CONF N: push N events, one sukid of BUILD drains them;
# prints events/s and Redis's CPU per event, sets RATE and CPU (ns/event).
# The CPU of Redis is steadier than wall time on a shared host: it counts
# what the counters cost the one thread every sukid shares.
drain()
{
    rcli FLUSHALL >/dev/null
    gen_events "$4" --mix 19997 --managers "${MANAGERS:-1000}"
    # the profiles a running CRM has synced before the day: each client
    # has its manager (the day's client.updated events name the same one),
    # so the counters see every manager, not only those updated today
    awk -v m="${MANAGERS:-1000}" 'BEGIN { for (c = 0; c < 19997; c++)
        printf "HSET suki:client:c%d manager am%d@example.ph email c%d@example.ph timezone Asia/Manila locale en\r\n", c, c % m, c }' |
        rcli --pipe >/dev/null
    c0=$(redis_cpu_us)
    [ -z "${INSTR:-}" ] || callgrind_control -i on "$REDIS_PID" >/dev/null 2>&1
    t0=$(now_ms)
    "$2/sukid" -c "$3" >>"$T/sukid-$1.log" 2>&1 &
    pid=$!
    lib_track $pid
    while [ "$(stat applied)" -lt "$4" ]; do
        kill -0 $pid 2>/dev/null || fail "sukid $1 exited: $(tail -3 "$T/sukid-$1.log")"
        sleep 0.02
    done
    t1=$(now_ms)
    c1=$(redis_cpu_us)
    if [ -n "${INSTR:-}" ]; then
        callgrind_control -i off "$REDIS_PID" >/dev/null 2>&1
        callgrind_control -d "$REDIS_PID" >/dev/null 2>&1
        # the newest dump holds what Redis ran during this drain
        INS=$(grep -h '^totals:' $(ls -t "$T"/cg.out.* | head -1) | awk '{ print $2 }')
    fi
    kill $pid
    wait $pid
    lib_untrack $pid
    RATE=$(($4 * 1000 / (t1 - t0)))
    CPU=$(((c1 - c0) * 1000 / $4))
    echo "  $1: $4 events in $((t1 - t0)) ms = $RATE events/s, Redis CPU $CPU ns/event"
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

if [ "$mode" = intake ]; then
    OLD=${OLD:?OLD=build directory without the counters}
    N=${2:-100000}
    R=${3:-5}
    PLUGINS_DIR=$top_builddir/plugins/.libs TEMPLATES_DIR=$top_srcdir/conf/templates \
        LOG_LEVEL=notice write_conf "$T/off.conf" "$RULES"
    PLUGINS_DIR=$top_builddir/plugins/.libs TEMPLATES_DIR=$top_srcdir/conf/templates \
        LOG_LEVEL=notice write_conf "$T/on.conf" "$RULES
$REPORTS"
    # the old build with its own plugins, and the templates it knows
    mkdir -p "$T/old-templates"
    cp "$top_srcdir"/conf/templates/*.tmpl "$T/old-templates/"
    rm -f "$T"/old-templates/monthly-report.*
    sed "s|$top_builddir/plugins|$OLD/plugins|; s|$top_srcdir/conf/templates|$T/old-templates|" \
        "$T/off.conf" >"$T/old.conf"
    echo "report counters, intake: $N events a run, $R rounds, $(nproc) cores"
    olds="" news="" offs="" ratios="" cratios="" ocs="" ncs="" fcs=""
    for r in $(seq 1 "$R"); do
        echo "round $r"
        drain old "$OLD" "$T/old.conf" "$N"; o=$RATE oc=$CPU
        drain new-reports-on "$NEW" "$T/on.conf" "$N"; n=$RATE nc=$CPU
        drain new-reports-off "$NEW" "$T/off.conf" "$N"; f=$RATE fc=$CPU
        olds="$olds $o" news="$news $n" offs="$offs $f"
        ratios="$ratios $((n * 1000 / o))"
        cratios="$cratios $((nc * 1000 / fc))"
        ocs="$ocs $oc" ncs="$ncs $nc" fcs="$fcs $fc"
    done
    echo "median events/s: old $(echo "$olds" | median), new with counters" \
        "$(echo "$news" | median), new without $(echo "$offs" | median);" \
        "median ratio new-with/old (per mille): $(echo "$ratios" | median)"
    echo "median Redis CPU ns/event: old $(echo "$ocs" | median), new with" \
        "counters $(echo "$ncs" | median), new without $(echo "$fcs" | median);" \
        "median ratio new-with/new-without (per mille): $(echo "$cratios" | median)"
    exit 0
fi

if [ "$mode" = instr ]; then
    # Instructions Redis runs per event (callgrind), which a shared host's
    # noise does not move: OLD and NEW, each without and with the counters.
    need valgrind callgrind_control
    N=${2:-20000}
    stop_redis
    PLUGINS_DIR=$top_builddir/plugins/.libs TEMPLATES_DIR=$top_srcdir/conf/templates \
        LOG_LEVEL=notice write_conf "$T/off.conf" "$RULES"
    PLUGINS_DIR=$top_builddir/plugins/.libs TEMPLATES_DIR=$top_srcdir/conf/templates \
        LOG_LEVEL=notice write_conf "$T/on.conf" "$RULES
$REPORTS"
    for c in off on; do
        sed "s|$top_builddir/plugins|${OLD:?OLD=build directory}/plugins|" \
            "$T/$c.conf" >"$T/old-$c.conf"
    done
    echo "report counters, Redis instructions per event: $N events a run"
    INSTR=1
    for run in "old-off $OLD $T/old-off.conf" "old-on $OLD $T/old-on.conf" \
        "new-off $NEW $T/off.conf" "new-on $NEW $T/on.conf"; do
        set -- $run
        valgrind --tool=callgrind --instr-atstart=no \
            --callgrind-out-file="$T/cg.out.%p" redis-server --port "$REDIS_PORT" \
            --bind 127.0.0.1 --save '' --appendonly no --logfile "$T/redis-cg.log" \
            >/dev/null 2>&1 &
        REDIS_PID=$!
        lib_track $REDIS_PID
        wait_for 30 '[ "$(rcli PING 2>/dev/null)" = PONG ]' || fail "redis under callgrind did not start"
        drain "$1" "$2" "$3" "$N"
        echo "  $1: $((INS / N)) instructions per event"
        eval "ins_$(echo "$1" | tr - _)=$INS"
        stop_redis
    done
    echo "per mille, with/without counters: old $((ins_old_on * 1000 / ins_old_off))," \
        "new $((ins_new_on * 1000 / ins_new_off)); new/old with counters:" \
        "$((ins_new_on * 1000 / ins_old_on))"
    exit 0
fi

if [ "$mode" = memory ]; then
    # Redis bytes per manager-month: the counters a CRM's day of N events
    # (1,000 managers) leaves in this month's hash, over its managers
    N=${2:-100000}
    PLUGINS_DIR=$top_builddir/plugins/.libs TEMPLATES_DIR=$top_srcdir/conf/templates \
        LOG_LEVEL=notice write_conf "$T/on.conf" "$RULES
$REPORTS"
    drain counters "$NEW" "$T/on.conf" "$N"
    k=$(rcli --scan --pattern 'suki:report:*' | head -1)
    bytes=$(rcli MEMORY USAGE "$k" SAMPLES 0)
    fields=$(rcli HLEN "$k")
    mgrs=$(rcli HKEYS "$k" | sed 's/^[^ ]* //' | sort -u | wc -l)
    tk=$(rcli --scan --pattern 'suki:report-tickets:*' | head -1)
    tb=$(rcli MEMORY USAGE "$tk" SAMPLES 0)
    tn=$(rcli HLEN "$tk")
    echo "memory: $k: $fields fields for $mgrs managers, $bytes bytes =" \
        "$((bytes / mgrs)) bytes per manager-month; tickets $tk: $tn tickets," \
        "$tb bytes = $((tb / tn)) bytes per ticket"
    exit 0
fi

if [ "$mode" = send ]; then
    M=${2:-1000}
    C=${3:-100}
    PLUGINS_DIR=$top_builddir/plugins/.libs TEMPLATES_DIR=$top_srcdir/conf/templates \
        LOG_LEVEL=notice write_conf "$T/send.conf" "$RULES
reports = { monthly = { timezone = \"Asia/Manila\"; to = [ \"manager\", \"boss@example.ph\" ]; }; };"
    PM=$("$PY" -c 'import datetime, zoneinfo
d = datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Manila")).date().replace(day=1) - datetime.timedelta(days=1)
print(d.strftime("%Y-%m"))')
    # the month's counters as the intake leaves them (20 events a client
    # in 8 types, and the other figures), M x C profiles, and one contract
    # a client whose renewal alert is pending (a tenth end within 60 days)
    "$PY" - "$M" "$C" "$PM" "$top_srcdir" <<'PYEOF' | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
import sys, time
sys.path.insert(0, sys.argv[4] + "/tests/integration")
from sukitest import resp
M, C, pm = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
w = sys.stdout.buffer
now = int(time.time() * 1000)
types = ["meeting.held", "contact.call", "contact.email", "proposal.sent",
         "order.fulfilled", "complaint.opened", "complaint.resolved",
         "deal.won"]
for m in range(M):
    mg = "am%d@example.ph" % m
    kv = []
    for t, n in zip(types, (600, 500, 400, 200, 150, 60, 50, 40)):
        kv += ["e:%s %s" % (t, mg), str(n)]
    kv += ["won " + mg, "40", "won_cents " + mg, "123456700",
           "c_opened " + mg, "60", "c_resolved " + mg, "50",
           "c_open " + mg, "10", "c_ttr_ms " + mg, "360000000",
           "c_ttr_n " + mg, "50", "sent_rem " + mg, "300"]
    w.write(resp("HSET", "suki:report:" + pm, *kv))
    for c in range(C):
        cid = "c%d-%d" % (m, c)
        w.write(resp("HSET", "suki:client:" + cid, "name", "Client " + cid,
                     "email", cid + "@client.ph", "manager", mg))
        soon = c % 10 == 0
        ends = now + (30 if soon else 200) * 86400000
        due = ends - 7 * 86400000
        key = "contract-renewal:%s:k%s:7d" % (cid, cid)
        body = ('{"d":%d,"e":{"t":"contract.signed","a":%d,"d":{"contract":'
                '"k%s","ends_at":"%s"}}}') % (due, now, cid,
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ends / 1000)))
        w.write(resp("HSET", "suki:job:" + cid, key, body))
        w.write(resp("ZADD", "suki:jobs", str(due), key))
w.flush()
PYEOF
    mb=$(rcli MEMORY USAGE "suki:report:$PM" SAMPLES 0)
    echo "send: $M managers x $C clients, $(rcli ZCARD suki:jobs) contract jobs," \
        "$(rcli HLEN "suki:report:$PM") counter fields, $mb bytes =" \
        "$((mb / M)) bytes per manager-month"
    "$NEW/sukid" -c "$T/send.conf" >>"$T/sukid-send.log" 2>&1 &
    pid=$!
    lib_track $pid
    wait_for 30 'grep -q "consumer group ready" "$T/sukid-send.log"' || fail "sukid did not start"
    t0=$(now_ms)
    rcli HSET suki:job:~report "~report:~report:~plan:$PM" "{\"d\":$t0}" >/dev/null
    rcli ZADD suki:jobs "$t0" "~report:~report:~plan:$PM" >/dev/null
    want=$((M + 1))
    while [ "$(ls "$T/spool" | wc -l)" -lt "$want" ]; do
        kill -0 $pid 2>/dev/null || fail "sukid exited: $(tail -3 "$T/sukid-send.log")"
        sleep 0.05
    done
    t1=$(now_ms)
    slow=$(rcli SLOWLOG GET 1 | sed -n '3p;5p' | tr '\n' ' ')
    kill $pid
    wait $pid
    lib_untrack $pid
    echo "send: $want reports built and delivered (spool) in $((t1 - t0)) ms;" \
        "the slowest Redis command (us, script): ${slow:-none over 10 ms}"
    exit 0
fi

echo "unknown mode $mode" >&2
exit 2
