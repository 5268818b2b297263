#!/bin/sh
# redis_sentinel_sleep.sh - redis_sentinel.sh with the primary frozen for
# 8 s (DEBUG SLEEP) instead of killed: it wakes up replaced and is made a
# replica; nothing confirmed is lost, no follow-up goes out twice.
HA_MODE=sleep
. "$top_srcdir/tests/integration/redis_sentinel.sh"
