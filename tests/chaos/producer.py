#!/usr/bin/python3
"""producer.py - a producer that keeps writing events through Redis faults.

  producer.py --port PORT --stream KEY --acked FILE --count N
              [--start S] [--rate PER_S] [--type T] [--client-prefix P]
              [--due-in SECONDS]

Writes N events, one XADD each: {"id": "<P><i>", "type": T, "client":
"<P><i>", "at": an hour ago}, for i = S .. S+N-1, at most PER_S a second
(with --due-in, "at" is an hour less SECONDS ago: the sched-test rule's
reminders fall due that much later).
An XADD that fails (connection refused or lost, -LOADING, -OOM, a timeout)
is written again until Redis acknowledges it, as a careful producer does;
the event's id lets sukid drop the copy when the first write did land.
Each acknowledged event's client id is appended to FILE (flushed at once),
so the test knows what Redis took from the producer."""
import argparse
import json
import socket
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/integration")
from sukitest import Redis  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--stream", required=True)
    p.add_argument("--acked", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--type", default="sched.test")
    p.add_argument("--client-prefix", default="k")
    p.add_argument("--due-in", type=float, default=0.0)
    a = p.parse_args()
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                       time.gmtime(time.time() - 3600 + a.due_in))
    out = open(a.acked, "a")
    r = None
    retries = 0
    t0 = time.monotonic()
    for i in range(a.start, a.start + a.count):
        c = "%s%d" % (a.client_prefix, i)
        ev = json.dumps({"id": c, "type": a.type, "client": c, "at": at})
        while True:
            try:
                if r is None:
                    r = Redis(a.port)
                    r.s.settimeout(3)
                r.cmd("XADD", a.stream, "*", "event", ev)
                break
            except (OSError, ConnectionError, RuntimeError,
                    socket.timeout):
                retries += 1
                try:
                    if r is not None:
                        r.s.close()
                except OSError:
                    pass
                r = None
                time.sleep(0.05)
        out.write(c + "\n")
        out.flush()
        pause = t0 + (i - a.start + 1) / a.rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    print("produced %d events, %d writes retried" % (a.count, retries))


if __name__ == "__main__":
    main()
