#!/usr/bin/python3
"""report_events.py OUTDIR - the events of report.sh and what the report
must say of them.

Writes OUTDIR/events1.jsonl and events2.jsonl (pushed in that order, the
second after the first is applied: its duplicates meet the seen markers),
OUTDIR/expected.json ({month: {manager: figures}}) and OUTDIR/months
(previous month, the one before, the current one). Dates are relative to
now: the previous calendar month in Asia/Manila, with events at 00:30 on
its first day and 23:30 on its last, and one each just outside it."""
import datetime
import json
import sys
import zoneinfo

Z = zoneinfo.ZoneInfo("Asia/Manila")
now = datetime.datetime.now(Z)
cur = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
pm_end = cur  # first instant of the current month
pm = (cur - datetime.timedelta(days=1)).replace(day=1)
ppm_last = pm - datetime.timedelta(days=1)  # a day of the month before
last_day = (pm_end - datetime.timedelta(days=1)).day


def iso(t):
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def L(day, hh, mm=0, base=pm):
    """Manila local time on day of base's month (-1: its last day)."""
    if day == -1:
        nxt = (base.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
        day = (nxt - datetime.timedelta(days=1)).day
    return iso(base.replace(day=day, hour=hh, minute=mm))


def month(t):
    return datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).astimezone(Z).strftime("%Y-%m")


ANA, BEN, CARLA = "ana@example.ph", "ben@example.ph", "carla@example.ph"
E = []


def ev(typ, client, at, eid=None, **data):
    e = {"type": typ, "client": client, "at": at, "data": data}
    if eid:
        e["id"] = eid
    E.append(e)
    return e


mgr0 = {"a1": ANA, "a2": ANA, "a3": ANA, "x1": ANA, "b1": BEN, "b2": BEN,
        "c1": CARLA, "c2": CARLA}
for c, m in mgr0.items():
    # the month's first half hour: still the month in Manila (the day
    # before in UTC)
    ev("client.created", c, L(1, 0, 30), "cc-" + c, name="Client " + c,
       email=c + "@client.ph", manager=m)
ev("deal.won", "a1", L(10, 9), "dw-a1", deal="D-1", amount=12500.50)
ev("meeting.held", "a1", L(5, 10), "mh-a1")  # arrives after a later event
ev("deal.won", "a2", L(11, 9), "dw-a2", deal="D-2", amount="3000")
ev("deal.lost", "a2", L(-1, 23, 30), "dl-a2", deal="D-3", amount=999.99)
ev("deal.won", "a3", L(1, 0, 30, base=cur), "dw-a3", deal="D-4", amount=100)
ev("deal.won", "a3", L(-1, 23, 30, base=ppm_last), "dw-a3b", deal="D-5",
   amount=50)
ev("complaint.resolved", "b1", L(6, 12), "cr-b1", ticket="T-1")  # before open
ev("complaint.opened", "b1", L(4, 12), "co-b1", ticket="T-1")
ev("complaint.opened", "b2", L(7, 9), "co-b2", ticket="T-2")
ev("complaint.opened", "c1", L(2, 8), "co-c1", ticket="T-3")
ev("complaint.resolved", "c1", L(2, 20), "cr-c1", ticket="T-3")
ev("consent.unsubscribed", "c2", L(15, 9), "u-c2")
ev("email.bounced", "c2", L(16, 9), "bo-c2", address="c2@client.ph",
   status="5.1.1")
ev("meeting.held", "x1", L(3, 9), "mh-x1")
ev("client.updated", "x1", L(20, 9), "cu-x1", manager=BEN)
ev("meeting.held", "x1", L(21, 9), "mh-x1b")
ends45 = iso(now + datetime.timedelta(days=45))
ends100 = iso(now + datetime.timedelta(days=100))
ev("contract.signed", "a1", L(8, 9), "cs-a1", contract="C-45", ends_at=ends45)
ev("contract.signed", "b1", L(8, 9), "cs-b1", contract="C-100",
   ends_at=ends100)
first = list(E)
# the second push: duplicates of three ids, and one more event
dups = [e for e in first if e.get("id") in ("dw-a1", "co-b1", "u-c2")]
E = []
ev("meeting.held", "c1", L(-1, 23, 30), "mh-c1")
second = dups + E

# The model: events by arrival, each id once; the manager a client has
# when its event applies; complaints by ticket, whichever end comes first.
exp, seen, mgr, tickets = {}, set(), {}, {}


def fig(mo, m):
    return exp.setdefault(mo, {}).setdefault(m, {
        "events": {}, "deals_won": 0, "deals_won_amount": 0,
        "deals_lost": 0, "deals_lost_amount": 0, "complaints_opened": 0,
        "complaints_resolved": 0, "complaints_open": 0, "_ttr": [],
        "unsubscribes": 0, "bounces": 0})


for e in first + second:
    if e["id"] in seen:
        continue
    seen.add(e["id"])
    c, d = e["client"], e["data"]
    if "manager" in d:
        mgr[c] = d["manager"]
    mo = month(e["at"])
    f = fig(mo, mgr[c])
    f["events"][e["type"]] = f["events"].get(e["type"], 0) + 1
    if e["type"] in ("deal.won", "deal.lost"):
        w = "deals_won" if e["type"] == "deal.won" else "deals_lost"
        f[w] += 1
        f[w + "_amount"] = round(f[w + "_amount"] + float(d["amount"]), 2)
    if e["type"] == "consent.unsubscribed":
        f["unsubscribes"] += 1
    if e["type"] == "email.bounced":
        f["bounces"] += 1
    if e["type"].startswith("complaint."):
        at = datetime.datetime.strptime(e["at"], "%Y-%m-%dT%H:%M:%SZ")
        t = tickets.setdefault(d["ticket"], {})
        if e["type"] == "complaint.opened":
            f["complaints_opened"] += 1
            t["o"], t["of"] = at, f
            if "r" in t:
                t["rf"]["_ttr"].append((t["r"] - at).total_seconds())
            else:
                f["complaints_open"] += 1
        else:
            f["complaints_resolved"] += 1
            t["r"], t["rf"] = at, f
            if "o" in t:
                f["_ttr"].append((at - t["o"]).total_seconds())
                t["of"]["complaints_open"] -= 1
for mo in exp.values():
    for f in mo.values():
        ttr = f.pop("_ttr")
        f["resolve_hours_avg"] = round(sum(ttr) / len(ttr) / 3600, 1) \
            if ttr else 0

out = sys.argv[1]
for name, evs in (("events1.jsonl", first), ("events2.jsonl", second)):
    with open(out + "/" + name, "w") as fh:
        for e in evs:
            fh.write(json.dumps(e) + "\n")
with open(out + "/expected.json", "w") as fh:
    json.dump(exp, fh, indent=1, sort_keys=True)
with open(out + "/months", "w") as fh:
    fh.write("%s %s %s\n" % (pm.strftime("%Y-%m"), ppm_last.strftime("%Y-%m"),
                             cur.strftime("%Y-%m")))
