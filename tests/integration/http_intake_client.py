#!/usr/bin/python3
"""http_intake_client.py - drive POST /v1/events for the tests and the bench.

  req PORT TOKEN CTYPE FILE [SIG]   one request with http.client; prints
                                    the status, a space, the body
  load PORT TOKEN CONNS N BATCH START
                                    N events (clients c<START>..), BATCH to a
                                    body, over CONNS keep-alive connections
                                    (threads); prints the events accepted and
                                    the events/s; exits 1 on any non-202
  aload PORT TOKEN CONNS N BATCH START
                                    the same with asyncio (one thread, many
                                    connections: the benchmark's client);
                                    prints accepted and events/s
  pipe PORT TOKEN REQS BATCH START  one connection, REQS requests written at
                                    once (HTTP/1.1 pipelining), then every
                                    reply read in order; prints the accepted
"""
import asyncio
import http.client
import json
import socket
import sys
import threading
import time


def events(start, n):
    return [{"type": "load.tick", "client": "c%d" % i, "id": "h%d" % i}
            for i in range(start, start + n)]


def post(conn, token, body, ctype="application/json", sig=None):
    h = {"Authorization": "Bearer " + token, "Content-Type": ctype}
    if sig:
        h["X-Suki-Signature"] = sig
    conn.request("POST", "/v1/events", body=body, headers=h)
    r = conn.getresponse()
    return r.status, r.read()


def cmd_req(port, token, ctype, path, sig=None):
    with open(path, "rb") as f:
        body = f.read()
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    st, data = post(c, token, body, ctype, sig)
    print(st, data.decode("utf-8", "replace").strip())


def cmd_load(port, token, conns, n, batch, start):
    conns, n, batch, start = int(conns), int(n), int(batch), int(start)
    per = n // conns
    got = [0] * conns
    bad = []

    def worker(k):
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
        s = start + k * per
        end = s + per
        while s < end:
            m = min(batch, end - s)
            ev = events(s, m)
            body = json.dumps(ev[0] if m == 1 and batch == 1 else ev)
            st, data = post(c, token, body)
            if st != 202:
                bad.append((st, data[:200]))
                return
            got[k] += json.loads(data)["accepted"]
            s += m
    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.monotonic() - t0
    total = sum(got)
    print(total, "%.0f" % (total / dt if dt > 0 else 0))
    if bad:
        print("refused:", bad[:3], file=sys.stderr)
        sys.exit(1)


async def read_reply(rd):
    status = int((await rd.readline()).split()[1])
    length = 0
    while True:
        h = await rd.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await rd.readexactly(length)


def cmd_aload(port, token, conns, n, batch, start):
    conns, n, batch, start = int(conns), int(n), int(batch), int(start)
    per = n // conns
    head = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n")
    # bodies built before the clock starts: the figure is sukid's
    bodies = []
    for k in range(conns):
        mine = []
        s = start + k * per
        for b0 in range(s, s + per, batch):
            ev = events(b0, min(batch, s + per - b0))
            body = json.dumps(ev[0] if batch == 1 else ev).encode()
            mine.append((head % len(body)) + body)
        bodies.append(mine)

    async def worker(mine):
        rd, wr = await asyncio.open_connection("127.0.0.1", int(port))
        got = 0
        for req in mine:
            wr.write(req)
            st, data = await read_reply(rd)
            if st != 202:
                raise SystemExit("refused: %d %r" % (st, data[:200]))
            got += json.loads(data)["accepted"]
        wr.close()
        return got

    async def main():
        t0 = time.monotonic()
        got = await asyncio.gather(*(worker(m) for m in bodies))
        return sum(got), time.monotonic() - t0
    total, dt = asyncio.run(main())
    print(total, "%.0f" % (total / dt if dt > 0 else 0))


def cmd_pipe(port, token, reqs, batch, start):
    reqs, batch, start = int(reqs), int(batch), int(start)
    out = b""
    for k in range(reqs):
        body = json.dumps(events(start + k * batch, batch)).encode()
        out += (b"POST /v1/events HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: Bearer " + token.encode() + b"\r\n"
                b"Content-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)) + body
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
    s.sendall(out)
    f = s.makefile("rb")
    total = 0
    for k in range(reqs):
        # by hand: http.client closes the file at the end of each response
        status = int(f.readline().split()[1])
        length = 0
        while True:
            h = f.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        data = f.read(length)
        if status != 202:
            print("reply %d: %d %r" % (k, status, data[:200]),
                  file=sys.stderr)
            sys.exit(1)
        total += json.loads(data)["accepted"]
    print(total)


if __name__ == "__main__":
    cmds = {"req": cmd_req, "load": cmd_load, "aload": cmd_aload,
            "pipe": cmd_pipe}
    sys.exit(cmds[sys.argv[1]](*sys.argv[2:]))
