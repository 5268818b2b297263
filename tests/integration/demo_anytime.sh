#!/bin/sh
# demo_anytime.sh - scripts/demo.sh: by default its HTTP listener is on the
# port README's curl uses.
. "$top_srcdir/tests/integration/lib.sh"

# The documented port: README's curl, the shipped config, the demo default.
readme=$(grep -o 'curl -s 127.0.0.1:[0-9]*/metrics' "$top_srcdir/README.md" | head -1)
[ -n "$readme" ] || fail "no curl .../metrics line in README"
port=$(echo "$readme" | sed 's|.*:\([0-9]*\)/metrics|\1|')
grep -q "SUKI_DEMO_HTTP:-127.0.0.1:$port}" "$top_srcdir/scripts/demo.sh" ||
    fail "demo.sh does not listen on README's port $port by default"
grep -q "listen = \"127.0.0.1:$port\"" "$top_srcdir/conf/sukid.conf" ||
    fail "conf/sukid.conf does not listen on README's port $port"
ok "demo, shipped config and README agree on port $port"
