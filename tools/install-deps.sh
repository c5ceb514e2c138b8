#!/bin/sh
# Installs, idempotently, the Debian packages volley builds and tests with.
# As root it runs apt-get; otherwise it prints the exact command to run.
set -eu
BUILD_PKGS="make gcc libc6-dev pkg-config libmbedtls-dev node-llhttp libc-ares-dev zlib1g-dev
    libbrotli-dev libzstd-dev liburiparser-dev libidn2-dev python3 ca-certificates"
# python3 runs the demo (tools/demo.py) and the test runner; ca-certificates is
# the system CA bundle volley verifies https against by default.  libunistring-dev:
# static linking through pkg-config (libidn2.pc's Libs.private has -lunistring).
TEST_PKGS="nginx libcmocka-dev openssl python3 valgrind libuv1-dev libglib2.0-dev libunistring-dev"
pkgs="$BUILD_PKGS"
[ "${1:-}" = "--build-only" ] || pkgs="$pkgs $TEST_PKGS"
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
