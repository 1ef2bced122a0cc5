#!/usr/bin/env bash
# Throughput of the same api.wasm on the embedded store under our host
# (`edge-items serve`) and under `spin up` (spin.toml, Spin's SQLite),
# measured with wrk on loopback, in alternating rounds so that both see the
# same machine noise. Reports requests/s per round and the ratio of Spin to
# our host (the baseline) per round. See BENCHMARKS.md.
#
# Needs: `cargo xtask build` done, wrk (Debian package `wrk`), spin on PATH
# or in SPIN_BIN. Usage: benches/runtimes.sh [ROUNDS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
seconds=${2:-5}
spin=${SPIN_BIN:-spin}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -INT -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  sleep 1
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

host_port=$(free_port)
setsid target/release/edge-items serve --listen "127.0.0.1:$host_port" --data "$tmp/host/items.db" \
  >"$tmp/host.out" 2>"$tmp/host.log" &
pids+=($!)
spin_port=$(free_port)
setsid "$spin" up -f spin.toml --listen "127.0.0.1:$spin_port" --state-dir "$tmp/spin" \
  >"$tmp/spin.out" 2>&1 &
pids+=($!)
wait_port "$host_port"
wait_port "$spin_port"

for port in "$host_port" "$spin_port"; do
  curl -sf "127.0.0.1:$port/items" -H 'content-type: application/json' \
    -d '{"id": "bench", "name": "My Item", "likes": 0, "userId": "u1", "status": "active"}' >/dev/null
done

rps() { wrk -t2 -c16 -d"${seconds}s" "http://127.0.0.1:$1$2" | awk '/Requests\/sec/ {print $2}'; }

printf '%-28s %6s %12s %12s %8s\n' request round host_rps spin_rps ratio
for path in /items/bench "/items?userId=u1" /healthz; do
  for round in $(seq 1 "$rounds"); do
    h=$(rps "$host_port" "$path")
    s=$(rps "$spin_port" "$path")
    printf '%-28s %6s %12s %12s %8.2f\n' "GET $path" "$round" "$h" "$s" "$(echo "$s / $h" | bc -l)"
  done
done
