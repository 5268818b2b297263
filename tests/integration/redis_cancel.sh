#!/bin/sh
# redis_cancel.sh - suki_redis_cancel on a real Redis link: an owner's
# pending callbacks run once, at once, flagged cancelled, never again when
# their replies arrive, and the calls of others around them keep their
# replies and their order (tests/integration/redis_cancel.c).
. "$top_srcdir/tests/integration/lib.sh"
need "$top_builddir/tests/integration/redis_cancel"
start_redis
"$top_builddir/tests/integration/redis_cancel" "$REDIS_PORT" \
    >"$T/out.log" 2>&1 || fail "redis_cancel failed: $(cat "$T/out.log")"
grep -q '^redis_cancel: ok$' "$T/out.log" || fail "no ok line"
echo "PASS: cancelled callbacks ran once, flagged; others kept their order"
