#!/usr/bin/python3
"""smtp_server.py - a scriptable SMTP server for suki's integration tests.

Built on aiosmtpd (Debian: python3-aiosmtpd). Run with /usr/bin/python3.

    smtp_server.py --dir DIR [--host 127.0.0.1] [--port 0] [--port-file F]
                   [--mode accept|fail451|reject550|slow]
                   [--fail-count N] [--fail-at mail|rcpt|data]
                   [--reject-rcpt ADDR]... [--delay SECONDS]
                   [--tls-cert CERT --tls-key KEY
                    [--require-starttls | --implicit-tls]]

Modes
  accept     every message is accepted (250).
  fail451    the first N transactions (--fail-count, default 1) get
             "451 4.3.0 Try again later" at --fail-at (default data: the reply
             to the final "."); later ones are accepted.
  reject550  RCPT TO of each --reject-rcpt address gets "550 5.1.1 <addr>:
             Recipient address rejected: no such user"; with no
             --reject-rcpt every recipient is rejected.
  slow       sleep --delay seconds (default 5) before answering the final
             "." (use it to trigger client timeouts).

TLS: with --tls-cert/--tls-key the server offers STARTTLS; with
--require-starttls it refuses MAIL before STARTTLS (530); with
--implicit-tls it speaks TLS from the first byte instead (smtps://).

Records, in --dir (created if missing):
  msg-N.eml     the message bytes as received (N counts from 1)
  msg-N.json    {"mail_from", "rcpt_tos", "tls", "peer", "session"}
  events.log    one line per event: "CONNECT <session>", "EHLO <name>",
                "STARTTLS", "MAIL <addr>", "RCPT <addr> <code>",
                "DATA <N> <code>"; appended and flushed as they happen
The port actually bound is written to --port-file (atomically) once the
server listens, so tests can bind port 0 and wait for that file.
Stop it with SIGTERM.
"""

import argparse
import asyncio
import json
import os
import time
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP


class Recorder:
    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.log = open(os.path.join(directory, "events.log"), "a")
        self.n_msgs = 0
        self.n_sessions = 0

    def event(self, line):
        self.log.write(line + "\n")
        self.log.flush()

    def write_atomic(self, name, data):
        tmp = os.path.join(self.dir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.dir, name))


class Handler:
    def __init__(self, args, rec):
        self.args = args
        self.rec = rec
        self.transactions = 0  # MAIL FROM seen
        self.reject = set(a.lower() for a in (args.reject_rcpt or []))

    def _failing(self, stage):
        a = self.args
        return (a.mode == "fail451" and a.fail_at == stage
                and self.transactions <= a.fail_count)

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        self.rec.event("EHLO %s" % hostname)
        return responses

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        self.transactions += 1
        self.rec.event("MAIL %s" % address)
        if self._failing("mail"):
            return "451 4.3.0 Try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        code = "250 OK"
        if self._failing("rcpt"):
            code = "451 4.3.0 Try again later"
        elif self.args.mode == "reject550" and (
                not self.reject or address.lower() in self.reject):
            code = ("550 5.1.1 <%s>: Recipient address rejected: "
                    "no such user" % address)
        self.rec.event("RCPT %s %s" % (address, code[:3]))
        if code.startswith("250"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return code

    async def handle_DATA(self, server, session, envelope):
        if self.args.mode == "slow":
            await asyncio.sleep(self.args.delay)
        if self._failing("data"):
            self.rec.event("DATA - 451")
            return "451 4.3.0 Try again later"
        self.rec.n_msgs += 1
        n = self.rec.n_msgs
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": bool(session.ssl) or (
                server.transport.get_extra_info("ssl_object") is not None),
            "peer": list(session.peer) if session.peer else None,
            "session": getattr(session, "suki_id", 0),
        }
        self.rec.write_atomic("msg-%d.eml" % n, data)
        self.rec.write_atomic("msg-%d.json" % n,
                              json.dumps(meta).encode() + b"\n")
        self.rec.event("DATA %d 250" % n)
        return "250 2.0.0 Ok: queued as %d" % n


class CountingSMTP(SMTP):
    recorder = None

    def connection_made(self, transport):
        is_new = self.transport is None
        super().connection_made(transport)
        if is_new:
            r = CountingSMTP.recorder
            r.n_sessions += 1
            self.session.suki_id = r.n_sessions
            r.event("CONNECT %d" % r.n_sessions)
        else:
            # called again with the TLS transport after STARTTLS
            CountingSMTP.recorder.event("STARTTLS")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--dir", required=True)
    p.add_argument("--mode", default="accept",
                   choices=["accept", "fail451", "reject550", "slow"])
    p.add_argument("--fail-count", type=int, default=1)
    p.add_argument("--fail-at", default="data",
                   choices=["mail", "rcpt", "data"])
    p.add_argument("--reject-rcpt", action="append")
    p.add_argument("--delay", type=float, default=5.0)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--listen-after", metavar="FILE",
                   help="start up, then bind only once FILE exists (a test "
                   "can bring the server back within milliseconds, "
                   "however slow Python's start-up is on a loaded host; "
                   "DIR/waiting tells it is ready to)")
    args = p.parse_args()

    rec = Recorder(args.dir)
    CountingSMTP.recorder = rec
    handler = Handler(args, rec)
    ctx = None
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return CountingSMTP(handler, hostname="smtp-server.test",
                            tls_context=None if args.implicit_tls else ctx,
                            require_starttls=args.require_starttls,
                            data_size_limit=64 * 1024 * 1024,
                            enable_SMTPUTF8=True, decode_data=False,
                            timeout=60)

    if args.listen_after:
        with open(os.path.join(args.dir, "waiting"), "w") as f:
            f.write("%d\n" % os.getpid())
        while not os.path.exists(args.listen_after):
            time.sleep(0.01)
    server = loop.run_until_complete(
        loop.create_server(factory, host=args.host, port=args.port,
                           ssl=ctx if args.implicit_tls else None))
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    try:
        loop.run_forever()
    finally:
        server.close()
        rec.log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
