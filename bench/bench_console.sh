#!/bin/sh
# bench_console.sh - the operator console with a large schedule and many
# dead letters: time to first byte of each page and API call (curl's
# time_starttransfer: median and worst of RUNS), sukid's RSS before, while
# and after, and the scheduler's throughput with and without a console
# polling. Prints figures; asserts only that every call answered 200.
#
#   top_srcdir=/work/main top_builddir=/work/build-bench \
#       sh bench/bench_console.sh [JOBS] [DEAD]
#
# Defaults: 1000000 jobs (due tomorrow: nothing fires) and 100000 dead
# letters, written straight into Redis with redis-cli --pipe. Use a build
# without sanitizers (configure CFLAGS=-O2).
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/integration/console_lib.sh"
JOBS=${1:-1000000}
DEAD=${2:-100000}
RUNS=${RUNS:-20}
# how often the polling console asks (the page: overview every 5 s)
POLL_S=${POLL_S:-0.1}
NEV=${NEV:-100000} # events per intake run

now_ms() { echo $(($(date +%s%N) / 1000000)); }
rss_kib() { awk '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } END { printf "%s (peak %s)", r, h }' /proc/"$1"/status; }

console_start
console_user admin bench-pw
P=$SUKI_PREFIX
echo "console benchmark: $JOBS jobs, $DEAD dead letters, $(nproc) cores"

t0=$(now_ms)
"$PY" "$top_srcdir/tests/integration/sched_jobs.py" --prefix "$P" \
    --count "$JOBS" --due $(($(now_ms) + 86400000)) --spread 3600000 \
    --clients $((JOBS / 10 > 0 ? JOBS / 10 : 1)) --event >"$T/jobs.resp" ||
    fail "sched_jobs.py"
redis-cli -p "$REDIS_PORT" --pipe <"$T/jobs.resp" >/dev/null || fail "load jobs"
rm -f "$T/jobs.resp"
"$PY" - "$P" "$DEAD" >"$T/dead.resp" <<'EOF'
import sys
p, n = sys.argv[1], int(sys.argv[2])
out = sys.stdout.buffer
def resp(*a):
    b = [b"*%d\r\n" % len(a)]
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        b.append(b"$%d\r\n%s\r\n" % (len(x), x))
    return b"".join(b)
for i in range(n):
    if i % 2:
        out.write(resp("XADD", p + ":dead", "*", "kind", "message", "reason",
                       "550 5.1.1 no such user", "payload",
                       '{"d":1700000000000,"n":["u%d@example.com"]}' % i,
                       "source", "sched-test:d%d:s:" % i, "recipient",
                       "u%d@example.com" % i, "channel", "email",
                       "message_id", "<m%d@example.com>" % i))
    else:
        out.write(resp("XADD", p + ":dead", "*", "kind", "event", "reason",
                       "invalid: no type", "payload",
                       '{"client":"d%d","data":{"x":"%s"}}' % (i, "y" * 200)))
EOF
redis-cli -p "$REDIS_PORT" --pipe <"$T/dead.resp" >/dev/null || fail "load dead letters"
rm -f "$T/dead.resp"
echo "loaded in $(( ($(now_ms) - t0) / 1000 )) s: $(zcard) jobs, $(rcli XLEN "$P:dead") dead letters, redis $(rcli INFO memory | awk -F: '/^used_memory_human/ { print $2 }' | tr -d '\r')"

SPID=$SUKID_PID_a
echo "sukid RSS at rest:            $(rss_kib "$SPID") KiB"

# a session
curl -s -D "$T/h" -o "$T/login.json" -H 'Content-Type: application/json' \
    -d '{"user":"admin","password":"bench-pw"}' "$CURL_BASE/api/v1/login"
COOKIE=$(sed -n 's/^Set-Cookie: \(suki_console=[^;]*\).*/\1/Ip' "$T/h" | tr -d '\r')
CSRF=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrf"])' "$T/login.json")
[ -n "$COOKIE" ] || fail "no session cookie"
# a cursor deep into the schedule and the dead letters
mid=$(rcli ZRANGE "$P:jobs" $((JOBS / 2)) $((JOBS / 2)) WITHSCORES | tail -1)
did=$(rcli XREVRANGE "$P:dead" + - COUNT $((DEAD / 2 < 10000 ? DEAD / 2 : 10000)) | grep -E '^[0-9]+-[0-9]+$' | tail -1)

# ttfb NAME PATH: median and worst of RUNS
ttfb()
{
    : >"$T/times"
    i=0
    while [ $i -lt "$RUNS" ]; do
        out=$(curl -s -o /dev/null -w '%{http_code} %{time_starttransfer}' \
            -H "Cookie: $COOKIE" "$CURL_BASE$2")
        [ "${out% *}" = 200 ] || fail "$1: HTTP ${out% *}"
        echo "${out#* }" >>"$T/times"
        i=$((i + 1))
    done
    sort -n "$T/times" | awk -v n="$1" '{ a[NR] = $1 } END {
        printf "  %-34s median %7.1f ms   worst %7.1f ms\n", n, a[int((NR + 1) / 2)] * 1000, a[NR] * 1000 }'
}

