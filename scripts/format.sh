#!/bin/sh
# format.sh [--fix] - every C file of the tree formats clean under
# .clang-format (clang-format 14, Debian 12's); exits 1 naming the files
# that do not. --fix rewrites them instead.
set -eu
cd "$(dirname "$0")/.."
cf=$(command -v clang-format-14 || command -v clang-format) ||
    { echo "format.sh: clang-format not found" >&2; exit 1; }
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find lib daemon ctl plugins include tests bench -name '*.[ch]')
if [ "${1:-}" = --fix ]; then
    # shellcheck disable=SC2086
    exec "$cf" -i $files
fi
bad=0
for f in $files; do
    "$cf" --dry-run --Werror "$f" >/dev/null 2>&1 ||
        { echo "format.sh: $f is not formatted (scripts/format.sh --fix)"; bad=1; }
done
exit $bad
