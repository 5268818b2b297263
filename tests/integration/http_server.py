#!/usr/bin/python3
"""http_server.py - a scriptable webhook endpoint for suki's integration tests.

Standard library only (http.server). Run with /usr/bin/python3.

    http_server.py --dir DIR [--host 127.0.0.1] [--port 0] [--port-file F]
                   [--mode 200|500-then-200|429|503|400|slow]
                   [--fail-count N] [--retry-after VALUE] [--delay SECONDS]

Modes (for POST; every other method gets 405)
  200            answer 200 {"ok":true}
  500-then-200   the first N requests (--fail-count, default 1) get 500 with
                 body "upstream broken", then 200
  429            429 "slow down" with "Retry-After: VALUE" (--retry-after,
                 default "7"; an HTTP-date works too)
  503            503 "maintenance" with Retry-After like 429
  400            400 {"error":"bad payload"}
  slow           sleep --delay seconds (default 5), then 200

Records, in --dir (created if missing): body-N.json (the request body as
received), headers-N.txt (the request headers), requests.log (one line per
request: "N METHOD PATH STATUS"). The bound port goes to --port-file once the
server listens. Stop it with SIGTERM.
"""

import argparse
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    lock = threading.Lock()
    n = 0
    args = None
    log = None


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def _reply(self, status, body, headers=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        a = State.args
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with State.lock:
            State.n += 1
            n = State.n
        write_atomic(os.path.join(a.dir, "body-%d.json" % n), body)
        write_atomic(os.path.join(a.dir, "headers-%d.txt" % n),
                     str(self.headers).encode())
        hdrs = ()
        if a.mode == "200":
            status, text = 200, '{"ok":true}'
        elif a.mode == "500-then-200":
            if n <= a.fail_count:
                status, text = 500, "upstream broken"
            else:
                status, text = 200, '{"ok":true}'
        elif a.mode in ("429", "503"):
            status = int(a.mode)
            text = "slow down" if status == 429 else "maintenance"
            hdrs = (("Retry-After", a.retry_after),)
        elif a.mode == "400":
            status, text = 400, '{"error":"bad payload"}'
        else:
            time.sleep(a.delay)
            status, text = 200, '{"ok":true}'
        with State.lock:
            State.log.write("%d POST %s %d\n" % (n, self.path, status))
            State.log.flush()
        self._reply(status, text, hdrs)

    def do_GET(self):
        self._reply(405, '{"error":"POST only"}')


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--dir", required=True)
    p.add_argument("--mode", default="200",
                   choices=["200", "500-then-200", "429", "503", "400",
                            "slow"])
    p.add_argument("--fail-count", type=int, default=1)
    p.add_argument("--retry-after", default="7")
    p.add_argument("--delay", type=float, default=5.0)
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    State.args = args
    State.log = open(os.path.join(args.dir, "requests.log"), "a")

    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(tmp, args.port_file)

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    srv.serve_forever()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
