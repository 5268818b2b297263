#!/usr/bin/python3
"""ha_producer.py - a producer that finds the Redis primary through Redis
Sentinel and counts an event as sent only once a replica has it.

    ha_producer.py --sentinels PORT,PORT,... --master NAME --stream KEY
                   --count N [--rate PER_S] --confirmed FILE [--start S]

For each event i (client c<i>, producer id e<i>, type ha.test) it sends
XADD KEY * event JSON then WAIT 1 1000. Only when WAIT says a replica has
it is e<i> appended to FILE (flushed at once); otherwise (no replica, a
READONLY or lost connection) it asks the sentinels again and sends the
same event id again: sukid drops the repeats as duplicates.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sukitest import Redis  # noqa: E402


def primary(sentinels, master):
    """The primary's (host, port) per the first sentinel that answers, if
    ROLE there says master; else None."""
    for p in sentinels:
        try:
            s = Redis(p)
            s.s.settimeout(2)
            a = s.cmd("SENTINEL", "get-master-addr-by-name", master)
            s.s.close()
        except (OSError, RuntimeError, ConnectionError):
            continue
        if not a:
            continue
        host, port = a[0].decode(), int(a[1])
        try:
            r = Redis(port, host)
            r.s.settimeout(2)
            if r.cmd("ROLE")[0] == b"master":
                return r
            r.s.close()
        except (OSError, RuntimeError, ConnectionError):
            pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentinels", required=True)
    ap.add_argument("--master", required=True)
    ap.add_argument("--stream", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--confirmed", required=True)
    a = ap.parse_args()
    sentinels = [int(p) for p in a.sentinels.split(",")]
    out = open(a.confirmed, "a")
    r = None
    retries = 0
    for i in range(a.start, a.start + a.count):
        ev = json.dumps({"type": "ha.test", "client": "c%d" % i,
                         "id": "e%d" % i})
        deadline = time.monotonic() + 60
        while True:
            if time.monotonic() > deadline:
                print("e%d: no primary for 60 s" % i, file=sys.stderr)
                return 1
            if r is None:
                r = primary(sentinels, a.master)
                if r is None:
                    time.sleep(0.2)
                    continue
            try:
                r.cmd("XADD", a.stream, "*", "event", ev)
                if r.cmd("WAIT", "1", "1000") >= 1:
                    out.write("e%d\n" % i)
                    out.flush()
                    break
            except (OSError, RuntimeError, ConnectionError):
                pass
            retries += 1
            try:
                r.s.close()
            except OSError:
                pass
            r = None
            time.sleep(0.1)
        time.sleep(1.0 / a.rate)
    print("sent %d events, %d retries" % (a.count, retries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
