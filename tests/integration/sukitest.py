"""sukitest.py - helpers for the shell integration tests (run with
/usr/bin/python3; standard library only).

As a module: Redis(port).cmd(*args) - a minimal RESP2 client that sends
arbitrary bytes (invalid UTF-8, NUL) where redis-cli cannot.

As a program:
  sukitest.py gen N [--start S] [--ids] [--cmd xadd|lpush] [--key KEY]
              [--type T] [--client-prefix P]
      print RESP commands for `redis-cli --pipe`: N events for clients
      P<S>..P<S+N-1> (one event each), with ids "e<i>" when --ids.
  sukitest.py xadd PORT STREAM FIELD HEXVALUE [FIELD HEXVALUE...]
      XADD raw bytes given in hex; prints the new stream id.
"""
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


def gen(argv):
    n = int(argv[0])
    start, ids, cmd, key = 0, False, "xadd", "suki:events"
    etype, cprefix = "meeting.held", "c"
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
        else:
            raise SystemExit("gen: unknown option " + a)
    w = sys.stdout.buffer
    chunk = []
    for k in range(start, start + n):
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
