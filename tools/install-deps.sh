#!/bin/sh
# Installs, idempotently, the Debian packages volley builds and tests with.
# As root it runs apt-get; otherwise it prints the exact command to run.
set -eu
BUILD_PKGS="make gcc libc6-dev pkg-config libmbedtls-dev node-llhttp libc-ares-dev zlib1g-dev
    libbrotli-dev libzstd-dev libidn2-dev libunistring-dev libjansson-dev nettle-dev python3 ca-certificates
    libnghttp2-dev libuchardet-dev"
# python3 runs the demo (tools/demo.py) and the test runner; ca-certificates is
# the system CA bundle volley verifies https against by default.  libunistring-dev:
# static linking through pkg-config (libidn2.pc's Libs.private has -lunistring).
# libjansson-dev: the volley command's JSON reading (--input-format json, --resume).
# nettle-dev: SHA-1 for --warc's digests (uses the CPU's SHA instructions).
# libuchardet-dev: --body's charset guess for text that names none.
TEST_PKGS="nginx libcmocka-dev openssl python3 valgrind libuv1-dev libglib2.0-dev
    apache2 lighttpd lighttpd-mod-deflate h2o nodejs nghttp2-server"
# apache2, lighttpd (+ its mod_deflate), h2o and nodejs: the interop tests' servers.
# npm: installs warcio.js into build/node, the independent reader of --warc's files.
# Only when no npm is on PATH: NodeSource's nodejs bundles its own npm and
# conflicts with Debian's npm package.
command -v npm >/dev/null 2>&1 || TEST_PKGS="$TEST_PKGS npm"
TEST_PKGS="$TEST_PKGS squid tinyproxy dante-server microsocks apache2-utils"
# squid, tinyproxy, dante-server (danted), microsocks: the proxies of
# tests/integration/test_proxy.py; apache2-utils: htpasswd for squid's basic auth.
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
