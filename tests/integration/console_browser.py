#!/usr/bin/python3
"""console_browser.py - the console in a real browser: headless Chromium
driven by python3-selenium and chromium-driver (console_browser.sh starts
sukid and Redis).

    console_browser.py   (env: CP, REDIS_PORT, PREFIX, TOPDIR, ARTIFACTS,
                          DEAD_ID, USER, PASSWORD)

Logs in, checks the overview's figures against Redis, replays a dead
letter from its page, and checks that the page loaded nothing from another
origin and that the browser reported no CSP violation. Screenshots go to
ARTIFACTS. A browser that cannot start is a failure, said loudly.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ["TOPDIR"], "tests/integration"))
from sukitest import Redis  # noqa: E402

CP = int(os.environ["CP"])
P = os.environ.get("PREFIX", "suki")
R = Redis(int(os.environ["REDIS_PORT"]))
ART = os.environ["ARTIFACTS"]
BASE = "http://127.0.0.1:%d" % CP


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def ok(msg):
    print("ok: " + msg)


try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as e:
    fail("python3-selenium is missing (%s): apt-get install python3-selenium "
         "chromium chromium-driver (scripts/deps.sh)" % e)

opts = webdriver.ChromeOptions()
for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
          "--disable-dev-shm-usage", "--window-size=1280,900",
          "--no-first-run", "--disable-extensions",
          "--disable-background-networking", "--disable-sync",
          "--disable-component-update", "--disable-default-apps"):
    opts.add_argument(a)
opts.binary_location = "/usr/bin/chromium"
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
try:
    drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"),
                           options=opts)
except Exception as e:  # noqa: BLE001 - any reason is a failure to report
    fail("headless Chromium did not start: %s (needs chromium and "
         "chromium-driver: scripts/deps.sh)" % str(e).strip())
ok("headless Chromium started (%s)" % drv.capabilities.get("browserVersion"))

wait = WebDriverWait(drv, 15)


def click(id_):
    # a real click; the campaigns table is redrawn every 5 s, so a button
    # found just before a redraw is looked up again
    from selenium.common.exceptions import StaleElementReferenceException
    for _ in range(5):
        try:
            wait.until(EC.element_to_be_clickable((By.ID, id_))).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.1)
    fail("could not click #" + id_)


def shot(name):
    path = os.path.join(ART, name + ".png")
    drv.save_screenshot(path)
    print("screenshot: " + path)


def text(id_):
    # read in one step: the pages redraw their tables as they refresh
    return drv.execute_script(
        "const e = document.getElementById(arguments[0]);"
        "return e ? e.textContent : '';", id_)


try:
    drv.get(BASE + "/")
    wait.until(EC.visibility_of_element_located((By.ID, "login-user")))
    shot("1-login")
    ok("the login page shows")
    drv.find_element(By.ID, "login-user").send_keys(os.environ["USER_NAME"])
    drv.find_element(By.ID, "login-password").send_keys("wrong")
    drv.find_element(By.ID, "login-submit").click()
    wait.until(lambda d: d.find_element(By.ID, "error").is_displayed())
    if "wrong" not in text("error"):
        fail("a wrong password shows: %r" % text("error"))
    ok("a wrong password: the page says so")
    pw = drv.find_element(By.ID, "login-password")
    pw.clear()
    pw.send_keys(os.environ["PASSWORD"])
    drv.find_element(By.ID, "login-submit").click()
    wait.until(EC.visibility_of_element_located((By.ID, "page-overview")))
    # figures arrive with the first poll
    want = {"dead_entries": R.cmd("XLEN", P + ":dead"),
            "jobs_scheduled": R.cmd("ZCARD", P + ":jobs"),
            "stream_length": R.cmd("XLEN", P + ":events")}
    try:
        wait.until(lambda d: all(text("ov-" + k) == str(v)
                                 for k, v in want.items()))
    except Exception:  # noqa: BLE001
        shot("2-overview-mismatch")
        fail("overview figures %r, Redis has %r" % (
            {k: text("ov-" + k) for k in want}, want))
    try:
        wait.until(lambda d: all(
            d.find_element(By.ID, c).get_attribute("data-points") == "60"
            for c in ("chart-events", "chart-messages", "chart-lateness")))
    except Exception:  # noqa: BLE001
        shot("2-charts-missing")
        fail("the three charts were not drawn with 60 minutes each")
    ok("the three live charts are drawn, 60 minutes each")
    rows = drv.find_elements(By.CSS_SELECTOR, "#daemons tbody tr")
    if len(rows) != 1 or "email: closed" not in rows[0].text:
        fail("the daemons table: %r" % [r.text for r in rows])
    shot("2-overview")
    ok("logged in; the overview's figures match Redis %r, the daemon and "
       "its breaker are shown" % want)

    # the jobs page lists the scheduled jobs
    drv.find_element(By.ID, "nav-jobs").click()
    wait.until(lambda d: len(d.find_elements(
        By.CSS_SELECTOR, "#jobs tbody tr")) == want["jobs_scheduled"])
    shot("3-jobs")
    ok("the jobs page lists the %d scheduled jobs" % want["jobs_scheduled"])

    # replay a dead letter from its page
    dead_id = os.environ["DEAD_ID"]
    drv.find_element(By.ID, "nav-dead").click()
    wait.until(EC.element_to_be_clickable((By.ID, "replay-" + dead_id)))
    shot("4-dead")
    xlen = R.cmd("XLEN", P + ":events")
    click("replay-" + dead_id)
    wait.until(lambda d: not d.find_elements(By.ID, "replay-" + dead_id))
    shot("5-dead-replayed")
    if R.cmd("XRANGE", P + ":dead", dead_id, dead_id) != []:
        fail("the replayed dead letter is still in P:dead")
    # the event went back into the stream (and is applied from there)
    deadline = time.time() + 10
    while time.time() < deadline:
        if (R.cmd("XLEN", P + ":events") > xlen or
                R.cmd("HGET", P + ":client:browser-replay", "name")):
            break
        time.sleep(0.1)
    else:
        fail("the replayed event reached neither the stream nor the profile")
    ok("a dead letter replayed from its page: gone from P:dead, the event "
       "back in the stream")
    # the rest in bulk: select all, replay selected (one request)
    # (an invalid event comes back as a new dead letter: the old ids count)
    before = [e[0] for e in R.cmd("XRANGE", P + ":dead", "-", "+")]
    click("dead-all")
    click("dead-replay-selected")
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#dead tbody tr"))
    still = [i for i in before if R.cmd("XRANGE", P + ":dead", i, i)]
    if not before or still:
        fail("bulk replay: %r before, %r still there" % (before, still))
    ok("the other %d dead letter(s) replayed in bulk from the page"
       % len(before))

    # pause and resume a campaign from its page
    ck = P + ":campaign:spring"
    drv.find_element(By.ID, "nav-campaigns").click()
    wait.until(EC.element_to_be_clickable((By.ID, "pause-spring")))
    if not text("state-spring").startswith("scheduled"):
        fail("the campaign's state shows %r" % text("state-spring"))
    shot("6-campaigns")
    click("pause-spring")
    wait.until(lambda d: text("state-spring").startswith("paused"))
    if R.cmd("HGET", ck, "state") != b"paused":
        fail("paused on the page, %r in Redis" % R.cmd("HGET", ck, "state"))
    shot("7-campaign-paused")
    wait.until(EC.element_to_be_clickable((By.ID, "resume-spring")))
    click("resume-spring")
    wait.until(lambda d: text("state-spring").startswith("scheduled"))
    if R.cmd("HGET", ck, "state") != b"scheduled":
        fail("resumed on the page, %r in Redis" % R.cmd("HGET", ck, "state"))
    shot("8-campaign-resumed")
    ok("a campaign paused and resumed from its page, as Redis has it")

    # a client's page: its profile, pending reminders and timeline (an
    # entry with markup in its summary: shown as text, never parsed)
    R.cmd("LPUSH", P + ":timeline:c0",
          '{"k":"e","t":"browser.seen","at":%d,"id":"b-1",'
          '"s":"<b id=\\"inj\\">x</b>"}' % int(time.time() * 1000))
    drv.find_element(By.ID, "nav-client").click()
    wait.until(EC.visibility_of_element_located((By.ID, "client-id")))
    drv.find_element(By.ID, "client-id").send_keys("c0")
    drv.find_element(By.ID, "client-show").click()
    wait.until(lambda d: text("client-jobs").count("sched-test:c0:") ==
               len(R.cmd("HKEYS", P + ":job:c0")) > 0)
    wait.until(lambda d: "browser.seen" in text("client-timeline"))
    if ('<b id="inj">x</b>' not in text("client-timeline") or
            drv.execute_script("return !!document.getElementById('inj')")):
        fail("the timeline's summary: %r" % text("client-timeline"))
    shot("9-client")
    ok("the client page lists c0's pending reminders, as Redis has them, "
       "and its timeline (a summary with markup shown as text)")

    # nothing from another origin, and no CSP complaint
    entries = drv.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".concat([location.href])")
    foreign = [e for e in entries if not e.startswith(BASE + "/")]
    if foreign or len(entries) < 4:
        fail("requests to other origins: %r (all: %r)" % (foreign, entries))
    logs = drv.get_log("browser")
    bad = [m for m in logs if "Content Security Policy" in m["message"] or
           "Refused to" in m["message"]]
    if bad:
        fail("CSP violations: %r" % bad)
    with open(os.path.join(ART, "requests.json"), "w") as f:
        json.dump({"resources": entries, "console": logs}, f, indent=1)
    ok("%d requests, every one to %s; no CSP violation in the console"
       % (len(entries), BASE))
finally:
    drv.quit()
