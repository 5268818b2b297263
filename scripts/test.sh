#!/bin/sh
# test.sh - the whole test suite from a fresh clone: install what is missing,
# build with AddressSanitizer + UndefinedBehaviorSanitizer and -Werror, run
# every unit, integration and fault-injection test (each starts its own
# redis-server, SMTP and HTTP servers on loopback and stops them), then run
# the unit tests once more under valgrind in a plain build (and, there,
# tests/chaos/huge_events.sh under an address-space limit), then each
# fuzzer briefly. The last line is "N passed, N failed".
set -eu
cd "$(dirname "$0")/.."
TOP=$(pwd)
sh scripts/deps.sh
[ -x configure ] || autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
JOBS=$(nproc 2>/dev/null || echo 2)

run_check() { # dir [configure args...] -- [make check args...]
    dir=$1; shift
    cfg=
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do cfg="$cfg $1"; shift; done
    [ $# -gt 0 ] && shift
    mkdir -p "$dir"
    if [ ! -f "$dir/Makefile" ]; then
        # shellcheck disable=SC2086
        (cd "$dir" && "$TOP/configure" $cfg >configure.out 2>&1) ||
            { cat "$dir/configure.out"; exit 1; }
    fi
    make -C "$dir" -j"$JOBS" >"$dir/build.out" 2>&1 ||
        { cat "$dir/build.out"; exit 1; }
    make -C "$dir" -j"$JOBS" check "$@" >"$dir/check.out" 2>&1 || true
}

count() { # dir -> "pass fail": a skipped test did not run, so it failed
    awk '/^# PASS:/{p=$3} /^# FAIL:/{f+=$3} /^# ERROR:/{f+=$3} /^# XPASS:/{f+=$3}
         /^# SKIP:/{f+=$3} END{print p+0, f+0}' "$1/check.out"
}

run_check _build/asan --enable-sanitizers --enable-werror --
set -- $(count _build/asan)
pass=$1 fail=$2
grep -E '^(FAIL|ERROR|XPASS|SKIP):' _build/asan/check.out || true
if [ "$fail" -gt 0 ]; then
    for log in $(grep -lE '^:test-result: (FAIL|ERROR|SKIP)' $(find _build/asan/tests -name '*.trs') 2>/dev/null | sed 's/\.trs$/.log/'); do
        echo "===== $log"; tail -n 60 "$log"
    done
fi

if [ "${SUKI_VALGRIND:-1}" = 1 ]; then
    # Unit tests once more under valgrind (a sanitizer build can't run there).
    # Unit tests, then a few whole-daemon tests with sukid under valgrind.
    UNIT=$(cd tests/unit && ls check_*.c | sed 's|^|tests/unit/|; s|\.c$||' | tr '\n' ' ')
    VG_DAEMON="tests/integration/lifecycle.sh tests/integration/account_lifecycle.sh
        tests/integration/intake_basic.sh tests/integration/sched_retry.sh"
    mkdir -p _build/valgrind
    (
        export SUKID="$TOP/scripts/valgrind-sukid.sh"
        export SUKID_REAL="$TOP/_build/valgrind/sukid"
        export VALGRIND_LOG="$TOP/_build/valgrind/valgrind-sukid.%p.log"
        # shellcheck disable=SC2086
        run_check _build/valgrind -- TESTS="$UNIT $(echo $VG_DAEMON)" \
            LOG_COMPILER="$TOP/scripts/valgrind-wrap.sh"
    )
    set -- $(count _build/valgrind)
    grep -E '^(FAIL|ERROR|SKIP):' _build/valgrind/check.out || true
    pass=$((pass + $1)) fail=$((fail + $2))
    # Huge events with sukid under an address-space limit, which only a
    # build without sanitizers can run.
    (
        export SUKI_AS_LIMIT_MB=300
        run_check _build/valgrind -- TESTS=tests/chaos/huge_events.sh
    )
    set -- $(count _build/valgrind)
    grep -E '^(FAIL|ERROR|SKIP):' _build/valgrind/check.out || true
    pass=$((pass + $1)) fail=$((fail + $2))
fi
# Static analysis (cppcheck), one test.
if sh scripts/cppcheck.sh >_build/cppcheck.out 2>&1; then
    pass=$((pass + 1))
else
    echo "===== cppcheck"; cat _build/cppcheck.out
    fail=$((fail + 1))
fi
# Formatting (.clang-format is the law), one test.
if sh scripts/format.sh >_build/format.out 2>&1; then
    pass=$((pass + 1))
else
    echo "===== format"; cat _build/format.out
    fail=$((fail + 1))
fi
if [ "${SUKI_FUZZ:-1}" = 1 ]; then
    # Every libFuzzer harness for 30 s (tests/fuzz/README.md has the long
    # run): each harness is one test, and a build failure one failure.
    mkdir -p _build/fuzz
    sh tests/fuzz/run.sh 30 >_build/fuzz/run.out 2>&1 || true
    grep -A3 'FOUND SOMETHING' _build/fuzz/run.out || true
    set -- $(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' _build/fuzz/run.out)
    if [ $# -eq 2 ]; then
        pass=$((pass + $1)) fail=$((fail + $2))
    else
        tail -n 30 _build/fuzz/run.out
        fail=$((fail + 1))
    fi
fi

# ---- stage: a real systemd (tests/system/nspawn.sh) -------------------
# make install and the .deb, each booted in a Debian 12 container; its
# "ok -" / "not ok -" lines count into the totals. A machine that can't run
# it fails it, loudly; SUKI_NSPAWN=0 leaves it out, and says so.
if [ "${SUKI_NSPAWN:-1}" = 1 ]; then
    mkdir -p _build
    nrc=0
    bash tests/system/nspawn.sh >_build/nspawn.out 2>&1 || nrc=$?
    np=$(grep -c '^ok - ' _build/nspawn.out || true)
    nf=$(grep -c '^not ok - ' _build/nspawn.out || true)
    [ "$nrc" -ne 0 ] && [ "$nf" -eq 0 ] && nf=1
    if [ "$nf" -gt 0 ]; then cat _build/nspawn.out; else
        grep -E '^# nspawn:' _build/nspawn.out || true; fi
    pass=$((pass + np)) fail=$((fail + nf))
else
    echo "##### nspawn stage NOT RUN (SUKI_NSPAWN=0): the unit and the .deb are untested"
    fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
