#!/bin/bash
# nspawn.sh - suki as a new user gets it: "make install" into a Debian 12
# container booted by a real systemd (systemd-nspawn), then the .deb into a
# fresh one. One "ok - ..." / "not ok - ..." line per check; exit 1 if any
# failed. A machine that cannot run it (not root, no nspawn, no writable
# cgroup) is a failure with the reason, never a skip: a skipped test here
# would hide a unit that does not start.
#
#   tests/system/nspawn.sh            # from the top of the tree, as root
#
# The container's root file system is made once with mmdebstrap from the
# host's apt sources and kept in /var/tmp/suki-nspawn/ (keyed by a hash of
# the package list and the sources); every boot runs on a copy of it.
# Environment: SUKI_NSPAWN_BUILD (plain build dir, default _build/nspawn),
# SUKI_NSPAWN_DEB=0 to leave the package out, SUKI_NSPAWN_KEEP=1 to keep
# the copies for a post-mortem.
set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin
TOP=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=/var/tmp/suki-nspawn
BUILD=${SUKI_NSPAWN_BUILD:-$TOP/_build/nspawn}
SUITE=bookworm
SOURCES=/etc/apt/sources.list.d/debian.sources
[ -f "$SOURCES" ] || SOURCES=/etc/apt/sources.list
PKGS="systemd dbus redis-server redis-tools procps
libevent-2.1-7 libevent-core-2.1-7 libevent-extra-2.1-7 libhiredis0.14
libcurl4 libjansson4 libconfig9 libical3 libssl3 libsystemd0
libgmime-3.0-0 libsodium23"
UNIT=/usr/lib/systemd/system/sukid.service
REDIS_PASS=nspawn-$$-secret

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
notok() { failed=$((failed + 1)); echo "not ok - $*"; }
check() { # DESCRIPTION COMMAND... - ok when the command succeeds
    _d=$1; shift
    if "$@"; then ok "$_d"; else notok "$_d"; DUMP=1; fi
}
die() { # the machine can't run the test: loud, and a failure
    echo "########################################################" >&2
    echo "# nspawn test CANNOT RUN: $*" >&2
    echo "########################################################" >&2
    echo "not ok - nspawn test cannot run: $*"
    exit 1
}

# ---- what this needs -----------------------------------------------------
[ "$(id -u)" = 0 ] || die "needs root (systemd-nspawn, cgroups, mmdebstrap)"
for b in systemd-nspawn nsenter mmdebstrap sha256sum; do
    command -v "$b" >/dev/null 2>&1 ||
        die "$b not found (apt-get install systemd-container mmdebstrap)"
done
if [ "${SUKI_NSPAWN_DEB:-1}" = 1 ]; then
    for b in dpkg-buildpackage dh lintian; do
        command -v "$b" >/dev/null 2>&1 ||
            die "$b not found (apt-get install dpkg-dev debhelper lintian)"
    done
fi
# The cgroup hierarchies nspawn uses: the unified one, plus name=systemd on
# a hybrid host. Each boot gets a fresh cgroup of its own in all of them (a
# second boot in the same one fails: "Failed to attach ... payload").
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    CG_ROOTS=/sys/fs/cgroup
else
    CG_ROOTS=
    for h in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do
        [ -d "$h" ] && CG_ROOTS="$CG_ROOTS $h"
    done
    [ -n "$CG_ROOTS" ] || die "no cgroup2 or name=systemd hierarchy mounted"
fi
for h in $CG_ROOTS; do
    mkdir "$h/suki-nspawn-probe.$$" 2>/dev/null &&
        rmdir "$h/suki-nspawn-probe.$$" ||
        die "cannot create cgroups under $h (read-only cgroupfs?)"
done
mkdir -p "$CACHE" || die "cannot create $CACHE"
exec 9>"$CACHE/lock"
flock -w 900 9 || die "another nspawn test holds $CACHE/lock"

# Under the lock no other run is alive: what a killed run left is garbage.
# Its nspawn sits in the "supervisor" cgroup below its own; TERM powers the
# container off, and what still lives after 30 s is killed.
cg_procs() { find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null; }
stale=
for h in $CG_ROOTS; do
    for d in "$h"/suki-nspawn.*; do
        [ -d "$d" ] || continue
        stale="$stale $d"
        for p in $(cat "$d/cgroup.procs" "$d/supervisor/cgroup.procs" 2>/dev/null); do
            kill -TERM "$p" 2>/dev/null
        done
    done
