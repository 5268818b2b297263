"""sukitest.py - helpers for the shell integration tests (run with
/usr/bin/python3; standard library only).

As a module: Redis(port).cmd(*args) - a minimal RESP2 client that sends
arbitrary bytes (invalid UTF-8, NUL) where redis-cli cannot.

As a program:
  sukitest.py gen N [--start S] [--ids] [--cmd xadd|lpush] [--key KEY]
              [--type T] [--client-prefix P] [--mix CLIENTS [--managers M]]
      print RESP commands for `redis-cli --pipe`: N events for clients
      P<S>..P<S+N-1> (one event each), with ids "e<i>" when --ids.
      --mix: a CRM's day instead: DESIGN's event types in turn (profile
      updates, meetings, calls, proposals, complaints, contracts, orders)
      for CLIENTS clients, each event for client P<i mod CLIENTS>;
      --managers: client P<c> gets manager am<c mod M>@example.ph, not all
      am@example.ph.
  sukitest.py xadd PORT STREAM FIELD HEXVALUE [FIELD HEXVALUE...]
      XADD raw bytes given in hex; prints the new stream id.
"""
import datetime
import socket
import sys


def _enc(a):
    if isinstance(a, bytes):
        return a
    return str(a).encode()


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = _enc(a)
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Redis:
    def __init__(self, port, host="127.0.0.1"):
        self.s = socket.create_connection((host, int(port)), timeout=10)
        self.f = self.s.makefile("rb")

    def cmd(self, *args):
        self.s.sendall(resp(*args))
        return self._read()

    def _read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest
        if t == b"-":
            raise RuntimeError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)


# --mix: one day of a CRM, in turn (N is the event's number). Dates are
# relative to today, so the benchmark's renewals and meeting reminders stay
# in the future whatever the calendar says.
def _day(days):
    return (datetime.date.today() + datetime.timedelta(days=days)).isoformat()


MIX = [
    ("client.updated", '{"email":"cN@example.ph","manager":"am@example.ph",'
     '"timezone":"Asia/Manila","locale":"en"}'),
    ("meeting.held", '{"summary":"review N"}'),
    ("proposal.sent", '{"amount":1200,"currency":"PHP",'
     '"valid_until":"%s"}' % _day(90)),
    ("contact.call", '{"direction":"out","summary":"call N"}'),
    ("meeting.scheduled", '{"starts_at":"%sT10:00:00+08:00"}' % _day(70)),
    ("complaint.opened", '{"ticket":"tN","severity":"high"}'),
    ("complaint.resolved", '{"ticket":"tN"}'),
    ("contract.signed", '{"contract":"kN","starts_at":"%s",'
     '"ends_at":"%s"}' % (_day(30), _day(395))),
    ("order.fulfilled", '{"order":"oN"}'),
    ("contact.email", '{"direction":"in","summary":"mail N"}'),
]


def gen(argv):
    n = int(argv[0])
    start, ids, cmd, key = 0, False, "xadd", "suki:events"
    etype, cprefix, mix, managers = "meeting.held", "c", 0, 0
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--start":
            start = int(argv[i + 1]); i += 2
        elif a == "--ids":
            ids = True; i += 1
        elif a == "--cmd":
            cmd = argv[i + 1]; i += 2
        elif a == "--key":
            key = argv[i + 1]; i += 2
        elif a == "--type":
            etype = argv[i + 1]; i += 2
        elif a == "--client-prefix":
            cprefix = argv[i + 1]; i += 2
        elif a == "--mix":
            mix = int(argv[i + 1]); i += 2
        elif a == "--managers":
            managers = int(argv[i + 1]); i += 2
        else:
            raise SystemExit("gen: unknown option " + a)
    w = sys.stdout.buffer
    chunk = []
    for k in range(start, start + n):
        if mix:
            t, data = MIX[k % len(MIX)]
            doc = '{"type":"%s","client":"%s%d"%s,"data":%s}' % (
                t, cprefix, k % mix, (',"id":"e%d"' % k) if ids else "",
                data.replace("N", str(k)))
            if managers:
                doc = doc.replace("am@", "am%d@" % (k % mix % managers))
        else:
            doc = '{"type":"%s","client":"%s%d"%s,"data":{"n":%d}}' % (
                etype, cprefix, k, (',"id":"e%d"' % k) if ids else "", k)
        if cmd == "xadd":
            chunk.append(resp("XADD", key, "*", "event", doc))
        else:
            chunk.append(resp("LPUSH", key, doc))
        if len(chunk) >= 1000:
            w.write(b"".join(chunk)); chunk = []
    w.write(b"".join(chunk))
    w.flush()


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    if sys.argv[1] == "gen":
        gen(sys.argv[2:])
    elif sys.argv[1] == "xadd":
        port, stream = sys.argv[2], sys.argv[3]
        rest = sys.argv[4:]
        args = ["XADD", stream, "*"]
        for j in range(0, len(rest), 2):
            args += [rest[j], bytes.fromhex(rest[j + 1])]
        print(Redis(port).cmd(*args).decode())
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
