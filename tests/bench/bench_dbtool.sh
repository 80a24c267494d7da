#!/bin/sh
# dbtool import/export against sqlite3 (issue #5): N rows (default 1,000,000)
# of id int64 primary key, name text (secondary index), qty int32, price
# double, ts datetime.  dbtool reads and writes JSON lines; sqlite3 .import
# reads the same rows as CSV into a table with the same index, and exports
# them as CSV.  Runs interleave dbtool and sqlite3 (A B A B ...) REPS times and
# print each run and the medians.  Durable: both commit once with fsync.
#
#   sh tests/bench/bench_dbtool.sh BUILD_DIR [ROWS] [REPS]
set -eu
build=${1:-build}
rows=${2:-1000000}
reps=${3:-3}
dbtool="$build/dbtool"
[ -x "$dbtool" ] || { echo "bench_dbtool: $dbtool not built"; exit 1; }
command -v sqlite3 >/dev/null || { echo "bench_dbtool: sqlite3 not installed"; exit 1; }
work=$(mktemp -d /tmp/edb-bench-dbtool-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM

awk -v n="$rows" -v j="$work/rows.jsonl" -v c="$work/rows.csv" 'BEGIN {
    srand(1); print "id,name,qty,price,ts" > c
    for (i = 1; i <= n; i++) {
        name = sprintf("user%06d", int(rand() * 1000000)); q = int(rand() * 1000)
        p = sprintf("%.15g", int(rand() * 100000) / 100); if (p !~ /\./) p = p ".0"
        ts = sprintf("2024-%02d-%02dT%02d:%02d:%02d.000000Z", 1 + i % 12, 1 + i % 28, i % 24, i % 60, (i * 7) % 60)
        printf "{\"id\": %d, \"name\": \"%s\", \"qty\": %d, \"price\": %s, \"ts\": \"%s\"}\n", i, name, q, p, ts > j
        printf "%d,%s,%d,%s,%s\n", i, name, q, p, ts > c
    } }'
schema='{"name": "t", "columns": [{"name": "id", "type": "int64"}, {"name": "name", "type": "text"},
 {"name": "qty", "type": "int32"}, {"name": "price", "type": "double"}, {"name": "ts", "type": "datetime"}],
 "indexes": [{"name": "pk", "key": ["+id"], "flags": ["primary"]}, {"name": "by_name", "key": ["+name"]}]}'

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

: > "$work/t_di"; : > "$work/t_de"; : > "$work/t_si"; : > "$work/t_se"
for r in $(seq 1 "$reps"); do
    rm -rf "$work/db" "$work/s.db"
    "$dbtool" create "$work/db"
    echo "$schema" | "$dbtool" create-table "$work/db" -
    t0=$(now); "$dbtool" import "$work/db" t "$work/rows.jsonl"; t1=$(now)
    "$dbtool" export "$work/db" t > "$work/out.jsonl"; t2=$(now)
    cmp -s "$work/out.jsonl" "$work/rows.jsonl" || { echo "bench_dbtool: export differs from the input"; exit 1; }
    di=$(secs "$t0" "$t1"); de=$(secs "$t1" "$t2")
    sqlite3 "$work/s.db" "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, ts TEXT);
                          CREATE INDEX by_name ON t(name);"
    t0=$(now); sqlite3 "$work/s.db" ".import --csv --skip 1 $work/rows.csv t"; t1=$(now)
    sqlite3 -csv "$work/s.db" "SELECT * FROM t ORDER BY id" > "$work/out.csv"; t2=$(now)
    si=$(secs "$t0" "$t1"); se=$(secs "$t1" "$t2")
    echo "$di" >> "$work/t_di"; echo "$de" >> "$work/t_de"; echo "$si" >> "$work/t_si"; echo "$se" >> "$work/t_se"
    printf 'run %d: dbtool import %.2f s, export %.2f s | sqlite3 import %.2f s, export %.2f s\n' "$r" "$di" "$de" "$si" "$se"
done
di=$(median < "$work/t_di"); de=$(median < "$work/t_de"); si=$(median < "$work/t_si"); se=$(median < "$work/t_se")
printf 'rows %d, medians of %d: dbtool import %.2f s (%.0f rows/s), export %.2f s (%.0f rows/s); ' \
    "$rows" "$reps" "$di" "$(echo "$rows / $di" | bc)" "$de" "$(echo "$rows / $de" | bc)"
printf 'sqlite3 import %.2f s, export %.2f s; ratio dbtool/sqlite3 import %.2f, export %.2f\n' \
    "$si" "$se" "$(echo "scale=3; $di / $si" | bc)" "$(echo "scale=3; $de / $se" | bc)"
printf 'sizes: edb %s, sqlite %s\n' "$(du -sh "$work/db" | cut -f1)" "$(du -sh "$work/s.db" | cut -f1)"
