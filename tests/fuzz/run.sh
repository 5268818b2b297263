#!/bin/sh
# run.sh [SECONDS] - build every libFuzzer harness of tests/fuzz with clang-14
# into _build/fuzz/ and run each for SECONDS (default 30), one after the
# other, niced: the build machines are shared. Each harness starts from its
# seed and regression corpus (tests/fuzz/corpus/NAME, read only) plus the
# inputs earlier runs found (_build/fuzz/work/NAME). Prints one line per
# harness and, last, "fuzz: N passed, N failed"; exits non-zero when any
# harness found a crash, leak, undefined behaviour or timeout (the input is
# kept in _build/fuzz/artifacts/NAME/). run.sh 0 only builds.
#
# SUKI_CONFIG_H=path/to/config.h uses the config.h of a configured tree
# (make fuzz passes its own); else a private ./configure run makes one.
# FUZZ_ONLY="event mime" runs a subset.
set -eu
cd "$(dirname "$0")/../.."
TOP=$(pwd)
SECONDS_EACH=${1:-30}
case $SECONDS_EACH in
'' | *[!0-9]*) echo "usage: $0 [SECONDS] (0: build only)" >&2; exit 2 ;;
esac
O=_build/fuzz
CLANG=${CLANG:-clang-14}
mkdir -p "$O"

command -v "$CLANG" >/dev/null 2>&1 || {
    echo "fuzz: $CLANG not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 1
}

# config.h: the daemon sources include it; its contents do not depend on
# the compiler, so one from a gcc-configured tree is as good.
if [ -n "${SUKI_CONFIG_H:-}" ]; then
    mkdir -p "$O/cfg"
    cmp -s "$SUKI_CONFIG_H" "$O/cfg/config.h" 2>/dev/null ||
        cp "$SUKI_CONFIG_H" "$O/cfg/config.h"
elif [ ! -f "$O/cfg/config.h" ]; then
    [ -x configure ] || autoreconf -fi >"$O/autoreconf.out" 2>&1 ||
        { cat "$O/autoreconf.out"; exit 1; }
    mkdir -p "$O/cfg"
    (cd "$O/cfg" && "$TOP/configure" CC="$CLANG" >configure.out 2>&1) ||
        { cat "$O/cfg/configure.out"; exit 1; }
fi

JOBS=${FUZZ_JOBS:-2}
nice -n 10 make -s -j"$JOBS" -f tests/fuzz/build.mk O="$O" \
    CLANG="$CLANG" CONFIG_DIR="$O/cfg" >"$O/build.out" 2>&1 ||
    { cat "$O/build.out"; echo "fuzz: build failed"; exit 1; }
# warnings are a failure of their own kind: show them
grep -E 'warning:' "$O/build.out" || true
# libFuzzer reads -max_total_time=0 as "no limit"
[ "$SECONDS_EACH" -gt 0 ] || { echo "fuzz: built in $O"; exit 0; }

# Leaks in libraries that suki cannot fix (see the file); everything else
# is a finding.
LSAN_OPTIONS="suppressions=$TOP/tests/fuzz/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS

# The harnesses' scratch directories; a crashed one cannot clean up.
rm -rf "$O/tmp"
mkdir -p "$O/tmp"
TMPDIR="$TOP/$O/tmp"
export TMPDIR

pass=0 fail=0
for bin in "$O"/fuzz_*; do
    [ -x "$bin" ] || continue
    case $bin in *.o | *.d) continue ;; esac
    name=${bin##*/fuzz_}
    if [ -n "${FUZZ_ONLY:-}" ]; then
        case " $FUZZ_ONLY " in *" $name "*) ;; *) continue ;; esac
    fi
    work=$O/work/$name art=$O/artifacts/$name/ log=$O/$name.log
    rm -rf "$art" # what is there is from an earlier run
    mkdir -p "$work" "$art" "tests/fuzz/corpus/$name"
    dict=
    [ -f "tests/fuzz/$name.dict" ] && dict=-dict=tests/fuzz/$name.dict
    rc=0
    # The first corpus directory takes the new inputs: the build dir, never
    # the tree.
    # shellcheck disable=SC2086
    nice -n 10 "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 \
        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$art" $dict "$work" "tests/fuzz/corpus/$name" \
        >"$log" 2>&1 </dev/null || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        pass=$((pass + 1))
        echo "fuzz $name: ok, ${execs:-?} execs in ${SECONDS_EACH}s"
    else
        fail=$((fail + 1))
        what=$(grep -m1 -E '(==[0-9]+==ERROR: [A-Za-z]*Sanitizer|runtime error:|ALARM: working on the last Unit)' "$log" || true)
        # a harness's own check prints its message, then abort()s
        [ -n "$what" ] || what=$(grep -B1 -m1 'ERROR: libFuzzer: deadly signal' "$log" | head -n 1 || true)
        echo "fuzz $name: FOUND SOMETHING (exit $rc), ${execs:-?} execs: ${what:-see $log}"
        for f in "$art"*; do
            if [ -e "$f" ]; then echo "    input: $f"; fi
        done
        echo "    log: $log"
    fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
