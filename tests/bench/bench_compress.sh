#!/bin/sh
# Compressed archives (issue #15): size and throughput of
# `dbtool backup --compress zstd` against `zstd -1` and `zstd -1 -T0` of the
# uncompressed archive of the same snapshot, on two data shapes:
#   text  rows of text with a repeated digit string (compresses about 5x);
#   mixed rows whose text is half random hex (compresses about 2x).
# For each shape, REPS runs (default 3) interleave A B C: dbtool backup
# --compress zstd --threads $(nproc) (BENCH_Z_THREADS; writes a file, fsynced), zstd -1 -T0 of the plain archive
# (from the page cache, to a file, fsynced), zstd -1 single-threaded; the
# throughput is uncompressed archive bytes per second.  Prints each run and
# the medians, and the ratios the issue targets:
#   size:        compressed / (zstd -1 size) <= 1.02
#   throughput:  dbtool / (zstd -1 -T0) >= 0.8
#
#   sh tests/bench/bench_compress.sh BUILD_DIR [ROWS] [REPS]
set -eu
build=${1:-build}
rows=${2:-200000}
reps=${3:-3}
dbtool="$build/dbtool"
[ -x "$dbtool" ] || { echo "bench_compress: $dbtool not built"; exit 1; }
command -v zstd >/dev/null || { echo "bench_compress: zstd (the command) is missing"; exit 1; }
threads=${BENCH_Z_THREADS:-$(nproc)}    # as zstd -T0: one per core
work=$(mktemp -d /tmp/edb-bench-compress-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM

now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
gen_text() {
    awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++)
        printf "{\"v\": \"row %d %0180d\"}\n", i, (i * 7919) % 1000000007 }'
}
gen_mixed() {
    awk -v n="$1" 'BEGIN { srand(7); for (i = 0; i < n; i++) {
        s = ""; for (j = 0; j < 12; j++) s = s sprintf("%08x", int(rand() * 4294967296))
        printf "{\"v\": \"row %d %s %096d\"}\n", i, s, i } }'
}

printf '%-6s %4s %12s %12s %12s %8s %10s %10s %10s %8s\n' shape run plain_B zstd1_B edbz_B size_r \
    edbz_MB/s T0_MB/s zstd1_MB/s thr_r
for shape in text mixed; do
    db="$work/db-$shape"
    "$dbtool" create "$db" >/dev/null
    echo '{"name": "t", "columns": [{"name": "id", "type": "int64", "flags": ["autoinc"]}, {"name": "v", "type": "text"}],
     "indexes": [{"name": "pk", "key": ["+id"], "flags": ["primary"]}]}' > "$work/schema.json"
    "$dbtool" create-table "$db" "$work/schema.json"
    "gen_$shape" "$rows" | "$dbtool" import "$db" t - >/dev/null
    "$dbtool" backup "$db" "$work/plain.edbk" --quiet --overwrite
    plain=$(stat -c %s "$work/plain.edbk")
    zstd -1 -q -f "$work/plain.edbk" -o "$work/plain.zst"
    z1=$(stat -c %s "$work/plain.zst")
    : > "$work/r_edb"; : > "$work/r_t0"; : > "$work/r_z1"; : > "$work/r_size"; : > "$work/r_thr"
    for r in $(seq 1 "$reps"); do
        cat "$work/plain.edbk" > /dev/null
        t0=$(now); "$dbtool" backup "$db" "$work/z.edbk" --compress zstd --threads "$threads" --quiet --overwrite; t1=$(now)
        t2=$(now); zstd -1 -T0 -q -f "$work/plain.edbk" -o "$work/t0.zst"; sync "$work/t0.zst"; t3=$(now)
        t4=$(now); zstd -1 -q -f "$work/plain.edbk" -o "$work/z1.zst"; sync "$work/z1.zst"; t5=$(now)
        ez=$(stat -c %s "$work/z.edbk")
        e=$(echo "$plain / ($t1 - $t0) / 1048576" | bc -l)
        a=$(echo "$plain / ($t3 - $t2) / 1048576" | bc -l)
        b=$(echo "$plain / ($t5 - $t4) / 1048576" | bc -l)
        sr=$(echo "$ez / $z1" | bc -l)
        tr=$(echo "$e / $a" | bc -l)
        printf '%-6s %4d %12d %12d %12d %8.4f %10.1f %10.1f %10.1f %8.3f\n' "$shape" "$r" "$plain" "$z1" \
            "$ez" "$sr" "$e" "$a" "$b" "$tr"
        echo "$e" >> "$work/r_edb"; echo "$a" >> "$work/r_t0"; echo "$b" >> "$work/r_z1"
        echo "$sr" >> "$work/r_size"; echo "$tr" >> "$work/r_thr"
    done
    printf '%-6s %4s %12d %12d %12s %8.4f %10.1f %10.1f %10.1f %8.3f\n' "$shape" med "$plain" "$z1" "-" \
        "$(median < "$work/r_size")" "$(median < "$work/r_edb")" "$(median < "$work/r_t0")" \
        "$(median < "$work/r_z1")" "$(median < "$work/r_thr")"
    rm -f "$work"/*.edbk "$work"/*.zst
done
