#!/usr/bin/env bash
# Benchmark of taking a snapshot of at least 1 GiB through talos-dr (Talos EtcdSnapshot, ingest,
# inspection, store) against `etcdctl snapshot save` on the same etcd. Prints both times, the
# throughputs and their ratio, and the console's memory growth during each take.
# Goal: talos-dr at least 90% of etcdctl's throughput, memory growth under 64 MiB.
#
#   scripts/bench-snapshot-take.sh                 # build, load, measure, clean up
#   RUNS=5 TARGET_BYTES=1500000000 scripts/bench-snapshot-take.sh
#   BENCH_DIR=/var/tmp/take KEEP=1 scripts/bench-snapshot-take.sh   # keep the generated data
#   BENCH_DIR=/var/tmp/take KEEP=1 REUSE=1 scripts/bench-snapshot-take.sh  # measure it again
#   BENCH_BIN_DIR=/var/tmp/bins scripts/bench-snapshot-take.sh  # these binaries, no build
# Needs etcd/etcdctl 3.4, curl, python3 and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
export ETCDCTL_API=3
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
TARGET_BYTES=${TARGET_BYTES:-1200000000}
RUNS=${RUNS:-3}
BATCH=${BATCH:-120}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /var/tmp/bench-take.XXXXXX)}
mkdir -p "$BENCH_DIR"
IP=127.0.60.1
EP=http://$IP:2379
LISTEN=127.0.60.100:8499
ORIGIN=http://$LISTEN
STATE="$BENCH_DIR/state"
DATA="$BENCH_DIR/console-data"
JAR="$BENCH_DIR/cookies"

source scripts/lib/stack.sh
BIN_DIR="${BENCH_BIN_DIR:-$CARGO_TARGET_DIR/release}"
SAMPLER_PID=
cleanup() {
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
  stop_stack
  rm -f "$BENCH_DIR/etcdctl.db" "$BENCH_DIR/etcdctl.db.part"
  rm -rf "$DATA/snapshots" "$DATA/snapshot-staging"
  [ "${KEEP:-0}" = 1 ] || rm -rf "$BENCH_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${BENCH_BIN_DIR:-}" ]; then
  echo "== build (release)"
  cargo build --release -p talos-dr -p talos-emulator --bins >/dev/null 2>&1 \
    || cargo build --release -p talos-dr -p talos-emulator --bins
fi
# REUSE=1 restarts etcd on the data a KEEP=1 run loaded into the same BENCH_DIR.
LOADED="$BENCH_DIR/loaded"
[ "${REUSE:-0}" = 1 ] && [ -f "$LOADED" ] || REUSE=0

echo "== start a 1-node emulated cluster on $IP"
if [ "$REUSE" = 1 ]; then
  rm -rf "$STATE/ready" "$DATA"
else
  rm -rf "$STATE" "$DATA" "$LOADED"; mkdir -p "$STATE"
fi
"$BIN_DIR"/talos-emulator up --nodes 1 --state-dir "$STATE" --base-ip "$IP" --seed-keys 0 \
  --etcd-quota-bytes 8589934592 >"$STATE/emulator.log" 2>&1 &
STACK_PIDS+=($!)
for _ in $(seq 1 240); do
  [ -f "$STATE/ready" ] && break
  kill -0 "${STACK_PIDS[-1]}" 2>/dev/null || { echo "Error: the emulator exited:"; cat "$STATE/emulator.log"; exit 1; }
  sleep 0.5
done
[ -f "$STATE/ready" ] || { echo "Error: the emulator did not become ready"; cat "$STATE/emulator.log"; exit 1; }

if [ "$REUSE" = 1 ]; then
  echo "== reusing the data loaded earlier in $STATE"
