#!/bin/sh
# console_browser.sh - the operator console in headless Chromium
# (python3-selenium + chromium-driver) against a real sukid and Redis: log
# in, the overview's figures match Redis, the jobs are listed, a dead
# letter is replayed from its page, a campaign is paused and resumed from
# its page, and no request leaves the console's
# origin. Screenshots are kept in tests/artifacts/console_browser/ of the
# build tree. A browser that cannot start fails the test (never a skip).
. "$top_srcdir/tests/integration/console_lib.sh"
need chromium chromedriver

ARTIFACTS=$top_builddir/tests/artifacts/console_browser
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS" || fail "cannot create $ARTIFACTS"

console_start
console_user admin 'browser pw'
add_jobs --count 3 --due $(($(now_ms) + 7200000)) --spread 60000
DEAD_ID=$(rcli XADD "$SUKI_PREFIX:dead" '*' kind event reason "invalid: test" \
    source "$SUKI_PREFIX:events" \
    payload '{"type":"client.updated","client":"browser-replay","data":{"name":"B"}}')
rcli XADD "$SUKI_PREFIX:dead" '*' kind event reason "another" payload '{}' >/dev/null

tomorrow=$(date -u -d tomorrow +%Y-%m-%dT%H:%M:%SZ)
sukictl campaign create spring --template promo --audience all --start-at "$tomorrow" >/dev/null ||
    fail "campaign create"

export CP REDIS_PORT PREFIX=$SUKI_PREFIX TOPDIR=$top_srcdir ARTIFACTS DEAD_ID \
    USER_NAME=admin PASSWORD='browser pw'
"$PY" "$top_srcdir/tests/integration/console_browser.py" || fail "console_browser.py"
[ "$(ls "$ARTIFACTS"/*.png | wc -l)" -ge 5 ] || fail "screenshots missing in $ARTIFACTS"
ok "screenshots in $ARTIFACTS"
stop_sukid a || fail "sukid did not stop cleanly"
if grep -E "AddressSanitizer|runtime error" "$T/sukid-a.log"; then fail "sanitizer report"; fi
ok "sukid stopped cleanly"
