#!/usr/bin/python3
"""lose_reply.py - a TCP proxy in front of Redis that loses one reply.

  lose_reply.py --listen-port-file F --to PORT --match BYTES [--times N]

Relays every connection to 127.0.0.1:PORT. The first N times (default 1)
that a client sends a chunk containing BYTES, the chunk goes on to Redis,
which runs it, and then that client's connection is closed before any reply
comes back: what a client sees when the network or Redis's host fails
between a command and its reply. Logs "LOST" to stdout each time."""
import argparse
import asyncio
import os
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except asyncio.CancelledError:
        return  # the reply is being lost: the handler closes the client
    except ConnectionError:
        pass
    writer.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen-port-file", required=True)
    p.add_argument("--to", type=int, required=True)
    p.add_argument("--match", required=True)
    p.add_argument("--times", type=int, default=1)
    a = p.parse_args()
    match = a.match.encode()
    left = [a.times]

    async def handle(creader, cwriter):
        sreader, swriter = await asyncio.open_connection("127.0.0.1", a.to)
        back = asyncio.ensure_future(pipe(sreader, cwriter))
        tail = b""
        try:
            while True:
                data = await creader.read(65536)
                if not data:
                    break
                swriter.write(data)
                await swriter.drain()
                seen, tail = tail + data, data[-len(match):]
                if left[0] > 0 and match in seen:
                    left[0] -= 1
                    back.cancel()
                    print("LOST", flush=True)
                    await asyncio.sleep(0.3)  # Redis runs it meanwhile
                    break
        except ConnectionError:
            pass
        cwriter.close()
        swriter.close()
        back.cancel()

    loop = asyncio.new_event_loop()
    srv = loop.run_until_complete(
        asyncio.start_server(handle, "127.0.0.1", 0))
    port = srv.sockets[0].getsockname()[1]
    tmp = a.listen_port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, a.listen_port_file)
    loop.run_forever()


if __name__ == "__main__":
    sys.exit(main())
