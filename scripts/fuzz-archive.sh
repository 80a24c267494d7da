#!/bin/sh
# Build and run the archive reader fuzzer (libFuzzer, ASan, UBSan).
# usage: sh scripts/fuzz-archive.sh [SECONDS] [libFuzzer args...]
# Needs clang and a configured ./build (for config.h): sh scripts/build.sh build
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}; [ $# -gt 0 ] && shift
out="$top/build/fuzz"
mkdir -p "$out/corpus"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -DEDB_BUILDING \
    -I"$top/build" -I"$top/engine" -I"$top/backup" \
    "$top/tests/fuzz/fuzz_archive.c" "$top/backup/reader.c" "$top/backup/archive.c" \
    "$top/backup/sys.c" "$top/engine/error.c" \
    $(pkg-config --cflags --libs libxxhash lmdb) -o "$out/fuzz_archive"
cp -n "$top"/tests/fuzz/corpus-archive/* "$out/corpus/" 2>/dev/null || true
exec "$out/fuzz_archive" -max_len=400000 -max_total_time="$secs" "$@" "$out/corpus"
