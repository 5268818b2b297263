#!/bin/sh
# lua_syntax.sh - every Redis script in lib/store compiles under Lua 5.1, the
# Lua of Redis, each fragment (*.inc.lua) inlined where it is included
# (embed.sh --expand).
. "$top_srcdir/tests/integration/lib.sh"
need luac5.1
dir=$top_srcdir/lib/store
n=0
for f in "$dir"/*.lua; do
    case $f in *.inc.lua) continue ;; esac
    sh "$dir/embed.sh" --expand "$f" >"$T/script.lua"
    luac5.1 -p -o /dev/null "$T/script.lua" 2>"$T/err" ||
        fail "$(basename "$f"): $(cat "$T/err")"
    n=$((n + 1))
done
[ "$n" -ge 20 ] || fail "only $n scripts found in $dir"
echo "ok: $n scripts compile"
