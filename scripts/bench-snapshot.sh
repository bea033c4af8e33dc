#!/usr/bin/env bash
# Benchmark of the snapshot inspector on a ≥1 GiB etcd 3.4 snapshot that this script generates.
# Prints, on the same file: `talos-dr snapshot status` time, `etcdctl snapshot status` time,
# the time to merely read the file and CRC-32C it, and peak memory.
#
#   scripts/bench-snapshot.sh            # generate, measure, delete
#   BENCH_DIR=/var/tmp/b KEEP=1 scripts/bench-snapshot.sh   # keep (and reuse) the snapshot
#   TALOS_DR_BIN=target/release/talos-dr scripts/bench-snapshot.sh  # time the full binary
# Needs etcd/etcdctl 3.4 (etcd-server, etcd-client) and GNU time (package `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
export ETCDCTL_API=3
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
TARGET_BYTES=${TARGET_BYTES:-1200000000}
RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$BENCH_DIR"
SNAP="$BENCH_DIR/big.db"
IP=127.0.12.1
EP=http://$IP:2379
ETCD_PID=
cleanup() {
  [ -n "$ETCD_PID" ] && kill -9 "$ETCD_PID" 2>/dev/null || true
  rm -rf "$BENCH_DIR/data"
  [ "${KEEP:-0}" = 1 ] || rm -rf "$BENCH_DIR"
}
trap cleanup EXIT

command -v /usr/bin/time >/dev/null || apt-get install -y time >/dev/null

echo "== build (release)"
cargo build --release -p talos-dr-snapshot --examples >/dev/null 2>&1 || cargo build --release -p talos-dr-snapshot --examples
EX="$CARGO_TARGET_DIR/release/examples"
if [ -n "${TALOS_DR_BIN:-}" ]; then OURS=("$TALOS_DR_BIN" snapshot); else OURS=("$EX/snapshot-cli"); fi

if [ ! -s "$SNAP" ]; then
  echo "== generate a snapshot of at least $TARGET_BYTES bytes with etcd $(etcd --version | head -1 | awk '{print $3}')"
  etcd --name bench --data-dir "$BENCH_DIR/data" --listen-client-urls $EP --advertise-client-urls $EP \
    --listen-peer-urls http://$IP:2380 --initial-advertise-peer-urls http://$IP:2380 \
    --initial-cluster bench=http://$IP:2380 --quota-backend-bytes 8589934592 \
    --max-txn-ops 5000 --max-request-bytes 33554432 --logger zap --log-outputs stderr \
    >"$BENCH_DIR/etcd.log" 2>&1 &
  ETCD_PID=$!
  for _ in $(seq 1 100); do etcdctl --endpoints=$EP endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
  start=$(date +%s)
  # Kubernetes-like keys, values of 1-8 KiB, 350 puts per transaction; then overwrites and
  # deletes so the file holds history and tombstones too.
  python3 - "$TARGET_BYTES" "$EP" <<'PY'
import subprocess, sys
target, ep = int(sys.argv[1]), sys.argv[2]
def txn(lines):
    data = ("\n" + "\n".join(lines) + "\n\n\n").encode()
    subprocess.run(["etcdctl", "--endpoints=" + ep, "txn"], input=data, check=True, stdout=subprocess.DEVNULL)
total, i, batch = 0, 0, []
resources = ["pods", "configmaps", "secrets", "events", "deployments", "services/specs"]
while total < target:
    size = 1024 + (i * 7919) % 7168
    key = "/registry/%s/ns-%02d/obj-%07d" % (resources[i % len(resources)], i % 40, i)
    value = ("%08d" % i) * (size // 8)
    batch.append("put %s %s" % (key, value))
    total += size + len(key)
    i += 1
    if len(batch) == 350:  # etcdctl sends at most 2 MiB per request
        txn(batch); batch = []
if batch:
    txn(batch)
for j in range(0, 20000, 1000):
    txn(["put /registry/pods/ns-%02d/obj-%07d overwritten" % (k % 40, k) for k in range(j * 6, (j + 1000) * 6, 6)])
    txn(["del /registry/events/ns-%02d/obj-%07d" % ((k + 3) % 40, k + 3) for k in range(j * 6, (j + 1000) * 6, 6)])
print("loaded %d keys, %d bytes" % (i, total))
PY
  etcdctl --endpoints=$EP snapshot save "$SNAP" >/dev/null 2>&1
  kill -9 "$ETCD_PID"; wait "$ETCD_PID" 2>/dev/null || true; ETCD_PID=
  echo "generated in $(( $(date +%s) - start )) s"
fi
SIZE=$(stat -c %s "$SNAP")
echo "snapshot: $SNAP, $SIZE bytes ($(( SIZE / 1048576 )) MiB)"
[ "$SIZE" -ge 1073741824 ] || { echo "Error: snapshot smaller than 1 GiB"; exit 1; }

# Median wall time of RUNS runs, and the largest max RSS; the page cache is warm after run 1
# for every contender alike (one untimed warm-up read first).
measure() {
  local label=$1; shift
  local times=() rss=0
  for _ in $(seq 1 "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$BENCH_DIR/time.txt" "$@" >"$BENCH_DIR/out.txt" 2>"$BENCH_DIR/err.txt" \
      || { echo "Error: $label failed: $(cat "$BENCH_DIR/err.txt")"; exit 1; }
    read -r t m <"$BENCH_DIR/time.txt"
    times+=("$t"); [ "$m" -gt "$rss" ] && rss=$m
  done
  local median
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  printf '%-34s %8s s   max RSS %7d MiB   (runs: %s)   output: %s\n' "$label" "$median" $(( rss / 1024 )) "${times[*]}" "$(head -c 80 "$BENCH_DIR/out.txt" | tr '\n' ' ')"
  eval "T_${label//[^a-zA-Z]/_}=$median"
}

cat "$SNAP" >/dev/null
echo "== timings (median of $RUNS, warm page cache)"
measure "talos-dr snapshot status" "${OURS[@]}" status "$SNAP" -w json
measure "etcdctl snapshot status" etcdctl snapshot status "$SNAP" -w json
measure "talos-dr status --etcd-3.6" "${OURS[@]}" status "$SNAP" -w json --etcd-3.6
measure "read + CRC-32C" "$EX/read-crc" "$SNAP"
echo "== memory"
"$EX/status-memory" "$SNAP"
echo "(max RSS of talos-dr includes the mapped file's resident pages; the anonymous peak above is the memory beyond the map)"
echo "== same output?"
a=$("${OURS[@]}" status "$SNAP" -w json); b=$(etcdctl snapshot status "$SNAP" -w json)
echo "talos-dr: $a"; echo "etcdctl:  $b"; [ "$a" = "$b" ] && echo "identical" || { echo "Error: outputs differ"; exit 1; }
python3 - "$T_talos_dr_snapshot_status" "$T_etcdctl_snapshot_status" "$T_read___CRC___C" <<'PY'
import sys
ours, etcd, base = (float(x) for x in sys.argv[1:])
ours = max(ours, 0.01)
print("== ratios: etcdctl / talos-dr = %.1fx (goal >= 3x); talos-dr / read+CRC = %.2fx (goal <= 2x)" % (etcd / ours, ours / max(base, 0.01)))
PY
