#!/bin/sh
# dbtool import / export / scan / size against sqlite3 (issues #5 and #12), on
# two shapes of data, one table per shape:
#
#   packages  package-index rows (tests/bench/gen_packages.py: 17 columns, a
#             multi-valued depends, four indexes: primary (package, version),
#             unique sha256, (section, maintainer), descending installed_size);
#             PACKAGES_ROWS rows (default 63,440, as Debian bookworm's main),
#             or the real file when BENCH_PACKAGES names an uncompressed
#             Packages file (`/usr/lib/apt/apt-helper cat-file` decompresses
#             apt's lists)
#   dense     DENSE_ROWS small rows (default 300,000): id int64 primary key,
#             name text (secondary index), qty int32, price double, ts datetime
#
# dbtool reads JSON lines, sqlite3 .import the same rows as CSV into a table
# with the same indexes (WITHOUT ROWID, so that its primary key is clustered
# like edb's).  Every run times the real binary (build/.libs/dbtool, not
# libtool's wrapper) and makes the output durable on both sides: import
# commits once with fsync on both; export writes a file and fsyncs it
# (`sync FILE`) on both.  scan reads every row to /dev/null (dbtool scan,
# sqlite3 -json SELECT *).  Runs interleave dbtool and sqlite3 (A B A B ...)
# REPS times; the tables give medians and the ratio dbtool/sqlite3 of the
# medians (time: < 1 means dbtool is faster; size: < 1 means smaller), with
# the load average beside them: the machine is shared.  After the scans each
# run rewrites the imported database with full pages (dbtool compact DB, in
# place, synced): its time, import + compact against sqlite3's import, and
# the size after compaction are rows of their own.
#
#   sh tests/bench/bench_dbtool.sh BUILD_DIR [REPS]
#   make bench-dbtool [BENCH_REPS=5] [PACKAGES_ROWS=N] [DENSE_ROWS=N] [BENCH_PACKAGES=FILE]
set -eu
build=${1:-build}
reps=${2:-${BENCH_REPS:-5}}
here=$(cd "$(dirname "$0")" && pwd)
dbtool="$build/.libs/dbtool"
[ -x "$dbtool" ] || dbtool="$build/dbtool"
[ -x "$dbtool" ] || { echo "bench_dbtool: $build/.libs/dbtool not built"; exit 1; }
LD_LIBRARY_PATH="$build/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
command -v sqlite3 >/dev/null || { echo "bench_dbtool: sqlite3 not installed"; exit 1; }
command -v python3 >/dev/null || { echo "bench_dbtool: python3 not installed"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/edb-bench-dbtool-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
load() { cut -d' ' -f1 /proc/loadavg; }

# ---- the data --------------------------------------------------------------
mkdir -p "$work/packages" "$work/dense"
if [ -n "${BENCH_PACKAGES:-}" ]; then
    python3 "$here/gen_packages.py" --from "$BENCH_PACKAGES" > "$work/packages/rows.jsonl"
    python3 "$here/gen_packages.py" --from "$BENCH_PACKAGES" --csv > "$work/packages/rows.csv"
    pkg_what="real Packages file $BENCH_PACKAGES"
else
    python3 "$here/gen_packages.py" "${PACKAGES_ROWS:-63440}" > "$work/packages/rows.jsonl"
    python3 "$here/gen_packages.py" "${PACKAGES_ROWS:-63440}" --csv > "$work/packages/rows.csv"
    pkg_what="gen_packages.py ${PACKAGES_ROWS:-63440}"
fi
cp "$here/packages.schema.json" "$work/packages/schema.json"
cat > "$work/packages/schema.sql" <<'EOF'
CREATE TABLE packages(package TEXT NOT NULL, source TEXT, version TEXT NOT NULL, installed_size INTEGER,
  maintainer TEXT, architecture TEXT, depends TEXT, description TEXT, homepage TEXT, description_md5 TEXT,
  tag TEXT, section TEXT, priority TEXT, filename TEXT, size INTEGER, md5sum TEXT, sha256 TEXT NOT NULL,
  PRIMARY KEY (package, version)) WITHOUT ROWID;
CREATE UNIQUE INDEX by_sha256 ON packages(sha256);
CREATE INDEX by_section_maintainer ON packages(section, maintainer);
CREATE INDEX by_installed_size ON packages(installed_size DESC);
EOF
echo packages > "$work/packages/table"

awk -v n="${DENSE_ROWS:-300000}" -v j="$work/dense/rows.jsonl" -v c="$work/dense/rows.csv" 'BEGIN {
    srand(1); print "id,name,qty,price,ts" > c
    for (i = 1; i <= n; i++) {
        name = sprintf("user%06d", int(rand() * 1000000)); q = int(rand() * 1000)
        p = sprintf("%.15g", int(rand() * 100000) / 100); if (p !~ /\./) p = p ".0"
        ts = sprintf("2024-%02d-%02dT%02d:%02d:%02d.000000Z", 1 + i % 12, 1 + i % 28, i % 24, i % 60, (i * 7) % 60)
        printf "{\"id\": %d, \"name\": \"%s\", \"qty\": %d, \"price\": %s, \"ts\": \"%s\"}\n", i, name, q, p, ts > j
        printf "%d,%s,%d,%s,%s\n", i, name, q, p, ts > c
    } }'
