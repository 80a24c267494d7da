#!/bin/sh
# bench_shapes.sh: issue #12's backup, verify and restore figures on several
# shapes of data, run by `make bench` (make bench-shapes).
#
# For each shape (bench_backup shape: dense small rows, rows of about a page,
# 1 MiB values, a database after heavy churn, package-index-like rows), made
# once in $BENCH_DIR/SHAPE-SCALE, REPS interleaved repetitions of
#   dbtool backup DB A      against  mdb_copy DB D + sync D/data.mdb
#   dbtool verify A         against  xxhsum -H2 A
#   dbtool restore R A      against  cp DB/data.mdb F + sync F
# (the order of each pair alternates from one repetition to the next; every
# output is made durable on both sides: dbtool fsyncs, the peers are followed
# by sync FILE, which fsyncs that file).  It times the program itself
# (build/.libs/dbtool against the uninstalled library, or the installed one
# with DBTOOL=...), never libtool's wrapper script build/dbtool.  One Markdown
# table per shape: medians of wall time and of CPU time (user + system, from
# /usr/bin/time), the ratio of the medians and the median of the pairs' ratios,
# with the load average before the shape's runs.  The machine may be shared:
# the ratios of interleaved pairs are the figures to read.
#
# Usage: bench_shapes.sh BUILD_DIR
#   env: BENCH_DIR (default $TMPDIR/edb-bench-shapes), BENCH_SCALE (1 = full size:
#        1.5 M dense rows, 0.4 GB; 0.05 for a quick run), REPS (5),
#        SHAPES ("dense page large churn packages"), DBTOOL (a dbtool to time)
set -eu
build=$(cd "${1:-.}" && pwd)
dbtool=${DBTOOL:-}
if [ -z "$dbtool" ]; then
    dbtool="$build/dbtool"
    if [ -x "$build/.libs/dbtool" ] && [ -f "$build/.libs/libedb.so" ]; then
        dbtool="$build/.libs/dbtool"
        LD_LIBRARY_PATH="$build/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        export LD_LIBRARY_PATH
    fi
fi
bb="$build/tests/bench/bench_backup"
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/edb-bench-shapes}
BENCH_SCALE=${BENCH_SCALE:-1}
REPS=${REPS:-5}
SHAPES=${SHAPES:-dense page large churn packages}

for tool in mdb_copy xxhsum; do
    command -v $tool >/dev/null || { echo "bench_shapes: $tool missing (sh scripts/deps.sh)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench_shapes: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }
mkdir -p "$BENCH_DIR"

# run NAME CMD...: run CMD under /usr/bin/time; appends "NAME wall cpu" to $times.
# Wall time from date +%s.%N around it (/usr/bin/time's %e has 10 ms steps).
run() {
    name=$1; shift
    t0=$(date +%s.%N)
    /usr/bin/time -f "%U %S" -o "$BENCH_DIR/time.out" "$@" >/dev/null 2>"$BENCH_DIR/err.out" ||
        { echo "bench_shapes: '$name' failed: $*" >&2; cat "$BENCH_DIR/err.out" >&2; exit 1; }
    t1=$(date +%s.%N)
    tail -n 1 "$BENCH_DIR/time.out" |
        awk -v n="$name" -v t0="$t0" -v t1="$t1" '{ printf "%s %.4f %.2f\n", n, t1 - t0, $1 + $2 }' >> "$times"
}
median() {  # median of column $2 (2 wall, 3 cpu) of the lines named $1
    awk -v n="$1" -v c="$2" '$1 == n { print $c }' "$times" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else print v[int((NR + 1) / 2)] }'
}
pair_median() {  # median over repetitions of (i-th $1) / (i-th $2), wall time
    awk -v a="$1" -v b="$2" '$1 == a { x[++i] = $2 } $1 == b { y[++j] = $2 }
        END { for (k = 1; k <= i && k <= j; k++) if (y[k] > 0) print x[k] / y[k] }' "$times" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else printf "%.2f\n", v[int((NR + 1) / 2)] }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f\n", a / b; else print "-" }'; }
size_mb() { echo $(( $(stat -c %s "$1") / 1048576 )); }

for shape in $SHAPES; do
    dir="$BENCH_DIR/$shape-$BENCH_SCALE"
    db="$dir/db"
    out="$dir/out"
    if [ ! -f "$dir/made" ]; then
        rm -rf "$dir"
        mkdir -p "$db"
        echo "bench_shapes: making $shape at scale $BENCH_SCALE in $db ..." >&2
        "$bb" shape "$shape" "$db" "$BENCH_SCALE" > "$dir/made.tmp"
        mv "$dir/made.tmp" "$dir/made"
    fi
    rm -f "$dir/keep.edbk"
    "$dbtool" backup "$db" "$dir/keep.edbk" --quiet
    times="$dir/times.txt"
    : > "$times"
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    fresh() { rm -rf "$out"; mkdir -p "$out"; }
    i=0
    while [ $i -lt "$REPS" ]; do
        for side in 0 1; do
            if [ $(( (i + side) % 2 )) -eq 0 ]; then
                fresh; run backup "$dbtool" backup "$db" "$out/a.edbk" --quiet
            else
                fresh; mkdir -p "$out/copy"
                run mdb_copy sh -c 'mdb_copy "$1" "$2" && sync "$2/data.mdb"' sh "$db" "$out/copy"
            fi
        done
        for side in 0 1; do
            if [ $(( (i + side) % 2 )) -eq 0 ]; then
                run verify "$dbtool" verify "$dir/keep.edbk"
            else
                run xxhsum xxhsum -H2 "$dir/keep.edbk"
            fi
        done
        for side in 0 1; do
            if [ $(( (i + side) % 2 )) -eq 0 ]; then
                fresh; run restore "$dbtool" restore "$out/restored" "$dir/keep.edbk"
            else
                fresh; run cp sh -c 'cp "$1" "$2" && sync "$2"' sh "$db/data.mdb" "$out/cp.mdb"
            fi
        done
        i=$((i + 1))
    done
    rm -rf "$out"
    load_end=$(cut -d' ' -f1-3 /proc/loadavg)
    rows=$(awk '$1 == "shape_rows" { print $2 }' "$dir/made")
    echo
    echo "### $shape: $rows rows, data.mdb $(size_mb "$db/data.mdb") MiB, archive $(size_mb "$dir/keep.edbk") MiB" \
         "(scale $BENCH_SCALE, median of $REPS, load $load -> $load_end)"
    echo
    echo "| operation | edb wall s | peer wall s | ratio of medians | median of pair ratios | edb CPU s | peer CPU s | target |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
    for row in "backup mdb_copy <=1.0" "verify xxhsum <=1.3" "restore cp <=1.2"; do
        set -- $row
        ew=$(median "$1" 2); pw=$(median "$2" 2); ec=$(median "$1" 3); pc=$(median "$2" 3)
        echo "| $1 / $2 | $ew | $pw | $(ratio "$ew" "$pw") | $(pair_median "$1" "$2") | $ec | $pc | $3 |"
    done
done
