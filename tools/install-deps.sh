#!/bin/sh
# Installs, idempotently, the Debian packages volley builds and tests with.
# As root it runs apt-get; otherwise it prints the exact command to run.
set -eu
BUILD_PKGS="make gcc libc6-dev pkg-config libmbedtls-dev node-llhttp libc-ares-dev zlib1g-dev
    libbrotli-dev libzstd-dev libidn2-dev libunistring-dev libjansson-dev python3 ca-certificates"
# python3 runs the demo (tools/demo.py) and the test runner; ca-certificates is
# the system CA bundle volley verifies https against by default.  libunistring-dev:
# static linking through pkg-config (libidn2.pc's Libs.private has -lunistring).
# libjansson-dev: the volley command's JSON reading (--input-format json, --resume).
TEST_PKGS="nginx libcmocka-dev openssl python3 valgrind libuv1-dev libglib2.0-dev
    apache2 lighttpd lighttpd-mod-deflate h2o nodejs"
# apache2, lighttpd (+ its mod_deflate), h2o and nodejs: the interop tests' servers.
TEST_PKGS="$TEST_PKGS python3-distributed libnginx-mod-http-echo"
# python3-distributed: tools/dask/volley-dask and tests/integration/test_dask.py
# (Dask under /usr/bin/python3); libnginx-mod-http-echo: that test's delaying nginx.
FUZZ_PKGS="clang-14 libclang-rt-14-dev"
# clang-14 and its runtimes (libFuzzer, ASan, UBSan): make fuzz.
pkgs="$BUILD_PKGS"
case "${1:-}" in
--build-only) ;;
--fuzz) pkgs="$pkgs $FUZZ_PKGS" ;;
*) pkgs="$pkgs $TEST_PKGS" ;;
esac
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "volley: missing packages:$missing" >&2
    echo "run: sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