cat > "$work/dense/schema.json" <<'EOF'
{"name": "t", "columns": [{"name": "id", "type": "int64"}, {"name": "name", "type": "text"},
 {"name": "qty", "type": "int32"}, {"name": "price", "type": "double"}, {"name": "ts", "type": "datetime"}],
 "indexes": [{"name": "pk", "key": ["+id"], "flags": ["primary"]}, {"name": "by_name", "key": ["+name"]}]}
EOF
cat > "$work/dense/schema.sql" <<'EOF'
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, ts TEXT);
CREATE INDEX by_name ON t(name);
EOF
echo t > "$work/dense/table"

# ---- the runs --------------------------------------------------------------
for shape in packages dense; do
    d="$work/$shape"
    t=$(cat "$d/table")
    rows=$(wc -l < "$d/rows.jsonl")
    for m in di si de se ds ss dc; do : > "$d/t_$m"; done
    for r in $(seq 1 "$reps"); do
        rm -rf "$d/db" "$d/s.db"
        "$dbtool" create "$d/db"
        "$dbtool" create-table "$d/db" "$d/schema.json"
        sqlite3 "$d/s.db" < "$d/schema.sql"
        l0=$(load)
        t0=$(now); "$dbtool" import "$d/db" "$t" "$d/rows.jsonl"; t1=$(now)
        sqlite3 "$d/s.db" ".import --csv --skip 1 $d/rows.csv $t"; t2=$(now)
        "$dbtool" export "$d/db" "$t" > "$d/out.jsonl"; sync "$d/out.jsonl"; t3=$(now)
        sqlite3 -json "$d/s.db" "SELECT * FROM $t" > "$d/out.json"; sync "$d/out.json"; t4=$(now)
        "$dbtool" scan "$d/db" "$t" > /dev/null; t5=$(now)
        sqlite3 -json "$d/s.db" "SELECT * FROM $t" > /dev/null; t6=$(now)
        eb=$(stat -c %s "$d/db/data.mdb")
        "$dbtool" compact "$d/db" > /dev/null; t7=$(now)
        ec=$(stat -c %s "$d/db/data.mdb")
        secs "$t6" "$t7" >> "$d/t_dc"
        secs "$t0" "$t1" >> "$d/t_di"; secs "$t1" "$t2" >> "$d/t_si"
        secs "$t2" "$t3" >> "$d/t_de"; secs "$t3" "$t4" >> "$d/t_se"
        secs "$t4" "$t5" >> "$d/t_ds"; secs "$t5" "$t6" >> "$d/t_ss"
        printf '%s run %d (load %s): import %.2f / %.2f s, export %.2f / %.2f s, scan %.2f / %.2f s (dbtool / sqlite3), compact %.2f s\n' \
            "$shape" "$r" "$l0" "$(tail -1 "$d/t_di")" "$(tail -1 "$d/t_si")" "$(tail -1 "$d/t_de")" \
            "$(tail -1 "$d/t_se")" "$(tail -1 "$d/t_ds")" "$(tail -1 "$d/t_ss")" "$(tail -1 "$d/t_dc")"
    done
    sb=$(stat -c %s "$d/s.db")
    {
        echo
        if [ "$shape" = packages ]; then
            echo "### $shape: $rows rows ($pkg_what), medians of $reps interleaved runs, load $(load) at the end"
        else
            echo "### $shape: $rows rows, medians of $reps interleaved runs, load $(load) at the end"
        fi
        echo
        echo "| | dbtool | sqlite3 | dbtool / sqlite3 |"
        echo "|---|---:|---:|---:|"
        for m in i e s; do
            a=$(median < "$d/t_d$m"); b=$(median < "$d/t_s$m")
            case $m in i) w="import (s)" ;; e) w="export, durable (s)" ;; s) w="scan to /dev/null (s)" ;; esac
            printf '| %s | %.2f | %.2f | %.2f |\n' "$w" "$a" "$b" "$(echo "scale=3; $a / $b" | bc)"
        done
        a=$(median < "$d/t_dc"); i=$(median < "$d/t_di"); b=$(median < "$d/t_si")
        printf '| compact DB, in place (s) | %.2f | | |\n' "$a"
        printf '| import + compact (s) | %.2f | %.2f | %.2f |\n' "$(echo "$i + $a" | bc)" "$b" \
            "$(echo "scale=3; ($i + $a) / $b" | bc)"
        printf '| size as imported (MB) | %.1f | %.1f | %.2f |\n' "$(echo "scale=2; $eb / 1000000" | bc)" \
            "$(echo "scale=2; $sb / 1000000" | bc)" "$(echo "scale=3; $eb / $sb" | bc)"
        printf '| size after compact (MB) | %.1f | %.1f | %.2f |\n' "$(echo "scale=2; $ec / 1000000" | bc)" \
            "$(echo "scale=2; $sb / 1000000" | bc)" "$(echo "scale=3; $ec / $sb" | bc)"
    } > "$d/table.md"
done
cat "$work/packages/table.md" "$work/dense/table.md"
