#!/usr/bin/python3
"""sched_jobs.py - write scheduler jobs straight into Redis in the layout of
docs/ARCHITECTURE.md (P:jobs, P:job:<client>), as the intake would.

Prints the Redis protocol on stdout for `redis-cli --pipe` (fast for
millions of jobs), or with --send PORT talks RESP to Redis itself.

  sched_jobs.py --prefix suki --count 10000 --due 1764240000000 \
      --spread 1000 --clients 100 | redis-cli --pipe

Job i: key "<rule>:c<i % clients>:s<i>:" (or --key for a single job), due
at due + (i * spread // count) ms (or --due-list a,b,c), body as rules.c
writes it (rules.h): "d" due, "e" the event (--event), and "t" template,
"c" channel, "n" notify only when given (a plugin's own choice; else the
rule's configuration applies) (+ --extra JSON merged in).
"""
import argparse
import json
import socket
import sys


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def enc(s):
    """Percent-encode a key component like suki_job_key."""
    o = []
    for ch in s.encode():
        if ch in b":%" or ch <= 0x20 or ch == 0x7F:
            o.append("%%%02X" % ch)
        else:
            o.append(chr(ch))
    return "".join(o)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", default="suki")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--due", type=int, default=0, help="epoch ms")
    ap.add_argument("--spread", type=int, default=0, help="ms over all jobs")
    ap.add_argument("--due-list", default="", help="comma-separated ms")
    ap.add_argument("--clients", type=int, default=0,
                    help="number of clients (0: one per job)")
    ap.add_argument("--rule", default="sched-test")
    ap.add_argument("--client", default="", help="one client for all")
    ap.add_argument("--key", default="", help="subject of a single job")
    ap.add_argument("--key-prefix", default="",
                    help="prefix of the generated subjects")
    ap.add_argument("--notify", default=None,
                    help="comma-separated; default: the rule's")
    ap.add_argument("--template", default=None, help="default: the rule's")
    ap.add_argument("--channel", default=None, help="default: the rule's")
    ap.add_argument("--event", action="store_true",
                    help="store a typical triggering event with the job")
    ap.add_argument("--extra", default="", help="JSON merged into bodies")
    ap.add_argument("--send", type=int, default=0, help="Redis port")
    a = ap.parse_args()

    dues = [int(x) for x in a.due_list.split(",") if x]
    n = len(dues) if dues else a.count
    extra = json.loads(a.extra) if a.extra else {}
    out = []
    for i in range(n):
        if a.client:
            client = a.client
        elif a.clients:
            client = "c%d" % (i % a.clients)
        else:
            client = "c%d" % i
        subject = a.key if a.key else "%ss%d" % (a.key_prefix, i)
        due = dues[i] if dues else a.due + (i * a.spread // max(n, 1))
        key = "%s:%s:%s:" % (enc(a.rule), enc(client), enc(subject))
        body = {"d": due}
        if a.event:
            body["e"] = {
                "t": "meeting.held", "a": 1795485600000,
                "i": "crm-%06d" % i, "m": "maria@example.ph",
                "d": {"summary": "Discussed the Q1 order volume"},
            }
        if a.template:
            body["t"] = a.template
        if a.channel:
            body["c"] = a.channel
        if a.notify:
            body["n"] = a.notify.split(",")
        body.update(extra)
        b = json.dumps(body, separators=(",", ":"))
        p = a.prefix
        out.append(resp("ZADD", p + ":jobs", due, key))
        out.append(resp("HSET", p + ":job:" + enc(client), key, b))
    data = b"".join(out)
    if a.send:
        s = socket.create_connection(("127.0.0.1", a.send))
        s.sendall(data)
        want = 2 * n
        buf = b""
        while buf.count(b"\r\n") < want:
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("redis closed the connection")
            buf += chunk
        if b"-ERR" in buf:
            sys.exit("redis error: " + buf.decode(errors="replace"))
        s.close()
    else:
        sys.stdout.buffer.write(data)


if __name__ == "__main__":
    main()
