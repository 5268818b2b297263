#!/bin/sh
# http_endpoints.sh - sukid's HTTP server against a real Redis and curl:
# /healthz 200 then 503 when Redis stops (and 200 again when it is back),
# /metrics in the Prometheus text format (parsed by prometheus_client, and
# by a strict line check), gauges refreshed from Redis, request limits,
# unknown paths and methods, and a taken port refusing the start.
. "$top_srcdir/tests/integration/lib.sh"
need curl redis-server redis-cli "$SUKID"

start_redis
HP=$(free_port)
CONF=$T/sukid.conf
write_conf "$CONF"
sed -i "s|^http = .*|http = { listen = \"127.0.0.1:$HP\"; };|" "$CONF"
URL=http://127.0.0.1:$HP

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# start_http NAME CONF PORT - start sukid, wait until /healthz answers.
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

start_http a "$CONF" "$HP"
ok "healthz 200 with redis up"
body=$(curl -s "$URL/healthz")
[ "$body" = ok ] || fail "healthz body '$body'"

# ---- /metrics ----
curl -s -D "$T/mh" -o "$T/metrics.txt" "$URL/metrics"
head -1 "$T/mh" | grep -q ' 200' || fail "metrics status: $(head -1 "$T/mh")"
grep -qi '^content-type: text/plain; version=0.0.4' "$T/mh" ||
    fail "metrics content type: $(grep -i content-type "$T/mh")"

