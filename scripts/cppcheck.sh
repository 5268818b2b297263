#!/bin/sh
# cppcheck.sh - static analysis of the daemon and the plugins; exits 1 on
# any finding. cppcheck reads no system header by itself, so the two whose
# macros the code is built on are given to it: without sys/queue.h it stops
# at the first LIST_HEAD and never analyses daemon/deliver/; without
# jansson.h, at json_array_foreach.
set -eu
cd "$(dirname "$0")/.."
queue=$(echo '#include <sys/queue.h>' | cpp -H -o /dev/null 2>&1 |
    sed -n 's/^\. //p' | head -1)
[ -f "$queue" ] || { echo "cppcheck.sh: sys/queue.h not found" >&2; exit 1; }
# conf.c stores settings through offsetof() into typed fields: not a cast
# between unrelated representations.
exec cppcheck --quiet --std=c11 -I include -I lib -I daemon -I daemon/deliver -I ctl \
    --include="$queue" --include=/usr/include/jansson.h \
    --enable=warning,portability --inline-suppr \
    --suppress=invalidPointerCast:lib/conf.c \
    --error-exitcode=1 -j2 lib/*.c daemon/*.c daemon/sched/*.c \
    daemon/deliver/*.c ctl/*.c plugins/*.c
