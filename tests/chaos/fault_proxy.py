#!/usr/bin/python3
"""fault_proxy.py - a TCP proxy in front of Redis that injects one fault.

  fault_proxy.py --listen-port-file F --to PORT --match BYTES
                 [--action lose|flush] [--times N]

Relays every connection to 127.0.0.1:PORT. The first N times (default 1)
that a client sends a chunk containing BYTES:
  lose   the chunk goes on to Redis, which runs it, and then that client's
         connection is closed before any reply comes back: what a client
         sees when the network or Redis's host fails between a command and
         its reply;
  flush  SCRIPT FLUSH is run on a connection of the proxy's own just before
         the chunk goes on (the script cache lost, as after a restart or a
         failover, right under the client's pipeline).
Logs "LOST" or "FLUSHED" to stdout each time."""
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
    p.add_argument("--action", choices=["lose", "flush"], default="lose")
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
                seen, tail = tail + data, data[-len(match):]
                hit = left[0] > 0 and match in seen
                if hit and a.action == "flush":
                    left[0] -= 1
                    fr, fw = await asyncio.open_connection("127.0.0.1", a.to)
                    fw.write(b"*2\r\n$6\r\nSCRIPT\r\n$5\r\nFLUSH\r\n")
                    await fr.readline()
                    fw.close()
                    print("FLUSHED", flush=True)
                swriter.write(data)
                await swriter.drain()
                if hit and a.action == "lose":
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
