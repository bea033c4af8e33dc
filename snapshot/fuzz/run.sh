#!/usr/bin/env bash
# Fuzzes the snapshot reader for SECONDS (default 60): snapshot/fuzz/run.sh 3600 for a long run.
# Works on a stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags, and stable
# Rust ships the AddressSanitizer runtime for x86_64 Linux.
set -euo pipefail
SECONDS_TO_RUN=${1:-60}
cd "$(dirname "$0")"
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked || cargo install cargo-fuzz
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"

CORPUS=corpus/reader
mkdir -p "$CORPUS"
# Seed with real etcd snapshots when the corpus is empty and etcd is installed.
if [ -z "$(ls -A "$CORPUS")" ] && command -v etcd >/dev/null; then
  LAB=$(mktemp -d)
  etcd --name seed --data-dir "$LAB/d" --listen-client-urls http://127.0.13.1:2379 \
    --advertise-client-urls http://127.0.13.1:2379 --listen-peer-urls http://127.0.13.1:2380 \
    --initial-advertise-peer-urls http://127.0.13.1:2380 --initial-cluster seed=http://127.0.13.1:2380 \
    --logger zap --log-outputs stderr >"$LAB/etcd.log" 2>&1 &
  ETCD_PID=$!
  trap 'kill -9 $ETCD_PID 2>/dev/null || true; rm -rf "$LAB"' EXIT
  E="etcdctl --endpoints=http://127.0.13.1:2379"
  for _ in $(seq 1 100); do $E endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
  ETCDCTL_API=3 $E snapshot save "$CORPUS/empty.db" >/dev/null 2>&1
  for i in $(seq 1 40); do echo "put /registry/pods/default/p$i v$i"; done | { echo; cat; echo; echo; } | $E txn >/dev/null
  $E del /registry/pods/default/p1 >/dev/null
  ETCDCTL_API=3 $E snapshot save "$CORPUS/small.db" >/dev/null 2>&1
  kill -9 $ETCD_PID 2>/dev/null || true
fi

SAN=address
# Fall back to an uninstrumented-memory build if the sanitizer runtime is missing.
if ! ls "$(rustc --print sysroot)"/lib/rustlib/*/lib/ 2>/dev/null | grep -q asan; then SAN=none; fi
cargo fuzz run reader -s "$SAN" "$CORPUS" -- \
  -max_total_time="$SECONDS_TO_RUN" -max_len=262144 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
