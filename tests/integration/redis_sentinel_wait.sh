#!/bin/sh
# redis_sentinel_wait.sh - redis_sentinel.sh with redis.min_replicas = 1:
# the primary killed mid-stream loses nothing and sends nothing twice with
# sukid WAITing for a replica; then with both replicas frozen sukid holds
# its work, says so once (log, metric, sukictl status) and finishes it
# when they are back.
MIN_REPLICAS=1
. "$top_srcdir/tests/integration/redis_sentinel.sh"
