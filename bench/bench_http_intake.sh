#!/bin/sh
# bench_http_intake.sh - POST /v1/events throughput (events/s until every
# 202 is in) from 64 keep-alive connections, bodies of 1 and of 100 events,
# beside sukictl push of the same events and a direct XADD (redis-cli --pipe
# and redis-benchmark) on the same Redis. sukid's intake applies the events
# meanwhile, as in production. Prints figures; asserts nothing but that
# every event was accepted.
#
#   top_srcdir=/work/main top_builddir=/work/build-bench \
#       sh bench/bench_http_intake.sh [N]
#
# Use a build without sanitizers (configure CFLAGS=-O2). The client is one
# Python asyncio process: with batches of 1 it may be the bottleneck (its
# CPU time is printed beside sukid's).
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/tests/integration/lib.sh"
need curl redis-server redis-cli redis-benchmark "$SUKID" "$SUKICTL" "$PY"
N=${1:-50000}
CONNS=64
CLI="$PY $top_srcdir/tests/integration/http_intake_client.py"

start_redis --appendonly no
HP=$(free_port)
TOK=bench-token-0123456789
printf '%s\n' "$TOK" >"$T/tokens"
chmod 600 "$T/tokens"
CONF=$T/sukid.conf
LOG_LEVEL=notice write_conf "$CONF"
sed -i "s|^http = .*|http = { listen = \"127.0.0.1:$HP\"; intake_tokens_file = \"$T/tokens\"; };|" "$CONF"
"$SUKID" -c "$CONF" >>"$T/sukid.log" 2>&1 &
SPID=$!
lib_track $SPID
wait_for 15 '[ "$(curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:$HP/healthz)" = 200 ]' ||
    fail "sukid did not start"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
cpu_ms() { awk '{ print ($14 + $15) * 10 }' /proc/"$1"/stat; } # 100 Hz ticks

echo "http intake benchmark: $N events, $CONNS connections, $(nproc) cores"
for batch in 1 100; do
    n=$N
    [ "$batch" = 1 ] && n=$((N / 5)) # 1 event a request: fewer, or it takes long
    n=$((n / (CONNS * batch) * CONNS * batch)) # whole bodies per connection
    x0=$(rcli XLEN suki:events)
    c0=$(cpu_ms $SPID)
    out=$($CLI aload "$HP" "$TOK" "$CONNS" "$n" "$batch" 0) || fail "load: $out"
    c1=$(cpu_ms $SPID)
    [ "${out% *}" = "$n" ] || fail "accepted ${out% *} of $n"
    [ $(($(rcli XLEN suki:events) - x0)) = "$n" ] || fail "stream grew by $(($(rcli XLEN suki:events) - x0)), not $n"
    echo "POST /v1/events, batch $batch: ${out% *} events at ${out#* } events/s" \
        "(sukid CPU $((c1 - c0)) ms)"
done

# the same events as JSON lines for sukictl push
"$PY" -c "
import json
for i in range($N):
    print(json.dumps({'type': 'load.tick', 'client': 'c%d' % i, 'id': 'p%d' % i}))
" >"$T/events.ndjson"
t0=$(now_ms)
"$SUKICTL" -c "$CONF" push "$T/events.ndjson" >/dev/null || fail "sukictl push"
t1=$(now_ms)
echo "sukictl push: $N events in $((t1 - t0)) ms = $((N * 1000 / (t1 - t0) )) events/s"

"$PY" "$top_srcdir/tests/integration/sukitest.py" gen "$N" >"$T/gen.resp" ||
    fail "generator"
t0=$(now_ms)
redis-cli -p "$REDIS_PORT" --pipe <"$T/gen.resp" >/dev/null || fail "--pipe"
t1=$(now_ms)
echo "redis-cli --pipe XADD: $N events in $((t1 - t0)) ms = $((N * 1000 / (t1 - t0) )) events/s"
echo "redis-benchmark XADD, pipeline 64, 64 clients:"
redis-benchmark -p "$REDIS_PORT" -n "$N" -c 64 -P 64 -q XADD bench '*' event \
    '{"type":"load.tick","client":"c12345","id":"h12345"}' | tr '\r' '\n' |
    grep -v '^$' | tail -1
kill $SPID
wait $SPID
lib_untrack $SPID
