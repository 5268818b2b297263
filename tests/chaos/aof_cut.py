#!/usr/bin/python3
"""aof_cut.py - lose Redis's last acknowledged writes the way appendfsync
everysec can: cut the append-only file back to an earlier length.

  aof_cut.py mark DIR            print "FILE SIZE": the AOF increment file
                                 Redis appends to now (from DIR's
                                 manifest, Redis 7 multi-part AOF) and its
                                 length
  aof_cut.py cut FILE SIZE TAIL  (Redis stopped) move the bytes past SIZE
                                 of FILE (moved back to the end of a whole
                                 command outside MULTI/EXEC) into TAIL and
                                 truncate FILE there: everything Redis
                                 wrote after the mark is gone, as if it
                                 had never reached the disk
  aof_cut.py parse PREFIX STREAM FILE...
                                 what the commands in FILEs wrote: one line
                                 "event CLIENT" per XADD of an event to
                                 STREAM, "marker MESSAGE-ID" per SET of
                                 PREFIX:sent:MESSAGE-ID
With everysec Redis writes each command to the file before it answers but
syncs it only every second; a kill -9 of Redis alone loses nothing the
kernel holds, a crash of the host (or a write Redis postponed while a sync
was slow) loses up to the last second or two. Cutting the file back to a
length it had under a second before the kill is that loss."""
import json
import os
import sys


def manifest_incr(d):
    d = os.path.join(d, "appendonlydir")
    man = [f for f in os.listdir(d) if f.endswith(".manifest")]
    last = None
    for line in open(os.path.join(d, man[0])):
        w = line.split()
        kv = dict(zip(w[0::2], w[1::2]))
        if kv.get("type") == "i":
            last = kv["file"]
    return os.path.join(d, last)


def commands(data):
    """RESP arrays in data; a command cut short at either end is skipped."""
    i, n = 0, len(data)
    while i < n:
        if data[i:i + 1] != b"*":
            j = data.find(b"\r\n*", i)
            if j < 0:
                return
            i = j + 2
            continue
        try:
            e = data.index(b"\r\n", i)
            k = int(data[i + 1:e])
            i = e + 2
            args = []
            for _ in range(k):
                if data[i:i + 1] != b"$":
                    raise ValueError
                e = data.index(b"\r\n", i)
                ln = int(data[i + 1:e])
                a = data[e + 2:e + 2 + ln]
                if len(a) < ln:
                    raise ValueError
                args.append(a)
                i = e + 2 + ln + 2
            yield args
        except ValueError:
            i += 1


def boundary(data, size):
    """The largest length <= size that ends after a whole command and
    outside MULTI/EXEC: the mark may have been taken in the middle of one
    of Redis's writes, and Redis drops a transaction cut short when it
    loads, which would lose writes the tail does not show."""
    i, good, multi = 0, 0, None
    while i < size:
        try:
            if data[i:i + 1] != b"*":
                raise ValueError
            e = data.index(b"\r\n", i)
            k = int(data[i + 1:e])
            j = e + 2
            name = None
            for _ in range(k):
                e = data.index(b"\r\n", j)
                ln = int(data[j + 1:e])
                if name is None:
                    name = data[e + 2:e + 2 + ln].upper()
                j = e + 2 + ln + 2
            if j > size:
                break
        except ValueError:
            break
        if name == b"MULTI":
            multi = i
        elif name == b"EXEC":
            multi = None
        i = j
        if multi is None:
            good = i
    return good


def main():
    op = sys.argv[1]
    if op == "mark":
        f = manifest_incr(sys.argv[2])
        print(f, os.path.getsize(f))
    elif op == "cut":
        f, size, tail = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        with open(f, "rb") as fh:
            data = fh.read()
        size = boundary(data, size)
        rest = data[size:]
        with open(tail, "wb") as fh:
            fh.write(rest)
        os.truncate(f, size)
        print("cut %d bytes" % len(rest))
    elif op == "parse":
        prefix, stream = sys.argv[2].encode(), sys.argv[3].encode()
        sent = prefix + b":sent:"
        for path in sys.argv[4:]:
            for a in commands(open(path, "rb").read()):
                c = a[0].upper()
                if c == b"XADD" and len(a) >= 5 and a[1] == stream:
                    for k in range(3, len(a) - 1, 2):
                        if a[k] == b"event":
                            try:
                                ev = json.loads(a[k + 1])
                                print("event", ev["client"])
                            except (ValueError, KeyError, TypeError):
                                pass
                elif c == b"SET" and len(a) >= 2 and a[1].startswith(sent):
                    print("marker", a[1][len(sent):].decode())
    else:
        sys.exit("usage: aof_cut.py mark|cut|parse ...")


if __name__ == "__main__":
    main()
