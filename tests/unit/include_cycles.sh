#!/bin/sh
# include_cycles.sh - no two modules include each other (issue #14).
exec /usr/bin/python3 "$top_srcdir/tests/unit/include_cycles.py" "$top_srcdir"
