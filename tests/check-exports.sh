#!/bin/sh
# The shared library exports exactly the public edb_* API: nothing internal
# (edb__*), nothing from LMDB or xxHash, nothing without the prefix.
set -eu
lib="${top_builddir:-.}/.libs/libedb.so"
[ -f "$lib" ] || { echo "check-exports: $lib not built"; exit 1; }
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRW]$/ {print $3}' | sort)
[ -n "$syms" ] || { echo "check-exports: no exported symbols found"; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -v '^edb_[a-z]' || true)
internal=$(printf '%s\n' "$syms" | grep '^edb__' || true)
if [ -n "$bad$internal" ]; then
    echo "check-exports: symbols outside the public API:"
    printf '%s\n' $bad $internal
    exit 1
fi
# Every function declared in the public headers is exported.
hdrs="${top_srcdir:-.}/engine/edb.h ${top_srcdir:-.}/backup/edb_backup.h"
missing=""
for f in $(grep -ho '^EDB_EXTERN [^(]*(' $hdrs | sed 's/.*[ *]\(edb_[a-z0-9_]*\)($/\1/'); do
    printf '%s\n' "$syms" | grep -qx "$f" || missing="$missing $f"
done
[ -z "$missing" ] || { echo "check-exports: declared but not exported:$missing"; exit 1; }
# Fault injection (backup/sys.c's countdown) is compiled into the test
# programs' libedb_test.la only: the library that is installed has none.
fault=$(nm "$lib" 2>/dev/null | awk '$3 ~ /^edb__fault_|^countdown$/ {print $3}' || true)
[ -z "$fault" ] || { echo "check-exports: fault injection in $lib:"; printf '%s\n' $fault; exit 1; }
echo "check-exports: $(printf '%s\n' "$syms" | wc -l) symbols, all public"
