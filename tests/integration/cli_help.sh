#!/bin/sh
# cli_help.sh - sukid -h/--help/-V/--version, and COMMAND --help for every
# sukictl command and subcommand: usage on stdout, exit 0, without reading
# the configuration or touching Redis (the config given does not exist, so
# any command that got past the help would fail).
set -u
B=${top_builddir:-.}
T=$(mktemp -d /tmp/suki-help.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }
NOCONF=$T/nonexistent.conf

# expect_usage WHAT PATTERN CMD... - exit 0, PATTERN on stdout, no stderr.
expect_usage() {
    what=$1 pat=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    [ $rc = 0 ] || { cat "$T/out" "$T/err"; fail "$what: exit $rc, want 0"; }
    grep -q "$pat" "$T/out" || { cat "$T/out"; fail "$what: no '$pat' on stdout"; }
    [ ! -s "$T/err" ] || { cat "$T/err"; fail "$what: wrote to stderr"; }
}

for o in -h --help; do
    expect_usage "sukid $o" '^usage: sukid ' "$B/sukid" $o
done
for o in -V --version; do
    expect_usage "sukid $o" '^sukid [0-9]' "$B/sukid" $o
done
"$B/sukid" --frob >/dev/null 2>"$T/err" && fail "sukid --frob: exit 0"
grep -q '^usage: sukid' "$T/err" || fail "sukid --frob: no usage on stderr"
echo "ok: sukid -h --help -V --version"

expect_usage "sukictl --help" '^usage: sukictl' "$B/sukictl" --help
# Every command the top-level help lists, so that new ones are covered too.
cmds=$("$B/sukictl" --help | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p')
[ "$(echo $cmds | wc -w)" -ge 9 ] || fail "commands not found in --help: $cmds"
for c in $cmds; do
    for o in --help -h; do
        expect_usage "sukictl $c $o" "^usage: sukictl .*$c" \
            "$B/sukictl" -c "$NOCONF" $c $o
    done
done
# After arguments and subcommands, and with --json before the command.
for args in "dead list" "dead replay 1-0" "dead drop 1-0" "campaign create x" \
    "campaign status" "campaign pause x" "campaign list" "cancel some:key" \
    "jobs --client acme" "push somefile" "client acme" "suppress a@b.c"; do
    # shellcheck disable=SC2086
    expect_usage "sukictl $args --help" '^usage: sukictl' \
        "$B/sukictl" -c "$NOCONF" --json $args --help
done
"$B/sukictl" -c "$NOCONF" campaign --help | grep -q 'campaign create NAME' ||
    fail "campaign --help does not show its subcommands"
"$B/sukictl" -c "$NOCONF" jobs --help | grep -q -- '--due-before TIME' ||
    fail "jobs --help does not show its options"
# "--" ends the options: a job key, file or address spelt -h is then an argument.
"$B/sukictl" -c "$NOCONF" cancel -- --help >"$T/out" 2>&1 &&
    fail "cancel -- --help: exit 0"
grep -q '^usage: sukictl \[' "$T/out" && fail "cancel -- --help printed the help"
echo "ok: every sukictl command answers --help and -h without config or Redis"
