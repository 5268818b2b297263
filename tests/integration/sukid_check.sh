#!/bin/sh
# sukid_check.sh - `sukid -t` on the shipped example and on configurations a
# person gets wrong: each problem printed as FILE:LINE: message, exit 1.
set -eu
B=$top_builddir S=$top_srcdir
T=$(mktemp -d /tmp/suki-check.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

mkdir -p "$T/plugins"
cp "$B/plugins/.libs/followup.so" "$B/plugins/.libs/renewal.so" "$T/plugins/"
sed -e "s|/usr/lib/suki/plugins|$T/plugins|" \
    -e "s|/etc/suki/templates|$S/conf/templates|" \
    "$S/conf/sukid.conf" > "$T/ok.conf"

"$B/sukid" -t -c "$T/ok.conf" > "$T/out" 2>&1 || { cat "$T/out"; fail "example rejected"; }
grep -q "configuration OK" "$T/out" || fail "no OK line"
echo "ok: shipped example accepted"

# expect NAME SED-EXPR EXPECTED-LINE-REGEX: apply the edit, expect exit 1
# and a diagnostic matching the regex.
expect() {
    sed -e "$2" "$T/ok.conf" > "$T/$1.conf"
    if "$B/sukid" -t -c "$T/$1.conf" > "$T/$1.out" 2>&1; then
        fail "$1: accepted"
    fi
    grep -Eq "^$T/$1.conf:$3" "$T/$1.out" || { cat "$T/$1.out"; fail "$1: want $3"; }
    echo "ok: $1"
}
expect unknown_plugin 's|use      = "followup";                 # on X|use = "nosuch"; # on X|' \
    '[0-9]+: .*nosuch'
expect bad_after 's|after    = "3d";|after = "3x";|' \
    '[0-9]+: rule .follow-up-after-meeting.: .after.: bad duration "3x"'
expect missing_template 's|template = "renewal-alert";|template = "renewal-alrt";|' \
    "[0-9]+: rule 'contract-renewal': no template 'renewal-alrt'"
expect unknown_rule_key 's|business_days = true; |business_day = true; |' \
    "[0-9]+: unknown key 'business_day' in rule"
expect bad_at_local 's|at_local = "09:00";                    # in|at_local = "9am"; #|' \
    "[0-9]+: rule 'follow-up-after-meeting': 'at_local'"
expect bad_before 's|before   = \[ "90d", "60d", "30d", "7d" \];|before = [ "90d", "soon" ];|' \
    "[0-9]+: rule 'contract-renewal': .*soon"
expect missing_plugin_dir "s|$T/plugins|$T/nonexistent|" \
    '[0-9]+: plugins dir'

# A plugin built for another ABI is refused, naming the file and versions.
cp "$B/tests/fixtures/plugins/.libs/badabi.so" "$T/plugins/followup.so"
if "$B/sukid" -t -c "$T/ok.conf" > "$T/abi.out" 2>&1; then fail "bad ABI accepted"; fi
grep -q "followup.so" "$T/abi.out" && grep -Eq "ABI|abi" "$T/abi.out" ||
    { cat "$T/abi.out"; fail "ABI message"; }
echo "ok: wrong plugin ABI refused"
