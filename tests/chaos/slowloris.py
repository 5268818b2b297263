"""slowloris.py PORT PID N SECONDS - open N connections to PORT, then hold
them for SECONDS; each sends one header byte every 2 s and never finishes a
request (slowloris). All along, /healthz is probed on a fresh connection
every 250 ms. Prints one line of
key=value figures: how many connections sukid closed and how long the
longest lived, the probes and their worst latency, and the CPU seconds
process PID used meanwhile."""
import os
import resource
import selectors
import socket
import sys
import time

port, pid, n, secs = (int(a) for a in sys.argv[1:5])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < n + 64:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 256), hard))
tick = os.sysconf("SC_CLK_TCK")


def cpu():
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick


def probe():
    t = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while b"\r\n" not in data:
            b = s.recv(4096)
            if not b:
                break
            data += b
        s.close()
        ok = data.startswith(b"HTTP/1.1 200")
    except OSError:
        ok = False
    return ok, time.monotonic() - t


sel = selectors.DefaultSelector()
opened = {}
lived = []  # seconds each connection lived until sukid closed it


def reap(timeout):
    for key, _ in sel.select(timeout):
        s = key.fileobj
        try:
            gone = s.recv(4096) == b""
        except OSError:
            gone = True
        if gone:
            lived.append(time.monotonic() - opened.pop(s))
            sel.unregister(s)
            s.close()


probes = bad = 0
worst = 0.0
next_probe = time.monotonic()


def probe_due():
    global probes, bad, worst, next_probe
    now = time.monotonic()
    if now >= next_probe:
        ok, dt = probe()
        probes += 1
        bad += 0 if ok and dt < 1 else 1
        worst = max(worst, dt)
        next_probe = now + 0.25


cpu0 = cpu()
for i in range(n):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: ")
    except OSError:
        s.close()
        continue
    s.setblocking(False)
    opened[s] = time.monotonic()
    sel.register(s, selectors.EVENT_READ)
    if i % 16 == 0:
        reap(0)
        probe_due()
next_byte = time.monotonic()
end = time.monotonic() + secs
while time.monotonic() < end:
    probe_due()
    now = time.monotonic()
    if now >= next_byte:
        for s in list(opened):
            try:
                s.send(b"a")
            except OSError:
                pass
        next_byte = now + 2
    reap(0.05)
print("opened=%d closed=%d open=%d longest=%.1f probes=%d bad=%d "
      "worst=%.2f cpu=%.2f" % (len(opened) + len(lived), len(lived),
                              len(opened), max(lived or [0]), probes, bad,
                              worst, cpu() - cpu0))
