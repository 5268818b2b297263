#!/bin/sh
# sukictl_json.sh - every --json output of sukictl: one JSON object per
# line, counts as JSON numbers (never digit strings), lists as arrays,
# flags as booleans; jobs carry key, due (RFC 3339, UTC, Z), rule, client.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID" "$SUKICTL"

start_redis
CONF=$T/sukid.conf
TEMPLATES_DIR=$top_srcdir/conf/templates write_conf "$CONF"
start_sukid a "$CONF"

# run NAME ARGS... - sukictl --json ARGS into $T/NAME.json (exit 0 wanted).
run() {
    _n=$1
    shift
    sukictl --json "$@" >"$T/$_n.json" 2>"$T/$_n.err" ||
        fail "--json $*: exit $? $(cat "$T/$_n.err")"
    [ -s "$T/$_n.json" ] || fail "--json $*: no output"
}

printf '%s\n' \
    '{"type":"client.created","client":"acme","id":"j1","data":{"name":"Acme","email":"ops@acme.ph","tags":["wholesale","metro-manila"],"consent":true}}' \
    '{"type":"meeting.held","client":"acme","id":"j2"}' |
    sukictl push - >/dev/null || fail "push"
wait_for 10 '[ "$(stat applied)" = 2 ]' || fail "events not applied"
rcli ZADD suki:jobs 1798761600000 'r1:acme::' >/dev/null
rcli HSET suki:job:acme 'r1:acme::' '{"d":1798761600000,"a":2}' >/dev/null
rcli ZADD suki:jobs 1798761700000 'r1:acme:x:' >/dev/null
rcli HSET suki:job:acme 'r1:acme:x:' '{"d":1798761700000}' >/dev/null
rcli XADD suki:events '*' event 'garbage' >/dev/null
rcli XADD suki:events '*' event '{"type":"x"}' >/dev/null
wait_for 10 '[ "$(rcli XLEN suki:dead)" = 2 ]' || fail "no dead letters"
sukictl campaign create spring --template campaign-example \
    --audience tag=wholesale >/dev/null || fail "campaign create"
wait_for 20 'sukictl --json campaign status spring | grep -q "\"state\":\"completed\""' ||
    fail "campaign did not complete: $(sukictl campaign status spring)"
run later campaign create later --template campaign-example --audience all \
    --start-at 2030-01-01T00:00:00Z
dead1=$(rcli XRANGE suki:dead - + | sed -n 1p)
dead2=$(rcli XREVRANGE suki:dead + - COUNT 1 | sed -n 1p)

run status status
run jobs jobs
run jobs_client jobs --client acme
run client client acme
run dead dead list
run clist campaign list
run cstatus campaign status spring
run call campaign status
run cpause_retry campaign retry spring
run cpause campaign pause later
run cstop campaign cancel later
run supp suppress x@example.ph
run unsupp unsuppress x@example.ph
run cancel cancel 'r1:acme:x:'
run drop dead drop "$dead2"
run replay dead replay "$dead1"
printf '%s\n' '{"type":"a.b","client":"z"}' >"$T/one.jsonl"
run push push "$T/one.jsonl"

"$PY" - "$T" <<'PYEOF' || fail "--json types"
import json, os, re, sys
T = sys.argv[1]
def load(name):
    out = []
    for n, line in enumerate(open(os.path.join(T, name + ".json")), 1):
        o = json.loads(line)
        assert isinstance(o, dict), (name, n, line)
        out.append(o)
    return out
def walk(name, v, path=""):
    # a count sent as a string, or a list sent as a comma string
    if isinstance(v, str):
        assert not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", v), (name, path, v)
    elif isinstance(v, dict):
        for k, x in v.items():
            walk(name, x, path + "." + k)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            walk(name, x, "%s[%d]" % (path, i))
names = [f[:-5] for f in os.listdir(T) if f.endswith(".json")]
assert len(names) >= 18, names
for name in names:
    for o in load(name):
        walk(name, o)
Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
def isint(v):
    return type(v) is int
st = load("status")[0]
for k in ("stream_length", "pending", "lag", "consumers", "dead_entries",
          "jobs_scheduled", "events_applied", "events_invalid"):
    assert isint(st[k]), (k, st)
assert isinstance(st["daemons"], list) and len(st["daemons"]) == 1, st
d = st["daemons"][0]
for k in ("pid", "started", "updated", "events_applied", "jobs_fired"):
    assert isint(d[k]), (k, d)
assert isinstance(d["transports"], list) and isint(d["transports"][0]["sent"]), d
assert st["redis_reachable"] is True and st["breaker_open"] is False, st
jobs = load("jobs")
assert len(jobs) == 2, jobs
for j in jobs + load("jobs_client"):
    for k in ("key", "rule", "client"):
        assert isinstance(j[k], str), (k, j)
    assert Z.match(j["due"]) and Z.match(j["next"]), j
    assert isint(j["attempt"]), j
assert jobs[0]["attempt"] == 2, jobs
cl = load("client")[0]
p = cl["profile"]
assert p["tags"] == ["wholesale", "metro-manila"], p
assert p["consent"] is True, p
assert p["events"] == 2 and Z.match(p["updated"]), p
assert isinstance(cl["jobs"], list) and len(cl["jobs"]) == 2, cl
for j in cl["jobs"]:
    assert Z.match(j["due"]), j
dl = load("dead")
assert len(dl) == 2 and all(Z.match(x["at"]) for x in dl), dl
for name in ("clist", "call"):
    cl = load(name)
    assert [c["campaign"] for c in cl] == ["later", "spring"], cl
    for c in cl:
        for k in ("sent", "failed", "skipped", "queued"):
            assert isint(c[k]), (name, k, c)
    assert cl[1]["sent"] == 1 and cl[1]["remaining"] == 0, cl
cs = load("cstatus")[0]
for k in ("recipients", "sent", "failed", "skipped", "queued"):
    assert isint(cs[k]), (k, cs)
assert all(isint(v) for v in cs["skipped_by_reason"].values()), cs
assert isinstance(cs["walk_progress"], (int, float)), cs
assert cs["remaining_exact"] is True and Z.match(cs["created"]), cs
assert load("cpause_retry")[0] == {"campaign": "spring", "retried": 0}
assert load("later")[0]["state"] == "scheduled", load("later")
assert load("cpause")[0] == {"campaign": "later", "state": "paused"}
assert load("cstop")[0] == {"campaign": "later", "state": "cancelled"}
s = load("supp")[0]
assert s["suppressed"] is True and s["changed"] is True, s
assert load("unsupp")[0]["suppressed"] is False
assert load("cancel")[0] == {"key": "r1:acme:x:", "cancelled": True}
assert load("drop")[0]["dropped"] is True
r = load("replay")[0]
assert isinstance(r["replayed_as"], str) and r["stream"] == "suki:events", r
assert load("push")[0] == {"pushed": 1, "refused": 0}
PYEOF
ok "every --json output parses, with numbers, arrays and booleans typed"
stop_sukid a || fail "sukid exit status"
