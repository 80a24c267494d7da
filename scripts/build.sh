#!/bin/sh
# Configure and build edb in build dir $1 (default: build) with configure args $2...
# (always with --enable-werror: CI and developers build warning-free).
# Regenerates the autotools files when configure is missing or older than its inputs.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-build}; [ $# -gt 0 ] && shift
cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
    autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
fi
mkdir -p "$dir"
cd "$dir"
if [ ! -f Makefile ] || [ "$top/configure" -nt config.status ]; then
    "$top/configure" -q --enable-werror "$@"
fi
make -j"$(nproc)" >/dev/null
