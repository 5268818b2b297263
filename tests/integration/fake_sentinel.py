#!/usr/bin/python3
"""fake_sentinel.py - a scripted Redis Sentinel for suki's tests.

    fake_sentinel.py --port-file F --master NAME --answer FILE
                     [--password PW] [--switch FILE]

Speaks enough RESP for a Sentinel client: AUTH (checked against
--password when given), PING, SENTINEL get-master-addr-by-name (the
answer is read from FILE, "host port", at every question; an empty or
missing file answers nil; another name answers nil), SUBSCRIBE. When the
file --switch appears, its one line is published once to every
+switch-master subscriber and the file is removed. Every command is
appended to F.log.
"""
import argparse
import asyncio
import os


def enc(v):
    if v is None:
        return b"*-1\r\n"
    if isinstance(v, list):
        return b"*%d\r\n" % len(v) + b"".join(enc(x) for x in v)
    if isinstance(v, int):
        return b":%d\r\n" % v
    v = v.encode() if isinstance(v, str) else v
    return b"$%d\r\n%s\r\n" % (len(v), v)


async def read_cmd(r):
    line = await r.readline()
    if not line:
        return None
    if not line.startswith(b"*"):
        return line.strip().split()
    n = int(line[1:])
    out = []
    for _ in range(n):
        ln = await r.readline()
        m = int(ln[1:])
        out.append((await r.readexactly(m + 2))[:-2])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--master", required=True)
    ap.add_argument("--answer", required=True)
    ap.add_argument("--password")
    ap.add_argument("--switch")
    a = ap.parse_args()
    subs = set()
    log = open(a.port_file + ".log", "a")

    async def client(r, w):
        authed = a.password is None
        while True:
            cmd = await read_cmd(r)
            if cmd is None:
                break
            name = cmd[0].decode().upper() if cmd else ""
            log.write(" ".join(x.decode(errors="replace") for x in cmd) + "\n")
            log.flush()
            if name == "AUTH":
                if a.password is not None and cmd[-1].decode() == a.password:
                    authed = True
                    w.write(b"+OK\r\n")
                else:
                    w.write(b"-WRONGPASS invalid username-password pair\r\n")
            elif not authed:
                w.write(b"-NOAUTH Authentication required.\r\n")
            elif name == "PING":
                w.write(b"+PONG\r\n")
            elif name == "SENTINEL" and len(cmd) == 3 and \
                    cmd[1].lower() == b"get-master-addr-by-name":
                ans = None
                if cmd[2].decode() == a.master:
                    try:
                        parts = open(a.answer).read().split()
                        if len(parts) == 2:
                            ans = parts
                    except OSError:
                        pass
                w.write(enc(ans))
            elif name == "SUBSCRIBE":
                for ch in cmd[1:]:
                    w.write(enc([b"subscribe", ch, 1]))
                subs.add(w)
            else:
                w.write(b"-ERR unknown command\r\n")
            await w.drain()
        subs.discard(w)
        w.close()

    async def switcher():
        while True:
            await asyncio.sleep(0.1)
            if a.switch and os.path.exists(a.switch):
                msg = open(a.switch).read().strip()
                os.unlink(a.switch)
                for w in list(subs):
                    w.write(enc([b"message", b"+switch-master", msg]))

    async def run():
        srv = await asyncio.start_server(client, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
        asyncio.ensure_future(switcher())
        async with srv:
            await srv.serve_forever()

    asyncio.run(run())


if __name__ == "__main__":
    main()
