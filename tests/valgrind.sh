#!/bin/sh
# Run every test suite under valgrind: MODE=memcheck (default) or helgrind (or drd).
#
# Usage: MODE=memcheck|helgrind sh tests/valgrind.sh [BUILD_DIR (default build-vg)] [SUITE...]
#
# BUILD_DIR is built here with --enable-test-shim --disable-fuzz: the suites then run with tests/backup/tshim.h instead of Criterion, one
# forked process per test, which valgrind follows by itself (a fork without exec
# stays under valgrind), so every test's errors and leaks are reported by the
# process that made them.  Criterion's own runner (threads, nanomsg sockets,
# shared arenas) would add third-party noise and is not what is being checked.
# Processes the suites exec (dbtool, fiu-run, mdb_stat) are not traced: dbtool
# opens its databases with edb's default 64 GiB map, which valgrind cannot
# reserve (see doc/reliability.md); the ASan build checks them instead.
#
# Each suite's exit status fails the run: a test fails on valgrind's
# --error-exitcode (99) as on an assertion.  The summary counts the processes
# with errors from valgrind's own logs, so "0 reports" is read, not assumed.
# EDB_TEST_SCALE (percent, default 3 here) shrinks the loops; EDB_TEST_SLOW
# (default 30 here) stretches every time limit; EDB_TEST_MAP_MB (default 1024
# here) is the map size of the engine suites' environments (tests/engine/helpers.h).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
mode=${MODE:-memcheck}
build=${1:-build-vg}; [ $# -gt 0 ] && shift
cd "$top"
# (Re)configures only when needed, and then with these options.  -O0: at -O2 a
# pointer may live only in a register, and memcheck then calls the blocks that
# a forked helper process (which _exits) inherited "definitely lost".
sh scripts/build.sh "$build" --enable-test-shim --disable-fuzz CFLAGS="-g -O0"
grep -q '^TEST_CFLAGS = .*EDB_TEST_SHIM' "$build/Makefile" && grep -q '^CFLAGS = -g -O0$' "$build/Makefile" ||
    { echo "valgrind.sh: $build is not configured with --enable-test-shim CFLAGS='-g -O0'"; exit 2; }
make -C "$build" -j"$(nproc)" check TESTS= >/dev/null
suites=${*:-$(sed 's|^tests/bin/||' tests/tsan-suites)}
# helgrind/drd: not the crash suite (unless named).  Its processes have one thread
# each (the test forks writers and execs dbtool, and kills them), so there is no
# race for helgrind to find, and under helgrind's slowdown its kill windows cannot
# be calibrated (no writer commits before its kill).  memcheck runs it.
if [ $# -eq 0 ] && [ "$mode" != memcheck ]; then
    suites=$(echo "$suites" | grep -vx crash)
fi
case $mode in
# "possibly lost" is left out: LMDB keeps its ID lists by a pointer to their
# second element (mdb_midl_alloc returns ids + 1), so the lists of an
# environment still open when a process ends (the suites' forked writers that
# _exit, the crash tests' killed children) are always "possibly lost"; a leaked
# environment or anything else of edb's shows as definitely or indirectly lost.
memcheck) opts="--leak-check=full --show-leak-kinds=definite,indirect
                --errors-for-leak-kinds=definite,indirect" ;;
helgrind|drd) opts="" ;;
*) echo "valgrind.sh: MODE must be memcheck, helgrind or drd"; exit 2 ;;
esac
logs=$(mktemp -d /tmp/edb-valgrind-XXXXXX)
trap 'rm -rf "$logs"' EXIT
status=0
total_procs=0; total_bad=0; total_tests=0
for s in $suites; do
    t0=$(date +%s)
    # shellcheck disable=SC2086
    if EDB_TEST_SLOW=${EDB_TEST_SLOW:-30} EDB_TEST_SCALE=${EDB_TEST_SCALE:-3} \
       EDB_TEST_MAP_MB=${EDB_TEST_MAP_MB:-1024} top_builddir="$build" top_srcdir=. \
       valgrind --tool="$mode" --error-exitcode=99 --trace-children=no \
           --suppressions=tests/valgrind.supp $opts --log-file="$logs/$s.%p" \
           "$build/tests/bin/$s" > "$logs/$s.out" 2>&1; then
        r=ok
    else
        r=FAILED; status=1
    fi
    procs=$(ls "$logs" | grep -c "^$s\.[0-9]" || true)
    bad=$(grep -l 'ERROR SUMMARY: [1-9]' "$logs/$s".[0-9]* 2>/dev/null | wc -l)
    tests=$(grep -c '^\[PASS\]' "$logs/$s.out" || true)
    printf 'valgrind.sh: %s %-18s %s: %s tests passed, %s processes, %s with errors (%ss)\n' \
        "$mode" "$s" "$r" "$tests" "$procs" "$bad" "$(( $(date +%s) - t0 ))"
    if [ "$r" != ok ] || [ "$bad" -gt 0 ]; then
        status=1
        grep -E '^\[(FAIL|----)\]' "$logs/$s.out" || true
        for f in $(grep -l 'ERROR SUMMARY: [1-9]' "$logs/$s".[0-9]* 2>/dev/null); do
            sed -n '1,200p' "$f"
        done
    fi
    total_procs=$((total_procs + procs)); total_bad=$((total_bad + bad)); total_tests=$((total_tests + tests))
done
echo "valgrind.sh: $mode: $total_tests tests passed, $total_procs processes, $total_bad with errors"
exit $status
