#!/usr/bin/python3
"""chaos_check.py - what reached the SMTP server(s) and Redis, against what
the producer had acknowledged.

  chaos_check.py (--smtpd DIR [--smtpd DIR...] | --spool DIR --log LOG)
                 --want FILE --port PORT [--prefix P] [--maybe FILE]
                 [--dup-ok FILE]

DIR: a directory of tests/integration/smtp_server.py (msg-N.eml), or with
--spool a spool directory (one <Message-ID>.eml each: a second delivery
replaces the first, so the copies are counted from sukid's log LOG, one
"message-id=<id>, status=sent" line per delivery). FILE:
client ids, one a line (producer.py's --acked). Each reminder is matched to
its client by the sched-test template's Subject ("Reminder sched-test for
<client>"). Checks, exiting 1 with the reason when one fails:
  - every wanted client got its reminder, and exactly once (the same
    Message-ID never twice) unless its Message-ID is in --dup-ok;
  - no reminder for a client that is neither wanted nor in --maybe (the
    clients whose events Redis itself lost: their reminder may or may not
    have gone out before the loss);
  - in Redis, every wanted client's event was applied exactly once
    (P:client-events <client> = 1).
Prints "expected E delivered D duplicated K" (D: distinct reminders of
wanted clients; K: extra copies at the server)."""
import argparse
import collections
import glob
import re
import sys

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/integration")
from sukitest import Redis  # noqa: E402


def lines(path):
    if not path:
        return set()
    with open(path) as f:
        return set(x.strip() for x in f if x.strip())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smtpd", action="append", default=[])
    p.add_argument("--spool")
    p.add_argument("--log")
    p.add_argument("--want", required=True)
    p.add_argument("--maybe")
    p.add_argument("--dup-ok")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--prefix", default="suki")
    a = p.parse_args()
    want, maybe = lines(a.want), lines(a.maybe)
    dup_ok = set(x.strip("<>") for x in lines(a.dup_ok))
    by_mid = collections.Counter()
    mid_client = {}
    files = [f for d in a.smtpd for f in glob.glob(d + "/msg-*.eml")]
    if a.spool:
        files = glob.glob(a.spool + "/*.eml")
    for f in files:
        head = open(f, "rb").read().split(b"\r\n\r\n", 1)[0]
        head = head.decode("utf-8", "replace")
        m = re.search(r"(?mi)^Subject: Reminder sched-test for (\S+)", head)
        i = re.search(r"(?mi)^Message-ID: (\S+)", head)
        if not m or not i:
            print("FAIL: %s is no reminder" % f)
            return 1
        mid = i.group(1).strip("<>")
        by_mid[mid] += 1
        mid_client[mid] = m.group(1)
    if a.spool:
        sent = collections.Counter(
            m.group(1).strip("<>") for m in re.finditer(
                r"message-id=(\S+), status=sent", open(a.log).read()))
        for mid in by_mid:
            by_mid[mid] = sent[mid]
    got = collections.Counter(mid_client.values())
    errs = []
    missing = sorted(want - set(got))
    if missing:
        errs.append("%d wanted reminders never arrived, e.g. %s"
                    % (len(missing), missing[:5]))
    twice = [(c, n) for c, n in got.items() if n > 1]
    if twice:
        errs.append("%d clients got two reminders (different ids): %s"
                    % (len(twice), twice[:5]))
    dups = {mid: n for mid, n in by_mid.items() if n > 1}
    bad = sorted(mid_client[m] for m in dups if m not in dup_ok)
    if bad:
        errs.append("%d reminders went out twice, e.g. %s"
                    % (len(bad), bad[:5]))
    extra = sorted(set(got) - want - maybe)
    if extra:
        errs.append("%d reminders for clients never acknowledged: %s"
                    % (len(extra), extra[:5]))
    r = Redis(a.port)
    key = a.prefix + ":client-events"
    notonce = []
    for c in sorted(want):
        v = r.cmd("HGET", key, c)
        if v != b"1":
            notonce.append((c, v))
    if notonce:
        errs.append("%d wanted events not applied exactly once, e.g. %s"
                    % (len(notonce), notonce[:5]))
    print("expected %d delivered %d duplicated %d"
          % (len(want), len(want & set(got)),
             sum(n - 1 for n in by_mid.values())))
    for e in errs:
        print("FAIL: " + e)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