echo "time to first byte ($RUNS calls each):"
ttfb "GET / (page)" /
ttfb "GET /app.js" /app.js
ttfb "GET /api/v1/session" /api/v1/session
ttfb "GET /api/v1/overview" /api/v1/overview
ttfb "GET /api/v1/charts" /api/v1/charts
ttfb "GET /api/v1/jobs (first page)" "/api/v1/jobs?limit=50"
ttfb "GET /api/v1/jobs (mid cursor)" "/api/v1/jobs?limit=50&cursor=$mid.0"
ttfb "GET /api/v1/jobs?client=c7" "/api/v1/jobs?client=c7"
ttfb "GET /api/v1/jobs (due range)" "/api/v1/jobs?from=$(($(now_ms) + 86400000 + 1800000))&limit=50"
ttfb "GET /api/v1/dead (first page)" "/api/v1/dead?limit=50"
ttfb "GET /api/v1/dead (deep cursor)" "/api/v1/dead?limit=50&cursor=$did"
ttfb "GET /api/v1/dead/ID" "/api/v1/dead/$did"
ttfb "GET /api/v1/campaigns" /api/v1/campaigns
ttfb "GET /api/v1/clients/c7" /api/v1/clients/c7
echo "sukid RSS after the calls:     $(rss_kib "$SPID") KiB"

# a POST: hold and release one job (same costs as run and cancel)
key=$(rcli ZRANGE "$P:jobs" 0 0)
qk=$("$PY" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$key")
for a in hold release; do
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_starttransfer}' -X POST \
        -H "Cookie: $COOKIE" -H "X-CSRF-Token: $CSRF" -H 'Content-Type: application/json' \
        -d '{}' "$CURL_BASE/api/v1/jobs/$qk/$a")
    [ "${out% *}" = 200 ] || fail "POST $a: HTTP ${out% *}"
    printf '  %-34s %7.1f ms\n' "POST /api/v1/jobs/KEY/$a" "$(echo "${out#* }" | awk '{ print $1 * 1000 }')"
done

# the scheduler's and the intake's throughput, alone and with a console
# polling the overview, the jobs, the dead letters and the charts every
# POLL_S seconds (default 0.1: fifty times what the page does)
sched_rate()
{
    before=$(mail_count)
    add_jobs --count 2000 --due "$(now_ms)" --key-prefix "$1-" --client "bench$1"
    t1=$(now_ms)
    wait_for 120 "[ \$(mail_count) -ge $((before + 2000)) ]" || fail "2000 jobs not sent ($1)"
    echo $((2000 * 1000 / ($(now_ms) - t1 + 1)))
}
# intake_rate START: events/s from the start of the push of NEV events
# to the last one applied
intake_rate()
{
    base=$(stat applied)
    "$PY" "$top_srcdir/tests/integration/sukitest.py" gen "$NEV" --start "$1" \
        >"$T/gen.resp" || fail "generator failed"
    t1=$(now_ms)
    redis-cli -p "$REDIS_PORT" --pipe <"$T/gen.resp" >/dev/null || fail "push failed"
    wait_for 120 "[ \$(stat applied) -ge $((base + NEV)) ]" || fail "$NEV events not applied"
    echo $((NEV * 1000 / ($(now_ms) - t1 + 1)))
}
poll_start()
{
    ( while :; do
        for p in overview "jobs?limit=50" "dead?limit=50" charts; do
            curl -s -o /dev/null -H "Cookie: $COOKIE" "$CURL_BASE/api/v1/$p"
        done
        sleep "$POLL_S"
    done ) &
    POLL=$!
    lib_track $POLL
}
poll_stop() { kill $POLL; wait $POLL 2>/dev/null; lib_untrack $POLL; }
# alternated: alone, polled, alone, polled
s1=$(sched_rate a1); i1=$(intake_rate 1000000)
poll_start; s2=$(sched_rate p1); i2=$(intake_rate 2000000); poll_stop
s3=$(sched_rate a2); i3=$(intake_rate 3000000)
poll_start; s4=$(sched_rate p2); i4=$(intake_rate 4000000); poll_stop
echo "scheduler, 2000 jobs due now to the SMTP server (msgs/s): alone $s1, $s3; console polling every $POLL_S s $s2, $s4"
echo "intake, $NEV events (events/s): alone $i1, $i3; console polling every $POLL_S s $i2, $i4"
echo "sukid RSS at the end:          $(rss_kib "$SPID") KiB"
