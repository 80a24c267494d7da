#!/bin/sh
# Install what edb needs to build and test, when missing (Debian/Ubuntu, as root
# or through sudo).  Safe to run again: it installs only what is absent.
set -eu
pkgs="build-essential autoconf automake libtool pkg-config liblmdb-dev libxxhash-dev
libcriterion-dev libffi-dev libjansson-dev lmdb-utils xxhash sqlite3 libsqlite3-dev spin clang
libclang-rt-14-dev valgrind bc hyperfine fiu-utils libzstd-dev zstd libsodium-dev"
[ $# -gt 0 ] && pkgs="$pkgs $*"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
