#!/bin/sh
# Install what is missing, build, and run the whole test suite (make check).
# With CI=true it also runs the suite in an ASan+UBSan build and the backup
# suites in a TSan build.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh scripts/deps.sh
sh scripts/build.sh build
make -C build -j"$(nproc)" check || { cat build/test-suite.log; exit 1; }
if [ "${CI:-}" = "true" ] || [ "${EDB_SANITIZERS:-}" = "1" ]; then
    sh scripts/build.sh build-asan --enable-asan
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
        make -C build-asan -j"$(nproc)" check || { cat build-asan/test-suite.log; exit 1; }
    sh scripts/build.sh build-tsan --enable-tsan
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
        make -C build-tsan -j"$(nproc)" check TESTS="$(cat "$top/tests/tsan-suites" 2>/dev/null || echo tests/bin/errors)" \
        || { cat build-tsan/test-suite.log; exit 1; }
fi
