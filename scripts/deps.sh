#!/bin/sh
# Install what edb needs to build and test, when missing (Debian/Ubuntu, as root
# or through sudo).  Safe to run again: it installs only what is absent.
set -eu
pkgs="build-essential autoconf automake libtool pkg-config liblmdb-dev libxxhash-dev
libcriterion-dev libffi-dev libjansson-dev lmdb-utils xxhash sqlite3 libsqlite3-dev spin clang
libclang-rt-14-dev valgrind bc hyperfine fiu-utils libcurl4-openssl-dev curl
libzstd-dev zstd libsodium-dev libicu-dev"
# npm from Debian only where no npm is on PATH: a machine with another Node.js
# build (its nodejs package conflicts with Debian's npm) keeps its own.
command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
[ $# -gt 0 ] && pkgs="$pkgs $*"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ -n "$missing" ]; then
    echo "deps: installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# The S3 test server of tests/bin/s3 (tests/tools/test_s3.c): s3rver from the
# npm registry, pinned.  moto_server (Python's moto) is used when present; the
# tests that need a missing server are skipped with a message.
if ! command -v s3rver >/dev/null 2>&1; then
    echo "deps: npm install -g s3rver@3.7.1" >&2
    $sudo npm install -g --no-audit --no-fund s3rver@3.7.1 >/dev/null
fi
