#!/usr/bin/python3
"""console_api.py - the console's JSON API against a running sukid and
redis-server (console_api.sh starts them).

    console_api.py PHASE   (env: CP, REDIS_PORT, PREFIX, TOPDIR, STATE)

PHASE auth: static files and their headers, login, sessions, CSRF, the bad
input statuses, overview against Redis, jobs (paging, search, actions).
PHASE dead: the dead letters: list, inspect, replay, drop (STATE holds the
session of phase auth and gets what phase dead found, for the shell).
Each check prints "ok: ..." or exits 1 with "FAIL: ...".
"""
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ["TOPDIR"], "tests/integration"))
from sukitest import Redis  # noqa: E402

CP = int(os.environ["CP"])
P = os.environ.get("PREFIX", "suki")
R = Redis(int(os.environ["REDIS_PORT"]))
STATE = os.environ["STATE"]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def ok(msg):
    print("ok: " + msg)


def check(cond, msg, detail=""):
    if not cond:
        fail(msg + (": " + str(detail) if detail else ""))
    ok(msg)


def req(method, path, body=None, headers=None, raw=None):
    c = http.client.HTTPConnection("127.0.0.1", CP, timeout=30)
    h = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    b = r.read()
    c.close()
    try:
        j = json.loads(b) if b else None
    except ValueError:
        j = None
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), j, b


class Session:
    def __init__(self, cookie, csrf):
        self.cookie, self.csrf = cookie, csrf

    def get(self, path):
        return req("GET", path, headers={"Cookie": self.cookie})

    def post(self, path, body=None, csrf=True, token=None):
        h = {"Cookie": self.cookie}
        if csrf:
            h["X-CSRF-Token"] = token if token is not None else self.csrf
        return req("POST", path, body=body if body is not None else {},
                   headers=h)


def login(user, pw):
    st, h, j, _ = req("POST", "/api/v1/login", {"user": user, "password": pw})
    return st, h, j


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def security_headers(h, what):
    csp = h.get("content-security-policy", "")
    check("default-src 'self'" in csp and "script-src 'self'" in csp and
          "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp,
          what + ": strict Content-Security-Policy", csp)
    check(h.get("x-frame-options") == "DENY", what + ": X-Frame-Options DENY")
    check(h.get("x-content-type-options") == "nosniff", what + ": nosniff")


def now_ms():
    return int(time.time() * 1000)


