#!/bin/sh
# Install what is missing, build, and run the whole test suite (make check).
# With CI=true it also runs the suite in an ASan+UBSan build, every Criterion
# suite in a TSan build (tests/tsan-suites) and under valgrind memcheck and
# helgrind (tests/valgrind.sh), and the long fuzz run (FUZZ_SECONDS per target,
# default 120).  Each stage prints its wall time; the whole CI run is meant
# to stay within CI's 90 minutes on two cores (doc/reliability.md has the figures).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
stage() { printf 'test.sh: %s: %ss\n' "$1" "$(( $(date +%s) - t0 ))"; t0=$(date +%s); }
# The closing line: automake's "# PASS:" and "# FAIL:"/"# ERROR:"/"# XPASS:" summed
# over the test-suite logs of the stages that ran.
logs=""
summary() {
    # shellcheck disable=SC2086
    awk '/^# PASS:/ {p += $3} /^# (FAIL|ERROR|XPASS):/ {f += $3} END {printf "%d passed, %d failed\n", p, f}' $logs
}
t0=$(date +%s)
sh scripts/deps.sh
sh scripts/build.sh build
stage build
make -C build -j"$(nproc)" check || { cat build/test-suite.log; exit 1; }
logs="build/test-suite.log"
stage "make check"
if [ "${CI:-}" = "true" ] || [ "${EDB_SANITIZERS:-}" = "1" ]; then
    # The sanitizer builds leave fuzzing to the clang build (--disable-fuzz).
    sh scripts/build.sh build-asan --enable-asan --disable-fuzz
    stage "asan build"
    EDB_SKIP_MODEL=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
        make -C build-asan -j"$(nproc)" check || { cat build-asan/test-suite.log; exit 1; }
    logs="$logs build-asan/test-suite.log"
    stage "asan make check"
    sh scripts/build.sh build-tsan --enable-tsan --disable-fuzz
    stage "tsan build"
    # Every suite runs under TSan (tests/backup/tshim.h stands in for Criterion
    # there): a suite missing from tests/tsan-suites is an error.
    make -C build-tsan -j"$(nproc)" check TESTS= >/dev/null
    for b in build-tsan/tests/bin/*; do
        grep -qx "tests/bin/${b##*/}" tests/tsan-suites || { echo "test.sh: ${b##*/} is not in tests/tsan-suites"; exit 1; }
    done
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
        make -C build-tsan -j"$(nproc)" check TESTS="$(tr '\n' ' ' < "$top/tests/tsan-suites" 2>/dev/null || echo tests/bin/errors)" \
        || { cat build-tsan/test-suite.log; exit 1; }
    logs="$logs build-tsan/test-suite.log"
    stage "tsan make check"
    # Every suite under valgrind, memcheck then helgrind (tests/valgrind.sh builds
    # build-vg with the test shim at -O0); each fails on any valgrind report.
    # s3: its harness only spawns servers and dbtool (which valgrind does not
    # trace); ASan and TSan run it.
    # shellcheck disable=SC2046
    sh tests/valgrind.sh build-vg $(grep -vx 'tests/bin/s3' tests/tsan-suites | sed 's|^tests/bin/||')
    stage "valgrind memcheck"
    # helgrind: every suite but the fault loops (faults, backup_countdown,
    # tool_faults: thousands of backups, about 50 minutes under helgrind, too long
    # for CI; TSan and memcheck run them above) and the single-threaded crash
    # suite (tests/valgrind.sh says why).  `MODE=helgrind sh tests/valgrind.sh`
    # runs them all.
    # shellcheck disable=SC2046
    MODE=helgrind sh tests/valgrind.sh build-vg $(grep -vxE 'tests/bin/(crash|faults|backup_countdown|tool_faults|s3)' tests/tsan-suites | sed 's|^tests/bin/||')
    stage "valgrind helgrind"
    FUZZ_SECONDS=${FUZZ_SECONDS:-120} make -C build fuzz-long
    stage "fuzz-long"
fi
summary
