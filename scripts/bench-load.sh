#!/usr/bin/env bash
# Load benchmark of the console: the real console on loopback with an in-process fake Talos
# cluster, 500 concurrent viewers reading the health JSON and 500 open health streams. Prints
# the JSON latency (p50/p99) and how long one health change takes to reach every stream, then
# stops by itself (at most 2 minutes). Goals: p99 < 20 ms, every stream updated within 1 s.
#
#   scripts/bench-load.sh                                   # 500 viewers, 500 streams
#   scripts/bench-load.sh --viewers 200 --streams 1000 --requests 50
set -euo pipefail
cd "$(dirname "$0")/.."
# 500 streams and 500 readers hold about 2000 sockets (both ends are in this process).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release -p talos-dr --example load
exec "${CARGO_TARGET_DIR:-$PWD/target}/release/examples/load" "$@"
