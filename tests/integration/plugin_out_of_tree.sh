#!/bin/sh
# Install the project into a temporary DESTDIR, build the out-of-tree
# example plugin against the installed <suki/plugin.h> found through
# pkg-config, and load it (with the installed shipped plugins) through the
# rule engine. Also checks that a broken setting of the out-of-tree plugin
# is reported as FILE:LINE.
set -eu
: "${top_srcdir:?}" "${top_builddir:?}"
command -v pkg-config >/dev/null 2>&1 || { echo "FAIL: cannot run here: no pkg-config"; exit 1; }
command -v make >/dev/null 2>&1 || { echo "FAIL: cannot run here: no make"; exit 1; }
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || { echo "FAIL: cannot run here: no C compiler"; exit 1; }
loader="$top_builddir/tests/integration/plugin_load"
test -x "$loader" || { echo "FAIL: $loader not built"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
root="$tmp/root"

fail() { echo "FAIL: $*"; exit 1; }

# 1. make install of the project
if ! make -C "$top_builddir" install DESTDIR="$root" >"$tmp/install.log" 2>&1
then
    tail -n 40 "$tmp/install.log"
    fail "make install DESTDIR=$root"
fi
pc=$(find "$root" -name suki-plugin.pc | head -n 1)
test -n "$pc" || fail "suki-plugin.pc not installed"
hdr=$(find "$root" -path '*/include/suki/plugin.h' | head -n 1)
test -n "$hdr" || fail "suki/plugin.h not installed"
followup=$(find "$root" -path '*/suki/plugins/followup.so' | head -n 1)
test -n "$followup" || fail "followup.so not installed"
plugdir=$(dirname "$followup")
test -f "$plugdir/renewal.so" || fail "renewal.so not installed"

# 2. build the example against the installed header only
PKG_CONFIG_PATH=$(dirname "$pc")
PKG_CONFIG_SYSROOT_DIR=$root
PKG_CONFIG_LIBDIR=$PKG_CONFIG_PATH
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR
cflags=$(pkg-config --cflags suki-plugin)
case "$cflags" in
*"$root"*) ;;
*) fail "pkg-config --cflags suki-plugin gave '$cflags', not under $root" ;;
esac
incdir=$(pkg-config --variable=includedir suki-plugin)
test -f "$incdir/suki/plugin.h" ||
    fail "suki/plugin.h installed as ${hdr#"$root"}, not where pkg-config points (${incdir#"$root"}/suki/plugin.h)"
pcplugdir=$(pkg-config --variable=plugindir suki-plugin)
test "$pcplugdir" = "$plugdir" ||
    fail "pkg-config plugindir is ${pcplugdir#"$root"}, plugins installed in ${plugdir#"$root"}"
cp -R "$top_srcdir/examples/hello-plugin" "$tmp/hello"
chmod -R u+w "$tmp/hello"
rm -f "$tmp/hello/hello.so"
if ! make -C "$tmp/hello" CC="$CC" >"$tmp/build.log" 2>&1; then
    cat "$tmp/build.log"
    fail "building the example plugin"
fi
test -f "$tmp/hello/hello.so" || fail "hello.so not built"
nm -D --defined-only "$tmp/hello/hello.so" | grep -q ' suki_plugin$' ||
    fail "hello.so does not export suki_plugin"
cp "$tmp/hello/hello.so" "$plugdir/"

# 3. load it next to the installed shipped plugins
mkdir "$tmp/templates"
cat >"$tmp/sukid.conf" <<CONF
plugins = { dir = "$plugdir"; };
templates = { dir = "$tmp/templates"; };
timezone = "UTC";
rules = (
  { name = "hello-rule"; use = "hello"; on = [ "client.created" ];
    delay = "2h"; notify = [ "manager" ]; template = "hello"; },
  { name = "follow-up"; use = "followup"; on = [ "meeting.held" ];
    after = "3d"; business_days = true; at_local = "09:00";
    unless = [ "contact.*" ]; notify = [ "manager" ]; template = "f"; }
);
CONF
ev='{"type":"client.created","client":"acme","at":"2026-11-27T10:00:00Z"}'
"$loader" "$tmp/sukid.conf" "$ev" >"$tmp/out" 2>&1 || {
    cat "$tmp/out"
    fail "loading the out-of-tree plugin"
}
grep -qx 'rules OK (2)' "$tmp/out" || { cat "$tmp/out"; fail "rules not loaded"; }
grep -qx 'SCHEDULE hello-rule:acme::hello 2026-11-27T12:00:00Z' "$tmp/out" || {
    cat "$tmp/out"
    fail "hello plugin did not schedule its job"
}

# 4. a bad setting of the out-of-tree plugin is reported with FILE:LINE
sed 's/delay = "2h"/delay = "soon"/' "$tmp/sukid.conf" >"$tmp/bad.conf"
if "$loader" "$tmp/bad.conf" >"$tmp/out" 2>&1; then
    cat "$tmp/out"
    fail "bad delay accepted"
fi
grep -q "^$tmp/bad.conf:6: rule 'hello-rule': 'delay':" "$tmp/out" || {
    cat "$tmp/out"
    fail "bad delay not reported at bad.conf:6"
}
echo "PASS: out-of-tree plugin built against the installed header and loaded"
