#!/usr/bin/env bash
# examples/kv/kv-demo.sh - `make kv-demo`: runs the three kv programs against a temporary
# redis-server (loopback, a free port, no persistence, a temporary directory), then
# stops it. Usage: kv-demo.sh BINDIR (where kv, kv_load and kv_aio were built).
set -euo pipefail

bin=${1:-build/examples}
if ! command -v redis-server >/dev/null 2>&1; then
  echo "kv-demo: redis-server is not installed (make deps, or apt-get install redis-server)"
  exit 1
fi
dir=$(mktemp -d /tmp/kv-demo-XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

# A free port: try random ones until redis-server starts and answers PING.
for try in 1 2 3 4 5 6 7 8 9 10; do
  port=$((20000 + RANDOM % 20000))
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --daemonize no --logfile "$dir/redis.log" &
  pid=$!
  for _ in $(seq 50); do
    if "$bin/kv" -p "$port" -t 200 get kv:demo:ping >/dev/null 2>&1; then break 2; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
done
if [ -z "$pid" ]; then
  echo "kv-demo: could not start redis-server"
  exit 1
fi
echo "== redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$port (pid $pid, dir $dir)"

run() { echo "\$ $*"; "$@"; }
kv="$bin/kv -p $port"

echo
echo "== $bin/kv: blocking calls, one per command"
run $kv set greeting "hello, world"
run $kv get greeting
run $kv get no-such-key
run $kv incr visits
run $kv incr visits
run $kv set user:1 ada
run $kv set user:2 grace
run $kv mget user:1 user:2 user:3
echo "\$ $kv scan 'user:*' | sort"
$kv scan 'user:*' | sort
echo "\$ $kv incr greeting    # a server error reply: exit status 1"
if $kv incr greeting; then echo "kv-demo: expected a failure"; exit 1; fi
run $kv del user:1 user:2 user:3

echo
echo "== $bin/kv_load: 100 000 SETs as futures, one wait_all"
run "$bin/kv_load" -p "$port"
echo "\$ $bin/kv_load -p $port --cq       # the same through a completion queue"
"$bin/kv_load" -p "$port" --cq

echo
echo "== $bin/kv_aio: callbacks on the main thread's libuv loop"
run "$bin/kv_aio" -p "$port"

echo
echo "== stopping redis-server"