def phase_auth():
    # ---- static files ----
    st, h, _, body = req("GET", "/")
    check(st == 200 and h["content-type"].startswith("text/html"),
          "GET / is the page", st)
    security_headers(h, "GET /")
    page = body.decode()
    import re
    inline = [s for s in re.findall(r"<script[^>]*>", page) if "src=" not in s]
    check(not inline and not re.search(r"\son[a-z]+=", page) and
          "style=" not in page and "http://" not in page and
          "https://" not in page,
          "the page has no inline script, handler or style, nothing from "
          "another origin")
    st, h, _, js = req("GET", "/app.js")
    check(st == 200 and h["content-type"].startswith("text/javascript"),
          "app.js served as JavaScript", h.get("content-type"))
    security_headers(h, "GET /app.js")
    st, h, _, _ = req("GET", "/style.css")
    check(st == 200 and h["content-type"].startswith("text/css"), "style.css")
    st, h, j, _ = req("GET", "/nope.html")
    check(st == 404, "an unknown file is 404", st)
    security_headers(h, "a 404")
    st, h, j, _ = req("POST", "/")
    check(st == 405 and "GET" in h.get("allow", ""), "POST / is 405", st)

    # ---- routes and methods before any session ----
    st, _, j, _ = req("GET", "/api/v1/overview")
    check(st == 401 and j and "error" in j, "overview without a session: 401",
          st)
    for path in ("/api/v1/jobs", "/api/v1/dead", "/api/v1/session",
                 "/api/v1/dead/1-0"):
        st, _, _, _ = req("GET", path)
        check(st == 401, "GET %s without a session: 401" % path, st)
    st, _, _, _ = req("POST", "/api/v1/jobs/x/run", {})
    check(st == 401, "a POST without a session: 401", st)
    st, _, j, _ = req("GET", "/api/v1/nope")
    check(st == 404 and j and "error" in j, "an unknown API route: 404", st)
    st, _, _, _ = req("GET", "/api/v2/overview")
    check(st == 404, "another API version: 404", st)
    st, _, _, _ = req("GET", "/api/v1/jobs/a/b/c/d/e")
    check(st == 404, "a path too deep: 404", st)
    st, h, _, _ = req("GET", "/api/v1/login")
    check(st == 405 and h.get("allow") == "POST", "GET login: 405, Allow POST",
          st)
    st, h, _, _ = req("DELETE", "/api/v1/overview")
    check(st == 405 and "GET" in h.get("allow", ""), "DELETE overview: 405",
          st)
    st, h, _, _ = req("POST", "/api/v1/overview", {})
    check(st == 405, "POST overview: 405", st)

    # ---- login ----
    st, _, j, _ = req("POST", "/api/v1/login", raw=b'{"user": "admin", ',
                      headers={"Content-Type": "application/json"})
    check(st == 400 and "malformed JSON" in j["error"] and "line" in j["error"],
          "malformed JSON: 400 with the reason", j)
    st, _, j, _ = req("POST", "/api/v1/login", raw=b'[1]',
                      headers={"Content-Type": "application/json"})
    check(st == 400, "a body that is not an object: 400", st)
    st, _, j, _ = req("POST", "/api/v1/login", {"user": "admin"})
    check(st == 400 and "password" in j["error"], "no password: 400", j)
    st, _, j, _ = req("POST", "/api/v1/login", raw=b"user=admin&password=x",
                      headers={"Content-Type":
                               "application/x-www-form-urlencoded"})
    check(st == 415, "a form post (what a cross-site form sends): 415", st)
    st, _, _, _ = req("POST", "/api/v1/login",
                      raw=b'{"user":"' + b"x" * 20000 + b'"}',
                      headers={"Content-Type": "application/json"})
    check(st == 413, "a body over the limit: 413", st)
    st, h, j = login("admin", "wrong")
    check(st == 401 and "set-cookie" not in h, "a wrong password: 401, no "
          "cookie", st)
    st, h, j = login("nobody", "secret-pw")
    check(st == 401, "an unknown user: 401", st)

    t0 = time.monotonic()
    st, h, j = login("admin", "secret-pw")
    took = time.monotonic() - t0
    check(st == 200 and isinstance(j.get("csrf"), str) and len(j["csrf"]) >= 32,
          "login: 200 with a CSRF token", j)
    ck = h.get("set-cookie", "")
    check("HttpOnly" in ck and "SameSite=Strict" in ck and "Secure" not in ck
          and ck.startswith("suki_console="),
          "the session cookie is HttpOnly, SameSite=Strict (no Secure without "
          "secure_cookie)", ck)
    cookie = ck.split(";")[0]
    s = Session(cookie, j["csrf"])
    keys = R.cmd("KEYS", P + ":csession:*")
    check(len(keys) == 1 and R.cmd("TTL", keys[0]) > 0,
          "the session is in Redis, with a TTL", keys)
    check(cookie.split("=")[1].encode() not in keys[0] and
          R.cmd("HGET", keys[0], "user") == b"admin",
          "Redis holds the session under a hash of the cookie, not the cookie")
    st, _, j, _ = s.get("/api/v1/session")
    check(st == 200 and j["user"] == "admin" and j["csrf"] == s.csrf,
          "GET session: the user and the CSRF token", j)

    # repeated failures slow down: the 4th, 5th failure of a user waits
    for _ in range(3):
        login("slow", "wrong")
    t0 = time.monotonic()
    st, _, _ = login("slow", "wrong")
    t4 = time.monotonic() - t0
    check(st == 401 and t4 >= 0.45,
          "the 4th failed login in a row waits (%.2f s; the first took "
          "%.2f s)" % (t4, took))
    fails = R.cmd("GET", [k for k in R.cmd("KEYS", P + ":cfail:u:*")
                          if R.cmd("GET", k) == b"4"][0])
    check(fails == b"4", "the failures are counted in Redis")
    # meanwhile the daemon answers others at once: the wait is a timer
    c = http.client.HTTPConnection("127.0.0.1", CP, timeout=30)
    c.request("POST", "/api/v1/login",
              body=json.dumps({"user": "slow", "password": "wrong"}),
              headers={"Content-Type": "application/json"})
    t0 = time.monotonic()
    st2, _, _, _ = s.get("/api/v1/session")
    quick = time.monotonic() - t0
    r5 = c.getresponse()
    r5.read()
    slow = time.monotonic() - t0
    check(st2 == 200 and quick < 0.5 and r5.status == 401 and slow >= 0.9,
          "a delayed login does not hold up other requests (%.3f s vs %.2f s)"
          % (quick, slow))

    # ---- CSRF ----
    R.cmd("DEL", P + ":jobs")
    jobs_before = R.cmd("ZCARD", P + ":jobs")
    st, _, j, _ = s.post("/api/v1/jobs/x%3Ay%3Az%3A/cancel", csrf=False)
    check(st == 403 and "missing" in j["error"], "a POST without "
          "X-CSRF-Token: 403", st)
    st, _, j, _ = s.post("/api/v1/jobs/x%3Ay%3Az%3A/cancel", token="0" * 64)
    check(st == 403, "a POST with a forged X-CSRF-Token: 403", st)
    st, _, j, _ = s.post("/api/v1/logout", token=s.csrf[:-1] + "x")
    check(st == 403, "logout with a token one character off: 403", st)
    st, _, _, _ = req("POST", "/api/v1/logout", {},
                      headers={"Cookie": "suki_console=" + "a" * 64,
                               "X-CSRF-Token": s.csrf})
    check(st == 401, "the right token with a forged cookie: 401", st)
    check(R.cmd("ZCARD", P + ":jobs") == jobs_before and
          len(R.cmd("KEYS", P + ":csession:*")) == 1,
          "nothing changed in Redis")

    # ---- overview: the figures Redis has, numbers as numbers ----
    R.cmd("XADD", P + ":dead", "*", "kind", "event", "reason", "test",
          "payload", "{}")
    st, _, o, _ = s.get("/api/v1/overview")
    check(st == 200, "overview: 200", st)
    for k in ("stream_length", "pending", "jobs_scheduled", "dead_entries",
              "consumers", "events_applied"):
        check(is_int(o.get(k)), "overview %s is a number" % k, o.get(k))
    check(isinstance(o["lag_seconds"], (int, float)) and
          not isinstance(o["lag_seconds"], bool), "lag_seconds is a number")
    check(o["lag"] is None or is_int(o["lag"]), "lag is a number (or null)")
    check(o["stream_length"] == R.cmd("XLEN", P + ":events") and
          o["dead_entries"] == R.cmd("XLEN", P + ":dead") and
          o["jobs_scheduled"] == R.cmd("ZCARD", P + ":jobs"),
          "overview matches XLEN/ZCARD in Redis", o)
    check(len(o["daemons"]) == 1 and is_int(o["daemons"][0]["pid"]) and
          o["daemons"][0]["transports"][0]["name"] == "email" and
          o["daemons"][0]["transports"][0]["breaker"] == "closed",
          "overview lists the daemon with its transport and breaker",
          o["daemons"])
    with open(STATE + ".status", "w") as f:
        json.dump(o, f)

    # ---- jobs ----
    base = now_ms() + 3600 * 1000
    added = []
    for i in range(7):
        client = "c%d" % (i % 2)
        key = "sched-test:%s:s%d:" % (client, i)
        body = '{"d":%d}' % (base + (i // 2) * 1000)  # pairs share a score
        R.cmd("HSET", P + ":job:" + client, key, body)
        R.cmd("ZADD", P + ":jobs", base + (i // 2) * 1000, key)
        added.append(key)
    seen, cursor, pages = [], None, 0
    while True:
        path = "/api/v1/jobs?limit=2" + ("&cursor=" + cursor if cursor else "")
        st, _, j, _ = s.get(path)
        if st != 200:
            fail("jobs page: %d %r" % (st, j))
        pages += 1
        seen += [x["key"] for x in j["jobs"]]
        for x in j["jobs"]:
            if not (is_int(x["due_ms"]) and is_int(x["attempt"]) and
                    x["rule"] == "sched-test" and x["client"] in ("c0", "c1")):
                fail("a job as the API has it: %r" % x)
        cursor = j["cursor"]
        if not cursor or pages > 10:
            break
    check(sorted(seen) == sorted(added) and len(seen) == len(set(seen)) and
          pages == 4,
          "the schedule pages by cursor, 2 a page, every job once, even "
          "with equal scores across a page break", seen)
    st, _, j, _ = s.get("/api/v1/jobs?client=c1")
    check(st == 200 and sorted(x["key"] for x in j["jobs"]) ==
          sorted(k for k in added if ":c1:" in k),
          "jobs?client=c1: that client's jobs only", j)
    st, _, j, _ = s.get("/api/v1/jobs?from=%d&to=%d" %
                        (base + 1000, base + 2000))
    check(st == 200 and len(j["jobs"]) == 4, "jobs by due range", j)
    st, _, j, _ = s.get("/api/v1/jobs?client=c0&from=%d&to=%d&limit=1" %
                        (base, base + 1000))
    check(st == 200 and len(j["jobs"]) == 1 and j["cursor"],
          "client and range together, with a cursor", j)
    st, _, j, _ = s.get("/api/v1/jobs?from=yesterday")
    check(st == 400 and "from" in j["error"], "a bad time: 400", j)
    st, _, j, _ = s.get("/api/v1/jobs?cursor=zzz")
    check(st == 400, "a bad cursor: 400", st)
    st, _, j, _ = s.get("/api/v1/jobs?limit=100000")
    check(st == 400, "a limit over 500: 400", st)

    k = added[0]
    from urllib.parse import quote
    qk = quote(k, safe="")
    st, _, j, _ = s.post("/api/v1/jobs/%s/hold" % qk)
    check(st == 200 and R.cmd("ZSCORE", P + ":jobs", k) is None and
          R.cmd("ZSCORE", P + ":jobs-held", k) == str(base).encode(),
          "hold: out of P:jobs into P:jobs-held with its time", j)
    st, _, j, _ = s.post("/api/v1/jobs/%s/hold" % qk)
    check(st == 404, "hold of a held job: 404", st)
    st, _, c, _ = s.get("/api/v1/clients/c0")
    held = [x for x in c["jobs"] if x["key"] == k]
    check(st == 200 and c["client"] == "c0" and len(c["jobs"]) == 4 and
          held and held[0]["held"] is True and
          all(x["held"] is False for x in c["jobs"] if x["key"] != k) and
          [x["next_ms"] for x in c["jobs"]] ==
          sorted(x["next_ms"] for x in c["jobs"]),
          "the client page: its jobs in order, the held one marked", c)
    st, _, _, _ = s.get("/api/v1/clients/nobody-here")
    check(st == 404, "an unknown client: 404", st)
    st, _, j, _ = s.post("/api/v1/jobs/%s/release" % qk)
    check(st == 200 and R.cmd("ZSCORE", P + ":jobs", k) == str(base).encode()
          and R.cmd("ZSCORE", P + ":jobs-held", k) is None,
          "release: back at its time", j)
    st, _, j, _ = s.post("/api/v1/jobs/%s/cancel" % quote(added[1], safe=""))
    check(st == 200 and R.cmd("ZSCORE", P + ":jobs", added[1]) is None and
          R.cmd("HGET", P + ":job:c1", added[1]) is None,
          "cancel: index entry and body gone", j)
    st, _, j, _ = s.post("/api/v1/jobs/%s/cancel" % quote(added[1], safe=""))
    check(st == 404, "cancel of a job that is not there: 404", st)
    st, _, j, _ = s.post("/api/v1/jobs/no%3Asuch%3Ajob%3A/run")
    check(st == 404, "run of an unknown key: 404", st)
    st, _, j, _ = s.post("/api/v1/jobs/%s/explode" % qk)
    check(st == 404, "an unknown action: 404", st)
    st, _, j, _ = s.post("/api/v1/jobs/%s/run" % qk, token=s.csrf)
    sc = R.cmd("ZSCORE", P + ":jobs", k)
    check(st == 200 and (sc is None or int(sc) <= now_ms()),
          "run: due now", sc)
    # ---- campaigns ----
    st, _, j, _ = s.get("/api/v1/campaigns")
    check(st == 200 and [c["campaign"] for c in j["campaigns"]] ==
          ["r1", "spring"], "campaigns: both, sorted", j)
    c = j["campaigns"][0]
    check(all(is_int(c[k]) for k in ("sent", "failed", "skipped", "queued",
                                     "recipients")) and
          c["sent"] == 1 and c["failed"] == 1 and c["state"] == "scheduled" and
          isinstance(c["skipped_by_reason"], dict) and
          (c["remaining"] is None or is_int(c["remaining"])),
          "a campaign's figures as numbers", c)
    st, _, j, _ = s.get("/api/v1/campaigns/spring")
    check(st == 200 and j["campaign"] == "spring", "one campaign", st)
    st, _, _, _ = s.get("/api/v1/campaigns/nosuch")
    check(st == 404, "an unknown campaign: 404", st)
    st, _, _, _ = s.get("/api/v1/campaigns/bad%20name")
    check(st == 404, "a name no campaign can have: 404", st)
    ck = P + ":campaign:spring"
    st, _, j, _ = s.post("/api/v1/campaigns/spring/pause", csrf=False)
    check(st == 403 and R.cmd("HGET", ck, "state") == b"scheduled",
          "pause without the token: 403, nothing changed")
    st, _, j, _ = s.post("/api/v1/campaigns/spring/pause")
    check(st == 200 and j["state"] == "paused" and
          R.cmd("HGET", ck, "state") == b"paused", "pause: paused in Redis", j)
    st, _, j, _ = s.post("/api/v1/campaigns/spring/pause")
    check(st == 409, "pause of a paused campaign: 409", (st, j))
    st, _, j, _ = s.post("/api/v1/campaigns/spring/resume")
    check(st == 200 and j["state"] == "scheduled" and
          R.cmd("HGET", ck, "state") == b"scheduled",
          "resume: scheduled again (it starts tomorrow)", j)
    st, _, j, _ = s.post("/api/v1/campaigns/nosuch/pause")
    check(st == 404, "pause of an unknown campaign: 404", st)
    gen = int(R.cmd("HGET", P + ":campaign:r1", "gen") or 0)
    st, _, j, _ = s.post("/api/v1/campaigns/r1/retry")
    check(st == 200 and j["retried"] == 1 and
          int(R.cmd("HGET", P + ":campaign:r1", "gen")) == gen + 1 and
          R.cmd("HGET", P + ":cledger:r1", "u2") == b"sent",
          "retry: the one failed recipient queued again, a new generation",
          j)
    st, _, j, _ = s.post("/api/v1/campaigns/r1/cancel")
    check(st == 200 and R.cmd("HGET", P + ":campaign:r1", "state") ==
          b"cancelled", "cancel: cancelled in Redis", j)
    st, _, j, _ = s.post("/api/v1/campaigns/r1/retry")
    check(st == 409, "retry of a cancelled campaign: 409", st)
    st, _, j, _ = s.post("/api/v1/campaigns/nosuch/retry")
    check(st == 404, "retry of an unknown campaign: 404", st)

    # a job in flight (leased past now, due already): 409, left alone
    fk = "sched-test:c5:inflight:"
    lease = now_ms() + 60000
    R.cmd("HSET", P + ":job:c5", fk, '{"d":%d}' % (now_ms() - 1000))
    R.cmd("ZADD", P + ":jobs", lease, fk)
    for a in ("run", "hold"):
        st, _, j, _ = s.post("/api/v1/jobs/%s/%s" % (quote(fk, safe=""), a))
        check(st == 409 and "right now" in j["error"] and
              R.cmd("ZSCORE", P + ":jobs", fk) == str(lease).encode(),
              "%s of a job in flight: 409, its lease untouched" % a, (st, j))
    R.cmd("ZREM", P + ":jobs", fk)
    R.cmd("HDEL", P + ":job:c5", fk)

    # held, cancelled, and the others are left alone
    for x in added[2:]:
        R.cmd("ZREM", P + ":jobs", x)
        R.cmd("HDEL", P + ":job:" + x.split(":")[1], x)
    with open(STATE, "w") as f:
        json.dump({"cookie": s.cookie, "csrf": s.csrf, "run_key": k}, f)


def phase_dead():
    st0 = json.load(open(STATE))
    s = Session(st0["cookie"], st0["csrf"])
    st, _, j, _ = s.get("/api/v1/dead?limit=500")
    check(st == 200 and isinstance(j["entries"], list), "dead: 200", st)
    ents = j["entries"]
    check(len(ents) == R.cmd("XLEN", P + ":dead"),
          "every dead letter listed", len(ents))
    msg = [e for e in ents if e["kind"] == "message"]
    check(len(msg) == 1 and msg[0]["recipient"] == "bad@rcpt.test" and
          msg[0]["message_id"] and msg[0]["source"] and
          is_int(msg[0]["at_ms"]) and "550" in msg[0]["reason"],
          "the failed message is a dead letter of kind message", msg)
    m = msg[0]
    st, _, j, _ = s.get("/api/v1/dead?kind=message")
    check(st == 200 and [e["id"] for e in j["entries"]] == [m["id"]],
          "dead?kind=message", j)
    # paging: newest first, by cursor
    for i in range(5):
        R.cmd("XADD", P + ":dead", "*", "kind", "event", "reason", "r%d" % i,
              "payload", '{"type":"x.y","client":"p%d"}' % i)
    ids, cursor = [], None
    for _ in range(20):
        st, _, j, _ = s.get("/api/v1/dead?limit=3" +
                            ("&cursor=" + cursor if cursor else ""))
        ids += [e["id"] for e in j["entries"]]
        cursor = j["cursor"]
        if not cursor:
            break
    allids = [e[0] for e in R.cmd("XREVRANGE", P + ":dead", "+", "-")]
    check(ids == [x.decode() for x in allids],
          "dead letters page by cursor, newest first, each once")
    st, _, j, _ = s.get("/api/v1/dead/" + m["id"])
    check(st == 200 and j["payload"] == R.cmd(
        "XRANGE", P + ":dead", m["id"], m["id"])[0][1][5].decode() and
        j["message_id"] == m["message_id"], "inspect: the whole entry", j)
    st, _, _, _ = s.get("/api/v1/dead/1-1")
    check(st == 404, "inspect of an unknown id: 404", st)
    st, _, _, _ = s.get("/api/v1/dead/not-an-id")
    check(st == 404, "inspect of a malformed id: 404", st)
    st, _, _, _ = s.post("/api/v1/dead/1-1/replay")
    check(st == 404, "replay of an unknown id: 404", st)
    st, _, _, _ = s.post("/api/v1/dead/1-1/drop")
    check(st == 404, "drop of an unknown id: 404", st)
    st, _, _, _ = s.post("/api/v1/dead/%s/replay" % m["id"], csrf=False)
    check(st == 403 and R.cmd("XLEN", P + ":dead") == len(allids),
          "replay without the token: 403, nothing changed")

    # an event: back into the stream
    ev = [e for e in ents if e["kind"] == "event"][0]
    xlen = R.cmd("XLEN", P + ":events")
    st, _, j, _ = s.post("/api/v1/dead/%s/replay" % ev["id"])
    check(st == 200 and j["kind"] == "event" and j["stream_id"] and
          R.cmd("XRANGE", P + ":dead", ev["id"], ev["id"]) == [],
          "replay of an event: 200, the dead letter gone", j)
    check(j["stream_id"].encode() in [e[0] for e in R.cmd(
        "XRANGE", P + ":events", "-", "+")] or
        R.cmd("XLEN", P + ":events") >= xlen,
          "the event went to the stream")
    # drop
    d = allids[0].decode()
    st, _, j, _ = s.post("/api/v1/dead/%s/drop" % d)
    check(st == 200 and R.cmd("XRANGE", P + ":dead", d, d) == [],
          "drop: 200, gone from P:dead", j)
    # the message: back into the schedule under its job key
    key = m["source"]
    jh = P + ":job:" + key.split(":")[1]
    st, _, j, _ = s.post("/api/v1/dead/%s/replay" % m["id"])
    check(st == 200 and j["kind"] == "job" and j["job"] == key,
          "replay of a message: 200, back under its job key", j)
    json.dump({"key": key, "message_id": m["message_id"],
               "payload": m["payload"]}, open(STATE + ".msg", "w"))
    check(R.cmd("XRANGE", P + ":dead", m["id"], m["id"]) == [],
          "the message's dead letter is gone")
    body = R.cmd("HGET", jh, key)
    sc = R.cmd("ZSCORE", P + ":jobs", key)
    check(sc is not None or body is None,
          "the job is scheduled again (or already sent)")
    st, _, j, _ = s.post("/api/v1/dead/%s/replay" % m["id"])
    check(st == 404, "a second replay: 404", st)
    # ---- in bulk ----
    bulk = [R.cmd("XADD", P + ":dead", "*", "kind", "event", "reason", "b",
                  "payload", '{"type":"x.y","client":"b%d"}' % i).decode()
            for i in range(3)]
    st, _, j, _ = s.post("/api/v1/dead/replay",
                         {"ids": bulk[:2] + ["1-1", "junk"]})
    check(st == 200 and [x["status"] for x in j["results"]] ==
          [200, 200, 404, 404] and
          all(R.cmd("XRANGE", P + ":dead", i, i) == [] for i in bulk[:2]),
          "bulk replay: each id's own status, the two replayed gone", j)
    st, _, j, _ = s.post("/api/v1/dead/drop", {"ids": [bulk[2], bulk[2]]})
    check(st == 200 and [x["status"] for x in j["results"]] == [200, 404] and
          R.cmd("XRANGE", P + ":dead", bulk[2], bulk[2]) == [],
          "bulk drop: dropped once, the second time 404", j)
    for body in ({}, {"ids": []}, {"ids": [1]}, {"ids": ["1-1"] * 501}):
        st, _, j, _ = s.post("/api/v1/dead/drop", body)
        if st != 400:
            fail("bulk with %r: %d" % (str(body)[:40], st))
    ok("bulk without ids, with none, with a number, with 501: 400")
    st, _, _, _ = s.post("/api/v1/dead/replay", {"ids": bulk}, csrf=False)
    check(st == 403, "bulk without the token: 403", st)

    # ---- charts: the buckets every daemon adds to ----
    deadline = time.time() + 10
    while time.time() < deadline:
        sent = failed = 0
        for k in R.cmd("KEYS", P + ":chart:*"):
            sent += int(R.cmd("HGET", k, "sent") or 0)
            failed += int(R.cmd("HGET", k, "failed") or 0)
        if sent >= 2 and failed >= 1:
            break
        time.sleep(0.2)
    check(sent >= 2 and failed >= 1,
          "the chart buckets in Redis count the messages sent (%d) and "
          "failed (%d)" % (sent, failed))
    ttl = min(R.cmd("TTL", k) for k in R.cmd("KEYS", P + ":chart:*"))
    check(3600 < ttl <= 7800, "a chart bucket outlives the hour shown", ttl)
    st, _, c, _ = s.get("/api/v1/charts")
    check(st == 200 and len(c["minute_ms"]) == 60 and
          all(is_int(t) for t in c["minute_ms"]) and
          c["minute_ms"][-1] <= now_ms() < c["minute_ms"][-1] + 60000,
          "charts: 60 minutes, the last one now", st)
    ms = c["messages_per_s"]
    check(all(isinstance(v, float) for k in ("sent", "failed", "retried")
              for v in ms[k]) and sum(ms["sent"]) > 0 and
          sum(ms["failed"]) > 0 and
          all(isinstance(v, float) for v in c["events_per_s"]),
          "charts: messages/s by result and events/s as numbers, the sends "
          "of this test in them", ms)
    late = [v for v in c["lateness_avg_s"] if v is not None]
    check(late and all(isinstance(v, float) and v >= 0 for v in late) and
          any(v is not None for v in c["lateness_max_s"]),
          "charts: the scheduler's lateness of the jobs fired", late)
    st, _, j, _ = s.post("/api/v1/logout")
    check(st == 200 and R.cmd("KEYS", P + ":csession:*") == [],
          "logout: the session is gone from Redis")
    st, _, _, _ = s.get("/api/v1/overview")
    check(st == 401, "the old cookie after logout: 401", st)


if __name__ == "__main__":
    {"auth": phase_auth, "dead": phase_dead}[sys.argv[1]]()