else
echo "== load at least $TARGET_BYTES bytes of Kubernetes-like data ($BATCH puts per txn)"
start=$(date +%s)
# Values of 1-8 KiB; $BATCH puts per txn stays under etcd's defaults: --max-txn-ops 128 and
# --max-request-bytes 1.5 MiB. A few etcdctl processes at once keep etcd busy while one is starting.
python3 - "$TARGET_BYTES" "$EP" "$BATCH" <<'PY'
import subprocess, sys
from concurrent.futures import ThreadPoolExecutor
target, ep, batch_size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def txn(lines):
    data = ("\n" + "\n".join(lines) + "\n\n\n").encode()
    r = subprocess.run(["etcdctl", "--endpoints=" + ep, "txn"], input=data, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit("etcdctl txn failed: " + r.stderr.decode()[-400:])
def batches():
    total, i, batch = 0, 0, []
    resources = ["pods", "configmaps", "secrets", "events", "deployments", "services/specs"]
    while total < target:
        size = 1024 + (i * 7919) % 7168
        key = "/registry/%s/ns-%02d/obj-%07d" % (resources[i % len(resources)], i % 40, i)
        batch.append("put %s %s" % (key, ("%08d" % i) * (size // 8)))
        total += size + len(key)
        i += 1
        if len(batch) == batch_size:
            yield batch; batch = []
    if batch:
        yield batch
    print("loaded %d keys, %d bytes" % (i, total))
from collections import deque
with ThreadPoolExecutor(3) as pool:
    in_flight = deque()
    for b in batches():
        in_flight.append(pool.submit(txn, b))
        if len(in_flight) >= 6:
            in_flight.popleft().result()
    for f in in_flight:
        f.result()
PY
echo "loaded in $(( $(date +%s) - start )) s"
touch "$LOADED"
fi
etcdctl --endpoints=$EP endpoint status -w table

echo "== start the console on $LISTEN"
create_users "$DATA" "$BENCH_DIR/logins.txt" bench:operator
start_console "$LISTEN" "$STATE/talosconfig" emulated-admin "$BENCH_DIR/console.log" "$DATA"
CONSOLE_PID=${STACK_PIDS[-1]}
EMULATOR_PID=${STACK_PIDS[0]}
ETCD_PID=$(pgrep -f -- "--data-dir $STATE/" | head -1 || true)
PASSWORD=$(login_password "$BENCH_DIR/logins.txt" bench)
curl -sS -f -c "$JAR" -H "Origin: $ORIGIN" -H 'Content-Type: application/json' \
  -d "{\"username\":\"bench\",\"password\":\"$PASSWORD\"}" "$ORIGIN/api/session" >"$BENCH_DIR/session.json"
CSRF=$(python3 -c '
import json, sys
def find(v):
    if isinstance(v, dict):
        if "csrf_token" in v: return v["csrf_token"]
        v = list(v.values())
    if isinstance(v, list):
        for x in v:
            r = find(x)
            if r: return r
print(find(json.load(open(sys.argv[1]))) or "")' "$BENCH_DIR/session.json")
[ -n "$CSRF" ] || { echo "Error: no csrf_token in the sign-in answer: $(cat "$BENCH_DIR/session.json")"; exit 1; }

status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# Samples, every 100 ms, the console's anonymous and file-backed RSS (peaks) and the size of the
# file the EtcdSnapshot stream is written to, to tell when the stream ended and only the
# inspection and the move into the store were left; prints "ANON FILE STREAM_END" when killed.
sample_take() {
  local anon=0 file=0 a f size last=-1 stream_end=0
  trap 'echo "$anon $file $stream_end"; exit 0' TERM
  while :; do
    a=$(status_kib "$CONSOLE_PID" RssAnon); f=$(status_kib "$CONSOLE_PID" RssFile)
    [ "${a:-0}" -gt "$anon" ] && anon=$a
    [ "${f:-0}" -gt "$file" ] && file=$f
    size=$(find "$DATA/snapshots/.incoming" -type f -printf '%s\n' 2>/dev/null | sort -n | tail -1 || true)
    if [ -n "$size" ] && [ "$size" != "$last" ]; then last=$size; stream_end=$(date +%s.%N); fi
    sleep 0.1
  done
}
now() { date +%s.%N; }
# CPU seconds (user + system) a process has used so far: steadier than wall time on a shared
# machine, and it tells which process the time goes to.
TICK=$(getconf CLK_TCK)
cpu_s() { awk -v t="$TICK" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }

echo "== measure: $RUNS runs each, alternating, on $EP"
RESULTS="$BENCH_DIR/results.txt"; : >"$RESULTS"
RSS_FIRST=$(status_kib "$CONSOLE_PID" VmRSS)
for run in $(seq 1 "$RUNS"); do
  sync; rm -f "$BENCH_DIR/etcdctl.db"
  read -r load1 _ </proc/loadavg
  c0=$(cpu_s "$ETCD_PID")
  t0=$(now)
  /usr/bin/time -f "%U %S" -o "$BENCH_DIR/etcdctl.cpu" \
    etcdctl --endpoints=$EP snapshot save "$BENCH_DIR/etcdctl.db" >"$BENCH_DIR/etcdctl.out" 2>&1 \
    || { echo "Error: etcdctl snapshot save failed:"; cat "$BENCH_DIR/etcdctl.out"; exit 1; }
  t1=$(now)
  e_etcd=$(python3 -c "print('%.2f' % ($(cpu_s "$ETCD_PID") - $c0))")
  e_ctl=$(awk '{ printf "%.2f", $1 + $2 }' "$BENCH_DIR/etcdctl.cpu")
  e_size=$(stat -c %s "$BENCH_DIR/etcdctl.db")
  rm -f "$BENCH_DIR/etcdctl.db"
  [ "$e_size" -ge 1073741824 ] || { echo "Error: the snapshot is $e_size bytes, less than 1 GiB"; exit 1; }

  sync
  # Peak RSS per take: 5 > clear_refs resets VmHWM to the current RSS.
  echo 5 >"/proc/$CONSOLE_PID/clear_refs" 2>/dev/null || true
  rss_before=$(status_kib "$CONSOLE_PID" VmRSS); anon_before=$(status_kib "$CONSOLE_PID" RssAnon)
  sample_take >"$BENCH_DIR/sampler.txt" & SAMPLER_PID=$!
  c_etcd=$(cpu_s "$ETCD_PID"); c_emu=$(cpu_s "$EMULATOR_PID"); c_con=$(cpu_s "$CONSOLE_PID")
  t2=$(now)
  code=$(curl -sS -b "$JAR" -o "$BENCH_DIR/take.json" -w '%{http_code}' -H "Origin: $ORIGIN" \
    -H "X-CSRF-Token: $CSRF" -H 'Content-Type: application/json' -d "{\"node\":\"$IP\"}" \
    "$ORIGIN/api/clusters/emulated/snapshots")
  t3=$(now)
  t_cpu=$(python3 -c "print('%.2f %.2f %.2f' % ($(cpu_s "$ETCD_PID") - $c_etcd, $(cpu_s "$EMULATOR_PID") - $c_emu, $(cpu_s "$CONSOLE_PID") - $c_con))")
  kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=
  read -r anon_peak file_peak stream_end <"$BENCH_DIR/sampler.txt" || true
  hwm=$(status_kib "$CONSOLE_PID" VmHWM); rss_after=$(status_kib "$CONSOLE_PID" VmRSS)
  [ "$code" = 201 ] || { echo "Error: the take answered $code: $(head -c 600 "$BENCH_DIR/take.json")"; exit 1; }
  t_size=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d=d.get("snapshot", d); print(d.get("size") or 0)' "$BENCH_DIR/take.json")
  # The stored copy is not needed and would fill the disk over several runs.
  rm -rf "$DATA/snapshots"/*
  echo "$run $e_size $t0 $t1 $t_size $t2 $t3 $rss_before $hwm $rss_after ${anon_peak:-0} ${file_peak:-0} $anon_before ${stream_end:-0} $e_etcd $e_ctl $t_cpu $load1" >>"$RESULTS"
  echo "run $run: etcdctl $(python3 -c "print('%.2f' % ($t1 - $t0))") s, talos-dr $(python3 -c "print('%.2f' % ($t3 - $t2))") s"
done
echo "console RSS before the first take: $(( RSS_FIRST / 1024 )) MiB; after the last: $(( $(status_kib "$CONSOLE_PID" VmRSS) / 1024 )) MiB"

python3 - "$RESULTS" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
MB, MiB = 1e6, 1024.0
print()
print("%-4s %11s %9s %7s %11s %9s %7s %6s %9s %8s %10s %10s" % (
    "run", "size (B)", "etcdctl", "MB/s", "talos-dr B", "talos-dr", "MB/s", "ratio",
    "stream", "after", "HWM-RSS", "anon grow"))
ratios, growth, anon_growth = [], [], []
for r in rows:
    run, e_size = r[0], int(r[1])
    t0, t1 = float(r[2]), float(r[3])
    t_size, t2, t3 = int(r[4]), float(r[5]), float(r[6])
    rss_before, hwm = int(r[7]), int(r[8])
    anon_peak, anon_before, stream_end = int(r[10]), int(r[12]), float(r[13])
    e_mbs, t_mbs = e_size / MB / (t1 - t0), t_size / MB / (t3 - t2)
    ratio = t_mbs / e_mbs
    g, ag = (hwm - rss_before) / MiB, (anon_peak - anon_before) / MiB
    ratios.append(ratio); growth.append(g); anon_growth.append(ag)
    stream = "%8.1fs" % (stream_end - t2) if stream_end else "%9s" % "?"
    after = "%7.1fs" % (t3 - stream_end) if stream_end else "%8s" % "?"
    print("%-4s %11d %8.2fs %7.1f %11d %8.2fs %7.1f %5.0f%% %s %s %6.0f MiB %6.1f MiB" % (
        run, e_size, t1 - t0, e_mbs, t_size, t3 - t2, t_mbs, ratio * 100, stream, after, g, ag))
print()
print("CPU seconds per take (and the 1-minute load average when the run started):")
for r in rows:
    e_etcd, e_ctl, t_etcd, t_emu, t_con, load = (float(x) for x in r[14:20])
    print("run %-4s etcd %5.2f + etcdctl %5.2f   etcd %5.2f + emulator %5.2f + console %5.2f"
          "   load %.1f" % (r[0], e_etcd, e_ctl, t_etcd, t_emu, t_con, load))
ratios.sort()
print()
print("median throughput ratio talos-dr / etcdctl: %.0f%% (goal >= 90%%)" % (ratios[len(ratios) // 2] * 100))
print("largest peak RSS growth, VmHWM - VmRSS before the take: %.0f MiB (includes the snapshot file's"
      % max(growth))
print("  mapped pages the inspector touches); largest anonymous growth (RssAnon peak, sampled every")
print("  100 ms, minus RssAnon before): %.1f MiB (goal < 64 MiB)" % max(anon_growth))
print("stream: POST until the received file stopped growing; after: inspection and storing.")
PY
