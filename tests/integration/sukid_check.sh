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
cp "$B/plugins/.libs/followup.so" "$T/plugins/"

# One rule with problems of every kind - in the file (an unknown channel),
# in its plugin (none such) and in its template (none such): one run
# reports each of them, once, and nothing else.
sed -e 's|channel  = "email";$|channel = "fax";|' \
    -e 's|use      = "followup";                 # on X|use = "nosuch"; # on X|' \
    -e 's|template = "followup-reminder";|template = "nosuch-tmpl";|' \
    "$T/ok.conf" > "$T/kinds.conf"
if "$B/sukid" -t -c "$T/kinds.conf" > "$T/kinds.out" 2>&1; then fail "kinds: accepted"; fi
cat "$T/kinds.out"
R="^$T/kinds.conf:[0-9]+: rule 'follow-up-after-meeting'"
grep -Eq "$R: unknown channel 'fax'" "$T/kinds.out" || fail "kinds: channel not reported"
grep -Eq "$R: cannot load plugin 'nosuch'" "$T/kinds.out" || fail "kinds: plugin not reported"
grep -Eq "$R: no template 'nosuch-tmpl'" "$T/kinds.out" || fail "kinds: template not reported"
[ "$(grep -Ec "^$T/kinds.conf:[0-9]+: " "$T/kinds.out")" = 3 ] || fail "kinds: want exactly 3 problems"
echo "ok: every kind of problem of a rule reported in one run"

# A missing plugins directory is one problem, not one more per plugin; the
# templates are still checked.
sed -e "s|$T/plugins|$T/nonexistent|" \
    -e 's|template = "followup-reminder";|template = "nosuch-tmpl";|' \
    "$T/ok.conf" > "$T/nodir.conf"
if "$B/sukid" -t -c "$T/nodir.conf" > "$T/nodir.out" 2>&1; then fail "nodir: accepted"; fi
grep -Eq "^$T/nodir.conf:[0-9]+: plugins dir" "$T/nodir.out" || fail "nodir: dir not reported"
grep -Eq "^$T/nodir.conf:[0-9]+: .*no template 'nosuch-tmpl'" "$T/nodir.out" ||
    { cat "$T/nodir.out"; fail "nodir: template not reported"; }
grep -q "cannot load plugin" "$T/nodir.out" && { cat "$T/nodir.out"; fail "nodir: a line per plugin"; }
echo "ok: missing plugins dir reported once, templates still checked"

# A libconfig syntax error: FILE:LINE: syntax error, said once, with the line.
sed -e 's|^  batch = 256;  *# due jobs.*|  batch = = 256;|' "$T/ok.conf" > "$T/syntax.conf"
grep -q '^  batch = = 256;$' "$T/syntax.conf" || fail "syntax: edit did not apply"
line=$(grep -n '^  batch = = 256;$' "$T/syntax.conf" | cut -d: -f1)
if "$B/sukid" -t -c "$T/syntax.conf" > "$T/syntax.out" 2>&1; then fail "syntax: accepted"; fi
cat "$T/syntax.out"
grep -q "^$T/syntax.conf:$line: syntax error near 'batch = = 256;'$" "$T/syntax.out" ||
    fail "syntax: want FILE:$line: syntax error near 'batch = = 256;'"
[ "$(grep -o 'syntax error' "$T/syntax.out" | wc -l)" = 1 ] || fail "syntax: 'syntax error' said more than once"
printf 'a = 1;\n@include "nope.conf"\n' > "$T/inc.conf"
if "$B/sukid" -t -c "$T/inc.conf" > "$T/inc.out" 2>&1; then fail "include: accepted"; fi
grep -q "^$T/inc.conf:2: cannot open include file" "$T/inc.out" ||
    { cat "$T/inc.out"; fail "include: want FILE:2: cannot open include file"; }
echo "ok: syntax errors as FILE:LINE: syntax error near '...'"

# sukictl reports a bad configuration the way sukid -t does: no ":0:" for a
# problem of the file as a whole (here: the default directories are absent).
printf 'plugins = { dir = "%s"; };\n' "$T/plugins" > "$T/nodefault.conf"
"$B/sukictl" -c "$T/nodefault.conf" jobs > "$T/ctl.out" 2>&1 && fail "sukictl: bad config accepted"
# (unless templates are installed there)
if grep -q "templates dir" "$T/ctl.out"; then
    grep -q "^$T/nodefault.conf: templates dir" "$T/ctl.out" ||
        { cat "$T/ctl.out"; fail "sukictl: templates dir line"; }
fi
grep -q ':0:' "$T/ctl.out" && { cat "$T/ctl.out"; fail "sukictl: line 0 printed"; }
"$B/sukictl" -c "$T/nodefault.conf" --json status | grep -q ':0:' &&
    fail "status --json: line 0 printed"
echo "ok: sukictl prints config problems like sukid -t"
