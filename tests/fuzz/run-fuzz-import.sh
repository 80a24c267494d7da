#!/bin/sh
# Build the import-parser fuzz target with clang (libFuzzer + ASan + UBSan)
# (make check also runs it for a few seconds through tests/fuzz/check-fuzz.sh)
# and run it on the seed corpus for SECONDS (default 60).
#   sh tests/fuzz/run-fuzz-import.sh [SECONDS] [BUILD_DIR]
# BUILD_DIR (default build) supplies config.h.  New inputs that grow coverage
# are added to a scratch copy of the corpus, not to the tree.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
build=${2:-$top/build}
work=$(mktemp -d /tmp/edb-fuzz-import-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$build" -I"$top/engine" -I"$top/tools" $(pkg-config --cflags jansson) \
    "$top/tests/fuzz/fuzz_import.c" "$top/tools/csv.c" "$top/tools/jsonval.c" \
    $(pkg-config --libs jansson) -o "$work/fuzz_import"
cp -r "$top/tests/fuzz/corpus/import" "$work/corpus"
"$work/fuzz_import" -max_total_time="$secs" -timeout=5 -rss_limit_mb=1024 "$work/corpus"
