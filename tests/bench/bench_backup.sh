#!/bin/sh
# bench_backup.sh: issue #3's backup benchmark, run by `make bench`.
#
# On a database of at least 1 GiB (made once in $BENCH_DIR), interleaved runs side by side:
#   dbtool backup to a file     vs  mdb_copy  vs  cp of data.mdb   (each output fsynced)
#   dbtool verify                vs  xxhsum -H2 of the archive
#   dbtool restore               vs  cp of data.mdb (fsynced)
# then bench_backup's abort latencies, close latency per stream state, and writer
# rate during a backup.
# Medians of REPS interleaved repetitions (A B C A B C ...); the machine is shared
# and noisy, so the ratios matter more than the absolute times.
#
# Usage: bench_backup.sh BUILD_DIR   (env: BENCH_DIR, BENCH_MB=1100, REPS=5, ABORTS=2000,
#        STATES=400: closes per state in bench_backup states)
set -eu
build=$(cd "${1:-.}" && pwd)
dbtool="$build/dbtool"
# In a build tree with a shared libedb, $build/dbtool is libtool's wrapper
# script (a shell and a few forks, 10 to 30 ms a run): time the program itself,
# as mdb_copy and xxhsum are, against the uninstalled library.
if [ -x "$build/.libs/dbtool" ] && [ -f "$build/.libs/libedb.so" ]; then
    dbtool="$build/.libs/dbtool"
    LD_LIBRARY_PATH="$build/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export LD_LIBRARY_PATH
fi
bb="$build/tests/bench/bench_backup"
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/edb-bench}
BENCH_MB=${BENCH_MB:-1100}
REPS=${REPS:-5}
ABORTS=${ABORTS:-2000}
STATES=${STATES:-400}
db="$BENCH_DIR/db"
out="$BENCH_DIR/out"
mkdir -p "$BENCH_DIR"

for tool in mdb_copy xxhsum; do
    command -v $tool >/dev/null || { echo "bench_backup: $tool missing (sh scripts/deps.sh)" >&2; exit 1; }
done

size_mb() { echo $(( $(stat -c %s "$1") / 1048576 )); }
if [ ! -f "$db/data.mdb" ] || [ "$(size_mb "$db/data.mdb")" -lt "$BENCH_MB" ]; then
    rm -rf "$db"
    echo "filling $db to $BENCH_MB MiB ..." >&2
    "$bb" fill "$db" "$BENCH_MB" >&2
fi

# time_one NAME CMD...: run CMD, append "NAME seconds" to $times
times="$BENCH_DIR/times.txt"
: > "$times"
time_one() {
    name=$1; shift
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || { echo "bench_backup: '$name' failed: $*" >&2; exit 1; }
    t1=$(date +%s.%N)
    echo "$name $(echo "$t1 - $t0" | bc -l)" >> "$times"
}
fresh() { rm -rf "$out"; mkdir -p "$out"; }

do_backup()   { "$dbtool" backup "$db" "$out/a.edbk" --quiet; }
do_mdbcopy()  { mdb_copy "$db" "$out/copy" && sync "$out/copy/data.mdb"; }
do_cp()       { cp "$db/data.mdb" "$out/cp.mdb" && sync "$out/cp.mdb"; }
do_verify()   { "$dbtool" verify "$BENCH_DIR/keep.edbk"; }
do_xxhsum()   { xxhsum -H2 "$BENCH_DIR/keep.edbk"; }
do_restore()  { "$dbtool" restore "$out/restored" "$BENCH_DIR/keep.edbk"; }

rm -f "$BENCH_DIR/keep.edbk"     # left by an earlier run: backup never overwrites
"$dbtool" backup "$db" "$BENCH_DIR/keep.edbk" --quiet
i=0
while [ $i -lt "$REPS" ]; do
    fresh; time_one backup do_backup
    fresh; mkdir -p "$out/copy"; time_one mdb_copy do_mdbcopy
    fresh; time_one cp do_cp
    time_one verify do_verify
    time_one xxhsum do_xxhsum
    fresh; time_one restore do_restore
    fresh; time_one cp_restore do_cp
    i=$((i + 1))
done
rm -rf "$out"

median() {
    grep "^$1 " "$times" | awk '{print $2}' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'
}
ratio() { echo "scale=2; $1 / $2" | bc -l; }
b=$(median backup); m=$(median mdb_copy); c=$(median cp)
v=$(median verify); x=$(median xxhsum); r=$(median restore); rc=$(median cp_restore)
mb=$(size_mb "$db/data.mdb"); amb=$(size_mb "$BENCH_DIR/keep.edbk")

echo "| measurement (median of $REPS, data.mdb $mb MiB, archive $amb MiB) | seconds | ratio | target |"
echo "|---|---:|---:|---|"
echo "| dbtool backup | $b | | |"
echo "| mdb_copy (+fsync) | $m | backup/mdb_copy $(ratio "$b" "$m") | <= 1.0 |"
echo "| cp data.mdb (+fsync) | $c | backup/cp $(ratio "$b" "$c") | |"
echo "| dbtool verify | $v | verify/xxhsum $(ratio "$v" "$x") | <= 1.5 |"
echo "| xxhsum -H2 | $x | | |"
echo "| dbtool restore | $r | restore/cp $(ratio "$r" "$rc") | <= 1.5 |"
echo "| cp (+fsync) | $rc | | |"

echo
"$bb" abort "$db" "$ABORTS"
# edb_backup_close per state (issue #11: < 1 ms at p99, < 5 ms worst, in every
# state): on a 24 MiB database, so that "after the end" reads whole archives.
small="$BENCH_DIR/small"
if [ ! -f "$small/data.mdb" ]; then
    mkdir -p "$small"
    "$bb" fill "$small" 24 >&2
fi
"$bb" states "$small" "$STATES"
"$bb" writer "$db" 3 "$REPS"
