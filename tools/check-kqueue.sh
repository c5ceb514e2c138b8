#!/bin/sh
# Fetches through the kqueue build (make check-kqueue): a scripted server on
# a free loopback port, 50 URLs at -c 10, every record ok.  The fd-leak check
# is left to the epoll suite: libkqueue on Linux closes its own helper fds
# asynchronously, after the process's last kqueue is gone.
set -eu
bin=${1:-build/kqueue/volley}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
python3 tests/servers/scripted.py --port 0 > "$dir/port" &
pid=$!
i=0
while [ ! -s "$dir/port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
port=$(head -n 1 "$dir/port")
seq 1 50 | sed "s|.*|http://127.0.0.1:$port/ok?i=&|" > "$dir/urls"
timeout 30 "$bin" --json -c 10 -i "$dir/urls" > "$dir/out"
ok=$(grep -c '"ok":true' "$dir/out")
echo "kqueue build: $ok of 50 fetches ok ($("$bin" --version))"
[ "$ok" -eq 50 ]
