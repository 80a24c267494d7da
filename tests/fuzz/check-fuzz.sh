#!/bin/sh
# check-fuzz.sh: build the libFuzzer targets of tests/fuzz/ with clang and run
# each for a bounded time.  Run by `make check` (a few seconds per target) and
# by `make fuzz-long` (FUZZ_SECONDS=300 or so, for CI).
#
# The gcc build is not touched: objects are compiled with clang
# (-fsanitize=fuzzer,address,undefined) into $top_builddir/tests/fuzz/.
# Exit 77 (SKIP) when configure was told --disable-fuzz, or when clang or its
# fuzzer runtime is missing.  Exit 1 when a target crashes, leaks, trips a
# sanitizer or a property: the reproducer is left in tests/fuzz/out/ and its
# path printed; keep it in tests/fuzz/crashes/<target>/ with a regression test.
#
# Environment: FUZZ_SECONDS (per target, default 4), FUZZ_CC (clang),
# FUZZ_ENABLE (yes/no/auto from configure), FUZZ_JOBS (parallel targets, 1).
set -eu
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${top_builddir:-.}
secs=${FUZZ_SECONDS:-4}
cc=${FUZZ_CC:-clang}
[ "${FUZZ_ENABLE:-auto}" = no ] && { echo "fuzz: disabled by configure"; exit 77; }
command -v "$cc" >/dev/null 2>&1 || { echo "fuzz: no $cc"; exit 77; }
srcdir=$(cd "$srcdir" && pwd)
out=$(cd "$builddir" && pwd)/tests/fuzz
mkdir -p "$out/obj" "$out/bin" "$out/work"

printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
    > "$out/probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$out/probe.c" -o "$out/probe" >/dev/null 2>&1; then
    echo "fuzz: $cc cannot link -fsanitize=fuzzer (libclang-rt missing?)"
    exit 77
fi

pc=$(pkg-config --cflags lmdb libxxhash jansson libzstd libsodium)
libs="$(pkg-config --libs lmdb libxxhash jansson libzstd libsodium) -pthread"
cflags="-g -O1 -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter -fno-omit-frame-pointer
  -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  -DEDB_BUILDING -I$(cd "$builddir" && pwd) -I$srcdir/engine -I$srcdir/backup -I$srcdir/tools
  -I$srcdir/tests/fuzz $pc"
lib_srcs="engine/error.c engine/coltype.c backup/archive.c backup/reader.c backup/verify.c backup/sys.c
  backup/sys_fs.c tools/csv.c tools/jsonval.c backup/base.c backup/manifest.c backup/codec.c"
targets="blocks reader jsonval import manifest"

# Rebuild everything when any source or header changed since the last build.
stamp="$out/obj/.stamp"
for t in $targets; do [ -x "$out/bin/fuzz_$t" ] || rm -f "$stamp"; done
if [ ! -f "$stamp" ] || [ -n "$(find "$srcdir/engine" "$srcdir/backup" "$srcdir/tools" \
        "$srcdir/tests/fuzz" "$builddir/config.h" -newer "$stamp" \( -name '*.[ch]' \) 2>/dev/null | head -1)" ]; then
    objs=""
    for s in $lib_srcs; do
        o="$out/obj/$(echo "$s" | tr / _ | sed 's/\.c$/.o/')"
        # shellcheck disable=SC2086
        "$cc" $cflags -c "$srcdir/$s" -o "$o"
        objs="$objs $o"
    done
    for t in $targets; do
        # shellcheck disable=SC2086
        "$cc" $cflags -fsanitize=fuzzer "$srcdir/tests/fuzz/fuzz_$t.c" $objs $libs -o "$out/bin/fuzz_$t"
    done
    touch "$stamp"
fi

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fail=0
total=0
for t in $targets; do
    seeds="$srcdir/tests/fuzz/corpus/$t"
    crashes="$srcdir/tests/fuzz/crashes/$t"
    work="$out/work/$t"
    mkdir -p "$work" "$out/artifacts"
    # Known crashes first: each must run clean, except those listed in
    # crashes/KNOWN (reported, not fixed yet), which are expected to fail.
    if [ -d "$crashes" ]; then
        for c in "$crashes"/*; do
            [ -f "$c" ] || continue
            rel="$t/$(basename "$c")"
            known=no
            grep -q "^$rel " "$srcdir/tests/fuzz/crashes/KNOWN" 2>/dev/null && known=yes
            if FUZZ_KNOWN_BUGS=1 "$out/bin/fuzz_$t" -runs=1 "$c" >"$out/replay.log" 2>&1; then
                [ $known = yes ] && echo "fuzz_$t: $rel now passes: remove it from tests/fuzz/crashes/KNOWN"
            elif [ $known = yes ]; then
                echo "fuzz_$t: $rel: known open (tests/fuzz/crashes/KNOWN)"
            else
                echo "fuzz_$t: reproducer $rel fails again:"
                grep -E 'ERROR|SUMMARY|runtime error' "$out/replay.log" | head -5
                fail=1
            fi
        done
    fi
    log="$out/$t.log"
    if "$out/bin/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=131072 \
            -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" "$work" "$seeds" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        total=$((total + ${runs:-0}))
        echo "fuzz_$t: ${runs:-?} executions in ${secs}s, corpus $(ls "$work" | wc -l) + $(ls "$seeds" | wc -l) seeds: ok"
    else
        echo "fuzz_$t: FAILED; reproducer: $(ls -t "$out/artifacts/$t-"* 2>/dev/null | head -1)"
        grep -E 'ERROR|SUMMARY|runtime error|==[0-9]+==' "$log" | head -20
        fail=1
    fi
done
echo "fuzz: $total executions in total"
exit $fail
