#!/bin/sh
# Archive lifecycle figures (issue #15): merge against restoring the chain it
# merges, and restore from a repository after 100 incrementals with and
# without --max-chain.  A database of ROWS rows (default 200,000, about
# 45 MB) gets a full backup and 5 incrementals (2% more rows each); then
# REPS runs (default 3) interleave merge and restore of that chain (A B A B),
# both durable (fsync before rename).  Two repositories get 100 backups each
# of the same database (100 rows more before each): one with no limit (one
# chain of 100 archives), one with --max-chain 10; restores from both are
# interleaved REPS times.  Prints each run and the medians.
#
#   sh tests/bench/bench_lifecycle.sh BUILD_DIR [ROWS] [REPS]
set -eu
build=${1:-build}
rows=${2:-200000}
reps=${3:-3}
dbtool="$build/dbtool"
[ -x "$dbtool" ] || { echo "bench_lifecycle: $dbtool not built"; exit 1; }
work=$(mktemp -d /tmp/edb-bench-lifecycle-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM

gen() {  # gen FIRST COUNT: rows as JSON lines
    awk -v f="$1" -v n="$2" 'BEGIN { for (i = f; i < f + n; i++)
        printf "{\"v\": \"row %d %0180d\"}\n", i, (i * 7919) % 1000000007 }'
}
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

"$dbtool" create "$work/db" >/dev/null
echo '{"name": "t", "columns": [{"name": "id", "type": "int64", "flags": ["autoinc"]}, {"name": "v", "type": "text"}],
 "indexes": [{"name": "pk", "key": ["+id"], "flags": ["primary"]}]}' > "$work/schema.json"
"$dbtool" create-table "$work/db" "$work/schema.json"
gen 0 "$rows" | "$dbtool" import "$work/db" t - >/dev/null
"$dbtool" backup "$work/db" "$work/c0.edbk" --quiet --manifest "$work/c0.man"
chain="$work/c0.edbk"
next=$rows
for i in 1 2 3 4 5; do
    gen "$next" $((rows / 50)) | "$dbtool" import "$work/db" t - >/dev/null
    next=$((next + rows / 50))
    "$dbtool" backup "$work/db" "$work/c$i.edbk" --quiet --incremental "$work/c$((i - 1)).edbk"
    chain="$chain $work/c$i.edbk"
done
du -b "$work"/c0.edbk "$work"/c0.man "$work"/c5.edbk | awk '{ printf "%-12s %12d bytes\n", $2, $1 }' | sed "s|$work/||"

: > "$work/t_m"; : > "$work/t_r"
for r in $(seq 1 "$reps"); do
    rm -f "$work/m.edbk"; rm -rf "$work/r"
    t0=$(now); "$dbtool" merge "$work/m.edbk" $chain --quiet; t1=$(now)
    "$dbtool" restore "$work/r" $chain >/dev/null; t2=$(now)
    m=$(secs "$t0" "$t1"); s=$(secs "$t1" "$t2")
    echo "$m" >> "$work/t_m"; echo "$s" >> "$work/t_r"
    echo "run $r: merge of 6 archives $m s, restore of the same chain $s s"
done
echo "median: merge $(median < "$work/t_m") s, restore $(median < "$work/t_r") s"

for i in $(seq 1 100); do
    gen "$next" 100 | "$dbtool" import "$work/db" t - >/dev/null
    next=$((next + 100))
    "$dbtool" backup "$work/db" --repo "$work/long" --quiet
    "$dbtool" backup "$work/db" --repo "$work/short" --max-chain 10 --quiet
done
echo "repository without a limit: $(ls "$work/long" | grep -c edbk) archives; with --max-chain 10: $(ls "$work/short" | grep -c edbk)"
: > "$work/t_l"; : > "$work/t_s"
for r in $(seq 1 "$reps"); do
    rm -rf "$work/rl" "$work/rs"
    t0=$(now); "$dbtool" restore "$work/rl" --repo "$work/long" >/dev/null; t1=$(now)
    "$dbtool" restore "$work/rs" --repo "$work/short" >/dev/null; t2=$(now)
    l=$(secs "$t0" "$t1"); s=$(secs "$t1" "$t2")
    echo "$l" >> "$work/t_l"; echo "$s" >> "$work/t_s"
    echo "run $r: restore after 100 incrementals: one chain $l s, --max-chain 10 $s s"
done
echo "median: one chain of 100 $(median < "$work/t_l") s, --max-chain 10 $(median < "$work/t_s") s"
cmp "$work/rl/data.mdb" "$work/rs/data.mdb" && echo "both restores are byte for byte the same"
