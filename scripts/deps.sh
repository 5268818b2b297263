#!/bin/sh
# deps.sh - install the Debian 12 packages suki needs to build, run and test.
# Only what is missing is installed; needs root (or sudo).
set -eu
PKGS="build-essential autoconf automake libtool pkg-config \
libevent-dev libhiredis-dev libcurl4-openssl-dev libjansson-dev libconfig-dev \
libical-dev libsystemd-dev libssl-dev libsodium-dev check libgmime-3.0-dev \
redis-server redis-tools redis-sentinel lua5.1 python3 python3-aiosmtpd python3-prometheus-client \
dovecot-imapd postfix curl openssl valgrind procps util-linux cppcheck clang-14 clang-format-14 libclang-rt-14-dev \
systemd-container mmdebstrap dpkg-dev debhelper lintian fakeroot \
chromium chromium-driver python3-selenium"
missing=
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# postfix asks questions on install; a local-only answer keeps it quiet.
echo "postfix postfix/main_mailer_type select No configuration" |
    $SUDO debconf-set-selections 2>/dev/null || true
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
