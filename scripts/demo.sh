#!/bin/sh
# Build edb and run the demo on a fresh database directory.
#   sh scripts/demo.sh [OUT_DIR]      (default: ./demo-out, recreated)
# Each part is a function so later parts (backup, restore) slot in below.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$top/demo-out"}

step() { printf '\n== %s\n' "$*"; }

build() {
    step "installing dependencies and building"
    sh "$top/scripts/deps.sh"
    sh "$top/scripts/build.sh" build
}

engine_demo() {
    step "engine: tables, indexes, seeks, ranges, updates"
    "$top/build/examples/demo" "$out/db"
}

backup_demo() {
    db="$out/db"
    dbtool="$top/build/dbtool"
    step "backup: a writer in another process inserts orders while we back up"
    # The writer: dbtool import of 50 new orders at a time, until told to stop.
    : > "$out/writer.log"
    (
        n=0
        while [ ! -f "$out/stop-writer" ]; do
            i=0
            while [ $i -lt 50 ]; do
                echo "{\"customer\": $(( (n * 50 + i) % 1000 + 1 )), \"amount\": 9.99}"
                i=$((i + 1))
            done | "$dbtool" import "$db" orders - >>"$out/writer.log" 2>&1 || exit 1
            n=$((n + 1))
        done
        echo "$n" > "$out/writer-batches"
    ) &
    writer=$!
    sleep 0.3
    echo "orders before the backup: $("$dbtool" count "$db" orders)"
    # Slowed to 1 MB/s so that the writer's commits interleave with the copy.
    "$dbtool" backup "$db" "$out/full.edbk" --rate-limit 1000000 --quiet
    echo "backup written: $(ls -l "$out/full.edbk" | awk '{print $1, $5}') bytes; orders now: $("$dbtool" count "$db" orders)"

    step "abort: a second backup is interrupted half way (SIGINT after 0.5 s)"
    rc=0
    timeout --preserve-status -s INT 0.5 "$dbtool" backup "$db" "$out/aborted.edbk" --rate-limit 1000000 --quiet || rc=$?
    echo "dbtool backup exited with status $rc; files left: $(ls "$out" | grep -c edbk) archive(s):" $(ls "$out" | grep edbk)
    [ ! -e "$out/aborted.edbk" ] || { echo "demo: an aborted backup left a file" >&2; exit 1; }

    touch "$out/stop-writer"
    wait "$writer" || { cat "$out/writer.log" >&2; echo "demo: the writer failed" >&2; exit 1; }
    echo "writer stopped after $(cat "$out/writer-batches") batches; orders in the live database: $("$dbtool" count "$db" orders)"

    step "verify and restore the first backup"
    "$dbtool" verify "$out/full.edbk"
    "$dbtool" restore "$out/restored" "$out/full.edbk"
    "$dbtool" check "$out/restored"
    echo "orders in the restored snapshot: $("$dbtool" count "$out/restored" orders) (the snapshot is a moment during the writes)"
    step "restored rows: the 5 most recent orders"
    "$dbtool" scan "$out/restored" orders --reverse --limit 5
}

cd "$top"
rm -rf "$out"
mkdir -p "$out"
build
engine_demo
backup_demo
step "done: database left in $out/db"