done
for d in $stale; do
    _n=0
    while [ -n "$(cg_procs "$d")" ] && [ $_n -lt 150 ]; do
        sleep 0.2; _n=$((_n + 1))
    done
    for p in $(cg_procs "$d"); do kill -KILL "$p" 2>/dev/null; done
    sleep 0.5
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$d" ] && echo "# warning: could not remove the stale cgroup $d" >&2
done
rm -rf --one-file-system "$CACHE"/run.*
WORK=$(mktemp -d "$CACHE/run.XXXXXX")
NSP_PID= LEADER= CG_NAME= DUMP=0
cleanup() {
    rc=$?
    stop_container
    if [ "${SUKI_NSPAWN_KEEP:-0}" = 1 ]; then
        echo "kept $WORK" >&2
    else
        rm -rf --one-file-system "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- root file system, cached --------------------------------------------
KEY=$( (echo "$SUITE" $PKGS; cat "$SOURCES") | sha256sum | cut -c1-16)
ROOTFS=$CACHE/rootfs-$KEY
if [ ! -d "$ROOTFS" ]; then
    echo "# building $ROOTFS with mmdebstrap (once; a few minutes)"
    rm -rf "$ROOTFS.tmp"
    # shellcheck disable=SC2086
    if ! mmdebstrap --variant=apt --include="$(echo $PKGS | tr ' ' ,)" \
        "$SUITE" "$ROOTFS.tmp" "$SOURCES" >"$WORK/mmdebstrap.log" 2>&1; then
        tail -n 30 "$WORK/mmdebstrap.log"
        rm -rf "$ROOTFS.tmp"
        die "mmdebstrap failed (see above)"
    fi
    mv "$ROOTFS.tmp" "$ROOTFS"
fi
# Older roots of another key are garbage now.
for d in "$CACHE"/rootfs-*; do
    [ "$d" = "$ROOTFS" ] || rm -rf --one-file-system "$d"
done

# ---- container handling --------------------------------------------------
IN() { nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    SYSTEMD_PAGER= SYSTEMD_COLORS=0 LANG=C.UTF-8 "$@"; }

# wait_for SECONDS 'condition' - poll every 0.2 s.
wait_for() {
    _end=$(($(date +%s) + $1))
    while ! eval "$2" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$_end" ] && return 1
        sleep 0.2
    done
}

# boot NAME - copy the cached root to $WORK/NAME and boot it; sets ROOT,
# NSP_PID, LEADER (the container's PID 1, what nsenter enters).
boot() {
    ROOT=$WORK/$1
    CG_NAME=suki-nspawn.$$.$1
    cp -a --reflink=auto "$ROOTFS" "$ROOT" || die "cannot copy $ROOTFS"
    for h in $CG_ROOTS; do mkdir "$h/$CG_NAME" || die "mkdir $h/$CG_NAME"; done
    # The shell moves itself into the new cgroup, then becomes nspawn. With
    # no systemd as PID 1 on the host, nspawn must keep the unit it is in.
    # A network of its own (loopback only): the container's Redis on 6379
    # and sukid on 9187 must not meet the host's or another test's.
    sh -c 'for h in $1; do echo $$ >"$h/$2/cgroup.procs" || exit 1; done
        exec systemd-nspawn --quiet --boot --keep-unit --register=no \
            --private-network --machine="$2" -D "$3"' \
        sh "$CG_ROOTS" "$CG_NAME" "$ROOT" \
        </dev/null >"$WORK/$1.console" 2>&1 9>&- &
    NSP_PID=$!
    LEADER=
    wait_for 30 'LEADER=$(cat /proc/$NSP_PID/task/$NSP_PID/children); [ -n "$LEADER" ]'
    LEADER=${LEADER%% *}
    if [ -z "$LEADER" ] || ! wait_for 90 \
        'case $(IN systemctl is-system-running) in running|degraded) true;; *) false;; esac'; then
        tail -n 40 "$WORK/$1.console"
        die "the container $1 did not boot (console above)"
    fi
}

stop_container() {
    [ -n "$NSP_PID" ] || return 0
    if kill -0 "$NSP_PID" 2>/dev/null; then
        kill -TERM "$NSP_PID" 2>/dev/null # nspawn powers the container off
        wait_for 30 '! kill -0 $NSP_PID' || {
            kill -KILL "$NSP_PID" 2>/dev/null
            [ -n "$LEADER" ] && kill -KILL "$LEADER" 2>/dev/null
        }
    fi
    wait "$NSP_PID" 2>/dev/null
    # What is left of the cgroups, innermost first (their processes are
    # gone once nspawn is; a straggler goes back to the root).
    for h in $CG_ROOTS; do
        [ -d "$h/$CG_NAME" ] || continue
        find "$h/$CG_NAME" -name cgroup.procs | while read -r f; do
            for p in $(cat "$f"); do echo "$p" >"$h/cgroup.procs"; done
        done 2>/dev/null
        find "$h/$CG_NAME" -depth -type d -exec rmdir {} + 2>/dev/null
        [ -d "$h/$CG_NAME" ] && echo "# warning: $h/$CG_NAME left behind" >&2
    done
    NSP_PID= LEADER=
}

# verify_clean UNIT - systemd-analyze verify has nothing to say (--man=no:
# the container has no man pages for Documentation=).
verify_clean() {
    IN systemd-analyze verify --man=no "$1" >"$WORK/verify.out" 2>&1 &&
        ! grep -q . "$WORK/verify.out" && return 0
    sed 's/^/#   /' "$WORK/verify.out"
    return 1
}

dump_journal() {
    echo "# ---- journalctl -u sukid (last 40 lines)"
    IN journalctl -u sukid --no-pager -n 40 | sed 's/^/#   /'
}

prop() { IN systemctl show -P "$1" sukid; }
active_running() {
    [ "$(prop ActiveState)" = active ] && [ "$(prop SubState)" = running ]
}
jcount() { IN journalctl -u sukid --no-pager -o cat | grep -c -- "$1"; }
conf_edit() { IN sed -i "$@" /etc/suki/sukid.conf; }

# ---- a plain build, installed --------------------------------------------
if [ ! -f "$BUILD/Makefile" ]; then
    [ -x "$TOP/configure" ] || (cd "$TOP" && autoreconf -fi >/dev/null 2>&1) ||
        die "autoreconf failed"
    mkdir -p "$BUILD"
    (cd "$BUILD" && "$TOP/configure" --prefix=/usr --sysconfdir=/etc \
        --localstatedir=/var >configure.out 2>&1) ||
        { tail -n 20 "$BUILD/configure.out"; die "configure failed"; }
fi
make -C "$BUILD" -j"$(nproc)" >"$WORK/build.out" 2>&1 ||
    { tail -n 30 "$WORK/build.out"; die "the plain build failed"; }

echo "# make install into a fresh container"
boot inst
make -C "$BUILD" install DESTDIR="$ROOT" >"$WORK/install.out" 2>&1 ||
    { tail -n 30 "$WORK/install.out"; die "make install failed"; }
IN systemctl daemon-reload

# The unit as installed: expanded, and systemd has nothing to say about it.
if IN grep -n '@[a-z_]*@' "$UNIT"; then
    notok "installed unit has no @placeholders@ left"
else
    ok "installed unit has no @placeholders@ left"
fi
check "systemd-analyze verify sukid.service: no errors" verify_clean "$UNIT"
check "no plugin .la files installed" \
    sh -c "! ls '$ROOT'/usr/lib/suki/plugins/*.la 2>/dev/null | grep -q ."
check "sukid.conf readable by anyone (0644)" \
    [ "$(stat -c %a "$ROOT/etc/suki/sukid.conf")" = 644 ]

# A Redis password as an operator keeps it: root's, 0600, which the
# service's dynamic user cannot open; it arrives as a credential.
IN sh -c "printf 'requirepass %s\n' '$REDIS_PASS' >>/etc/redis/redis.conf &&
    systemctl restart redis-server &&
    umask 077 && printf '%s\n' '$REDIS_PASS' >/etc/suki/credentials/redis.pass"
conf_edit 's|^  # password_file = "/etc/suki/credentials/redis.pass";|  password_file = "/etc/suki/credentials/redis.pass";|'
IN grep -q '^  password_file = "/etc/suki/credentials/redis.pass"' \
    /etc/suki/sukid.conf || notok "test setup: password_file not set"
RCLI="redis-cli --no-auth-warning -a $REDIS_PASS"

IN systemctl start sukid
check "systemctl start sukid: active (running) (Type=notify, READY=1)" \
    wait_for 20 active_running
IN systemctl status sukid --no-pager >"$WORK/status.out" 2>&1
check "systemctl status sukid: exit 0, 'active (running)'" \
    grep -q 'Active: active (running)' "$WORK/status.out"
check "Redis password (root 0600 file) reached sukid as a credential" \
    wait_for 10 '[ "$(jcount "redis main: connected")" -ge 1 ] &&
        IN test -f /run/credentials/sukid.service/suki_redis.pass &&
        [ "$(jcount NOAUTH)" = 0 ] && [ "$(jcount "WRONGPASS")" = 0 ]'
check "spool directory of the shipped config exists" \
    IN test -d /var/lib/suki/spool

# An event whose reminder is due at once (the shipped complaint-escalation
# rule, 24 h after an event of 24 h 20 s ago) lands in the spool as mail.
d() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
IN $RCLI XADD suki:events '*' event \
    '{"id":"ns-1","type":"client.created","client":"ns-client","at":"'"$(d now)"'","data":{"name":"Nspawn Co","email":"buyer@example.ph","manager":"maria@example.ph","locale":"en","timezone":"Asia/Manila"}}' >/dev/null
IN $RCLI XADD suki:events '*' event \
    '{"id":"ns-2","type":"complaint.opened","client":"ns-client","at":"'"$(d '24 hours ago 20 seconds')"'","data":{"ticket":"T-1","severity":"high","summary":"nspawn"}}' >/dev/null
check "event pushed with redis-cli XADD arrives as .eml in the spool" \
    wait_for 30 'IN sh -c "ls /var/lib/suki/spool/*.eml" | grep -q .'

# Reload with a good config: still running, the new one in force.
before=$(jcount "configuration reloaded")
pid=$(prop MainPID)
conf_edit 's|head-of-sales = "lead@example.ph";|head-of-sales = "lead2@example.ph";|'
IN systemctl reload sukid
check "systemctl reload (good config): active, 'configuration reloaded' logged" \
    wait_for 10 '[ "$(jcount "configuration reloaded")" -gt "$before" ] &&
        active_running && [ "$(prop MainPID)" = "$pid" ]'

# Reload with a bad config: the error logged, the old config kept.
before=$(jcount "reload failed: keeping the running configuration")
conf_edit 's|^timezone = "Asia/Manila";|timezone = "Asia/Manila"; bogus_key = 1;|'
IN systemctl reload sukid
check "systemctl reload (bad config): error logged, old config kept, still active" \
    wait_for 10 '[ "$(jcount "reload failed: keeping the running configuration")" -gt "$before" ] &&
        [ "$(jcount "bogus_key")" -ge 1 ] && active_running &&
        [ "$(prop MainPID)" = "$pid" ]'
conf_edit 's| bogus_key = 1;||'

# A crash: Restart= brings it back.
IN kill -9 "$pid"
check "kill -9 of the main PID: restarted (new MainPID, active running)" \
    wait_for 20 'np=$(prop MainPID); [ "$np" != 0 ] && [ "$np" != "$pid" ] &&
        active_running'

check "journalctl -t sukid-agent has the agent's lines" \
    wait_for 5 'IN journalctl -t sukid-agent --no-pager -o cat | grep -q "redis agent"'

IN systemd-analyze security sukid --no-pager >"$WORK/security.out" 2>&1
exposure=$(sed -n 's/.*Overall exposure level for sukid.service: \([0-9.]*\).*/\1/p' \
    "$WORK/security.out")
if [ -n "$exposure" ] && awk "BEGIN{exit !($exposure <= 2.0)}"; then
    ok "systemd-analyze security sukid: exposure $exposure <= 2.0"
else
    tail -n 5 "$WORK/security.out" | sed 's/^/#   /'
    notok "systemd-analyze security sukid: exposure '${exposure}' <= 2.0"
fi

IN systemctl stop sukid
[ "$(prop ActiveState)" = inactive ] && [ "$(prop Result)" = success ] &&
    ! IN pgrep -x sukid-agent >/dev/null &&
    ok "systemctl stop: inactive, result success, sukid-agent gone" ||
    { notok "systemctl stop: inactive ($(prop ActiveState)), result success ($(prop Result)), sukid-agent gone"; DUMP=1; }

# A configuration that can never start: failed, and not restarted.
cp "$ROOT/etc/suki/sukid.conf" "$WORK/good.conf"
conf_edit 's|^timezone = "Asia/Manila";|timezone = "Asia/Manila"; bogus_key = 1;|'
IN systemctl start sukid >/dev/null 2>&1
sleep 15
st=$(prop ActiveState) nr=$(prop NRestarts) ex=$(prop ExecMainStatus)
if [ "$st" = failed ] && [ "$nr" = 0 ]; then
    ok "a config that can't start: unit failed, no restarts in 15 s (exit $ex)"
else
    notok "a config that can't start: state $st, $nr restarts in 15 s, exit $ex"
    DUMP=1
fi
cp "$WORK/good.conf" "$ROOT/etc/suki/sukid.conf"
IN systemctl reset-failed sukid

# A failure worth retrying (its HTTP port taken: exit 1) is retried, but
# not for ever: the start limit (5 in 60 s) trips and the unit stays failed.
IN redis-server --port 9187 --bind 127.0.0.1 --save '' --daemonize yes \
    --pidfile /run/blocker.pid >/dev/null
IN systemctl start sukid >/dev/null 2>&1
# (systemd 252 leaves Result=exit-code there; the journal names the limit.)
wait_for 40 '[ "$(jcount "Start request repeated too quickly")" -ge 1 ]'
nr=$(prop NRestarts)
sleep 5
st=$(prop ActiveState) nr2=$(prop NRestarts)
if [ "$st" = failed ] && [ "$nr" -le 5 ] && [ "$nr2" = "$nr" ] &&
    [ "$(jcount "Start request repeated too quickly")" -ge 1 ]; then
    ok "a start failing for another reason: $nr restarts, start limit hit, stays failed"
else
    notok "a start failing for another reason: state $st, $nr then $nr2 restarts"
    DUMP=1
fi
IN sh -c 'kill "$(cat /run/blocker.pid)"'
IN systemctl reset-failed sukid

[ "$DUMP" = 1 ] && dump_journal
DUMP=0
stop_container

# ---- the Debian package --------------------------------------------------
if [ "${SUKI_NSPAWN_DEB:-1}" = 1 ]; then
    echo "# the .deb into a fresh container"
    # Built from the tree as it is (tracked and new files), outside it, and
    # kept while the sources are the same.
    SRCKEY=$(cd "$TOP" && git ls-files -co --exclude-standard -z |
        xargs -0 sha256sum 2>/dev/null | sha256sum | cut -c1-16)
    DEBS=$CACHE/debs-$SRCKEY
    if [ ! -d "$DEBS" ]; then
        rm -rf "$CACHE"/debs-* "$CACHE/debsrc"
        mkdir -p "$CACHE/debsrc/suki"
        (cd "$TOP" && git ls-files -co --exclude-standard -z |
            tar --null -T - -cf -) | tar -C "$CACHE/debsrc/suki" -xf -
        echo "# dpkg-buildpackage -us -uc -b"
        if (cd "$CACHE/debsrc/suki" &&
            dpkg-buildpackage -us -uc -b >"$CACHE/debsrc/build.log" 2>&1); then
            mkdir -p "$DEBS.tmp"
            mv "$CACHE"/debsrc/*.deb "$CACHE"/debsrc/*.changes \
                "$CACHE"/debsrc/*.buildinfo "$DEBS.tmp/"
            lintian "$DEBS.tmp"/*.changes >"$DEBS.tmp/lintian.out" 2>&1
            echo "lintian exit $?" >>"$DEBS.tmp/lintian.out"
            mv "$DEBS.tmp" "$DEBS"
        else
            tail -n 30 "$CACHE/debsrc/build.log"
        fi
    fi
    if ls "$DEBS"/sukid_*.deb >/dev/null 2>&1; then
        ok "dpkg-buildpackage -us -uc -b"
        # It says "Skipping" and checks nothing when a file it wants is
        # missing: that is no pass.
        if grep -q '^E:' "$DEBS/lintian.out" ||
            grep -q 'Skipping\|No packages selected' "$DEBS/lintian.out" ||
            ! grep -q '^lintian exit 0$' "$DEBS/lintian.out"; then
            grep -v 'root privileges' "$DEBS/lintian.out" | sed 's/^/#   /'
            notok "lintian: no errors"
        else
            ok "lintian: no errors ($(grep -c '^W:' "$DEBS/lintian.out") warnings)"
        fi
        boot deb
        cp "$DEBS"/sukid_*.deb "$ROOT/root/" # (the container mounts a tmpfs on /tmp)
        deb=$(cd "$ROOT/root" && ls sukid_*.deb | head -n 1)
        if IN sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y \
            --no-install-recommends /root/$deb" >"$WORK/apt.out" 2>&1; then
            ok "apt-get install ./$deb"
        else
            tail -n 20 "$WORK/apt.out" | sed 's/^/#   /'
            notok "apt-get install ./$deb"
        fi
        IN systemctl start sukid
        check "packaged sukid: active (running)" wait_for 20 active_running
        check "packaged unit: systemd-analyze verify clean" verify_clean \
            /lib/systemd/system/sukid.service
        check "packaged /etc/suki/sukid.conf is a conffile" \
            sh -c "nsenter -t $LEADER -a dpkg-query -W -f='\${Conffiles}' sukid |
                grep -q /etc/suki/sukid.conf"
        [ "$DUMP" = 1 ] && dump_journal
        stop_container
    else
        notok "dpkg-buildpackage -us -uc -b (log: $CACHE/debsrc/build.log)"
    fi
fi

echo "# nspawn: $passed passed, $failed failed"
[ "$failed" = 0 ]
