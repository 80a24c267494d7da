#!/bin/sh
# Run the backup suites under valgrind's helgrind (and optionally DRD).
# Criterion's forked workers are not followed usefully by valgrind, so the
# suites are built here against tests/backup/tshim.h (the Criterion-compatible
# runner of the TSan build) and the library of an ordinary build.
# Usage: sh tests/backup/helgrind.sh [BUILD_DIR (default build)] [SUITE...]
# EDB_TEST_SCALE (percent, default 3 here) shrinks the loops, EDB_TEST_SLOW
# (default 30 here) stretches time limits; TOOL=drd for DRD.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}; [ $# -gt 0 ] && shift
suites=${*:-stream cancel writers torture}
tool=${TOOL:-helgrind}
lib="$top/$build/.libs/libedb_core.a"
[ -f "$lib" ] || { echo "helgrind.sh: $lib not built (sh scripts/build.sh $build)"; exit 2; }
out=$(mktemp -d /tmp/edb-helgrind-XXXXXX)
trap 'rm -rf "$out"' EXIT
status=0
for s in $suites; do
    cc -std=c11 -g -O1 -pthread -DEDB_TEST_SHIM -DEDB_BUILDING -I"$top/$build" -I"$top/engine" \
       -I"$top/backup" -I"$top/tests/shim" "$top/tests/backup/test_$s.c" "$top/tests/backup/tshim.c" "$lib" -llmdb -lxxhash -lffi -o "$out/$s"
    echo "== $tool: backup_$s"
    EDB_TEST_SLOW=${EDB_TEST_SLOW:-30} EDB_TEST_SCALE=${EDB_TEST_SCALE:-3} valgrind --tool="$tool" --error-exitcode=1 -q \
        --suppressions="$top/tests/backup/helgrind.supp" "$out/$s" || status=1
done
exit $status