check_metrics()
{
    "$PY" - "$1" <<'EOF' || fail "metrics did not parse: see above"
import re, sys
text = open(sys.argv[1]).read()
# strict line check of the text format (0.0.4)
name = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
sample = re.compile(r'^%s(\{(%s(,%s)*)?\})? [-+]?(\d+(\.\d*)?([eE][-+]?\d+)?|NaN|\+Inf|-Inf)$' % (name, label, label))
typed = {}
for n, line in enumerate(text.split('\n'), 1):
    if line == '':
        continue
    if line.startswith('# HELP ') or line.startswith('# TYPE '):
        parts = line.split(' ', 3)
        if len(parts) < 4 or not re.match('^%s$' % name, parts[2]):
            sys.exit('line %d: bad comment: %r' % (n, line))
        if parts[1] == 'TYPE':
            if parts[3] not in ('counter', 'gauge', 'histogram', 'summary', 'untyped'):
                sys.exit('line %d: bad type %r' % (n, parts[3]))
            if parts[2] in typed:
                sys.exit('line %d: %s typed twice' % (n, parts[2]))
            typed[parts[2]] = parts[3]
        continue
    if line.startswith('#'):
        continue
    if not sample.match(line):
        sys.exit('line %d: not a sample: %r' % (n, line))
if not text.endswith('\n'):
    sys.exit('no final newline')
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    fams = None
else:
    fams = {f.name: f for f in text_string_to_metric_families(text)}
def samples(metric):
    out = {}
    for line in text.split('\n'):
        m = re.match(r'^(%s)(\{.*\})? (\S+)$' % name, line)
        if m and m.group(1) == metric:
            out[m.group(2) or ''] = float(m.group(3))
    return out
need = {'suki_events_total': 'counter', 'suki_jobs_scheduled': 'gauge',
        'suki_jobs_fired_total': 'counter', 'suki_messages_total': 'counter',
        'suki_dead_entries': 'gauge', 'suki_intake_lag_seconds': 'gauge',
        'suki_redis_up': 'gauge'}
for k, t in need.items():
    if typed.get(k) != t:
        sys.exit('%s: TYPE %s, want %s' % (k, typed.get(k), t))
    if fams is not None:
        fk = k[:-6] if k.endswith('_total') else k
        if fk not in fams or fams[fk].type != t:
            sys.exit('prometheus_client: %s missing or not a %s' % (fk, t))
ev = samples('suki_events_total')
for r in ('applied', 'duplicate', 'invalid', 'poison'):
    if '{result="%s"}' % r not in ev:
        sys.exit('suki_events_total{result="%s"} missing' % r)
print('parsed %d typed families%s' % (len(typed), '' if fams is None else ' (prometheus_client too)'))
EOF
}
check_metrics "$T/metrics.txt"
metric() { curl -s "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
[ "$(metric suki_redis_up)" = 1 ] || fail "suki_redis_up is not 1"
ok "metrics parse, required families present"

# gauges follow Redis (refreshed every 5 s, never by a blocking call)
# far in the future, so no scheduler touches them
rcli ZADD "$SUKI_PREFIX:jobs" 4102444800000 a 4102444800001 b 4102444800002 c >/dev/null
rcli XADD "$SUKI_PREFIX:dead" '*' kind event reason test >/dev/null
rcli XADD "$SUKI_PREFIX:dead" '*' kind event reason test >/dev/null
wait_for 12 '[ "$(metric suki_jobs_scheduled)" = 3 ] && [ "$(metric suki_dead_entries)" = 2 ]' ||
    fail "gauges not refreshed: jobs=$(metric suki_jobs_scheduled) dead=$(metric suki_dead_entries)"
ok "gauges refreshed from redis"

# ---- routing, methods and limits ----
[ "$(code "$URL/nope")" = 404 ] || fail "unknown path not 404"
[ "$(code -X POST "$URL/metrics")" = 405 ] || fail "POST /metrics not 405"
[ "$(code -I "$URL/healthz")" = 200 ] || fail "HEAD /healthz not 200"
c=$(code -X DELETE "$URL/healthz")
[ "$c" = 405 ] || [ "$c" = 501 ] || fail "DELETE answered $c"
big=$(head -c 20000 /dev/zero | tr '\0' a)
c=$(code -H "X-Big: $big" "$URL/healthz")
[ "$c" -ge 400 ] && [ "$c" -lt 500 ] || fail "20 kB header answered $c"
head -c 100000 /dev/zero | tr '\0' a >"$T/body"
c=$(code -X POST --data-binary @"$T/body" "$URL/u/abc.def")
[ "$c" = 413 ] || [ "$c" = 400 ] || fail "100 kB body answered $c"
# still healthy after the abuse
[ "$(code "$URL/healthz")" = 200 ] || fail "not healthy after limits"
ok "404/405, header and body limits"

# ---- a taken port refuses the start (like a web server) ----
"$SUKID" -c "$CONF" >"$T/second.log" 2>&1 &
p2=$!
lib_track $p2
wait_for 10 "! kill -0 $p2" || fail "second sukid on a taken port kept running"
wait $p2
rc=$?
lib_untrack $p2
[ $rc = 1 ] || fail "second sukid exit status $rc, want 1"
grep -q "cannot listen on 127.0.0.1:$HP: Address already in use" "$T/second.log" ||
    fail "no clear bind error: $(cat "$T/second.log")"
ok "taken port: exit 1 with '$(grep -o 'cannot listen.*in use' "$T/second.log")'"

# ---- redis goes away: 503, and back: 200 ----
stop_redis
wait_for 10 '[ "$(code "$URL/healthz")" = 503 ]' || fail "healthz not 503 without redis"
body=$(curl -s "$URL/healthz")
[ "$body" = "redis unreachable" ] || fail "503 body '$body'"
[ "$(metric suki_redis_up)" = 0 ] || fail "suki_redis_up not 0 without redis"
curl -s "$URL/metrics" >"$T/metrics2.txt"
check_metrics "$T/metrics2.txt"
ok "healthz 503 '$body' after redis stopped; metrics still served"
_redis_spawn
wait_for 15 '[ "$(code "$URL/healthz")" = 200 ]' || fail "healthz not 200 after redis came back"
ok "healthz 200 again after redis restart"

# ---- http disabled: no listener ----
CONF2=$T/off.conf
write_conf "$CONF2"
"$SUKID" -c "$CONF2" >"$T/sukid-off.log" 2>&1 &
p3=$!
lib_track $p3
wait_for 10 'grep -q "connected" "$T/sukid-off.log"' || fail "sukid without http did not connect"
grep -q "http: listening" "$T/sukid-off.log" && fail "http listening though listen = \"\""
kill -TERM $p3
wait $p3 || fail "sukid without http did not stop cleanly"
lib_untrack $p3

stop_sukid a || fail "sukid exit status $? on SIGTERM"
ok "SIGTERM: exit 0"
