#!/bin/sh
# credentials_spool.sh - what the systemd unit relies on: a secret file is
# read from $CREDENTIALS_DIRECTORY/suki_<basename> when that exists (the
# configured path itself unreadable or absent), still only if not group- or
# world-accessible; a missing spool directory is made (0700) at start; one
# that cannot be is a warning for "sukid -t" and exit 78 for sukid.
. "$top_srcdir/tests/integration/lib.sh"

start_redis
PASS=cred-$$-pw
rcli CONFIG SET requirepass "$PASS" >/dev/null || fail "CONFIG SET requirepass"
export REDISCLI_AUTH=$PASS
CONF=$T/sukid.conf
REDIS_EXTRA="password_file = \"$T/etc/redis.pass\";" write_conf "$CONF"

# Without credentials the configured path is what counts: it is missing.
if "$SUKID" -t -c "$CONF" >"$T/t0.out" 2>&1; then
    fail "sukid -t accepted a missing password_file"
fi
grep -q "redis.pass" "$T/t0.out" || { cat "$T/t0.out"; fail "no word of redis.pass"; }
ok "no credentials: the missing password file is an error"

mkdir -p "$T/creds"
printf '%s\n' "$PASS" >"$T/creds/suki_redis.pass"
chmod 0400 "$T/creds/suki_redis.pass"
export CREDENTIALS_DIRECTORY=$T/creds
"$SUKID" -t -c "$CONF" >"$T/t1.out" 2>&1 || { cat "$T/t1.out"; fail "sukid -t with the credential"; }
start_sukid a "$CONF"
grep -q "redis main: connected" "$T/sukid-a.log" || fail "not connected with the credential's password"
stop_sukid a || fail "sukid a: non-zero exit"
ok "the password comes from \$CREDENTIALS_DIRECTORY/suki_redis.pass"

chmod 0644 "$T/creds/suki_redis.pass"
if "$SUKID" -t -c "$CONF" >"$T/t2.out" 2>&1; then
    fail "a world-readable credential was accepted"
fi
grep -q "chmod 600" "$T/t2.out" || { cat "$T/t2.out"; fail "no chmod hint"; }
chmod 0400 "$T/creds/suki_redis.pass"
ok "a credential readable by others is refused like any secret file"

# A spool directory that is not there yet is made, private.
sed -i "s|spool://$T/spool|spool://$T/var/new/spool|" "$CONF"
"$SUKID" -t -c "$CONF" >"$T/t3.out" 2>&1 || { cat "$T/t3.out"; fail "sukid -t, missing spool"; }
grep -q warning "$T/t3.out" && { cat "$T/t3.out"; fail "warned about a spool it can make"; }
[ ! -e "$T/var/new/spool" ] || fail "sukid -t made the spool"
start_sukid b "$CONF"
[ -d "$T/var/new/spool" ] || fail "spool not created at start"
[ "$(command stat -c %a "$T/var/new/spool")" = 700 ] || fail "spool mode $(command stat -c %a "$T/var/new/spool")"
stop_sukid b || fail "sukid b: non-zero exit"
ok "a missing spool directory is created (0700) at start, not by -t"

# One that cannot be made: a warning for -t, exit 78 (EX_CONFIG) at start.
: >"$T/afile"
sed -i "s|spool://$T/var/new/spool|spool://$T/afile/spool|" "$CONF"
"$SUKID" -t -c "$CONF" >"$T/t4.out" 2>&1 || { cat "$T/t4.out"; fail "sukid -t failed on a spool warning"; }
grep -q "warning: .*spool.*afile" "$T/t4.out" || { cat "$T/t4.out"; fail "no spool warning"; }
"$SUKID" -c "$CONF" >"$T/t5.out" 2>&1
rc=$?
[ $rc = 78 ] || { cat "$T/t5.out"; fail "sukid exit $rc for an impossible spool, want 78"; }
grep -q "not starting" "$T/t5.out" || fail "no 'not starting'"
ok "an impossible spool: -t warns, sukid exits 78"

# A bad configuration at start is 78 too (the unit does not restart it).
printf 'bogus_key = 1;\n' >>"$CONF"
"$SUKID" -c "$CONF" >"$T/t6.out" 2>&1
rc=$?
[ $rc = 78 ] || { cat "$T/t6.out"; fail "sukid exit $rc for a bad config, want 78"; }
ok "a configuration with errors: exit 78"
