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

cd "$top"
rm -rf "$out"
mkdir -p "$out"
build
engine_demo
# more demo parts go here (e.g. backup_demo), each a function like engine_demo
step "done: database left in $out/db"
