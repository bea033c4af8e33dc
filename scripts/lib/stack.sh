# Helpers to start an emulated Talos cluster and the console, shared by the demo and the browser
# tests. Sourced, not run. Every process started here is stopped by stop_stack (trap it).

STACK_PIDS=()

# start_emulator STATE_DIR BASE_IP NODES: starts the emulator and waits until its cluster is healthy.
start_emulator() {
  local state="$1" base_ip="$2" nodes="$3"
  rm -rf "$state"; mkdir -p "$state"
  ./target/debug/talos-emulator up --nodes "$nodes" --state-dir "$state" --base-ip "$base_ip" \
    >"$state/emulator.log" 2>&1 &
  STACK_PIDS+=($!)
  local i
  for i in $(seq 1 240); do
    [ -f "$state/ready" ] && return 0
    if ! kill -0 "${STACK_PIDS[-1]}" 2>/dev/null; then
      echo "the emulator exited; its log:" >&2; cat "$state/emulator.log" >&2; return 1
    fi
    sleep 0.5
  done
  echo "the emulator did not become ready in 120 s; its log:" >&2; cat "$state/emulator.log" >&2
  return 1
}

# start_console LISTEN TALOSCONFIG CONTEXT LOG: starts talos-dr and waits for its API to answer.
start_console() {
  local listen="$1" talosconfig="$2" context="$3" log="$4"
  ./target/debug/talos-dr serve --listen "$listen" --cluster "emulated=$talosconfig#$context" >"$log" 2>&1 &
  STACK_PIDS+=($!)
  local i
  for i in $(seq 1 120); do
    curl -fsS "http://$listen/api/clusters" >/dev/null 2>&1 && return 0
    if ! kill -0 "${STACK_PIDS[-1]}" 2>/dev/null; then
      echo "the console exited; its log:" >&2; cat "$log" >&2; return 1
    fi
    sleep 0.5
  done
  echo "the console did not answer in 60 s; its log:" >&2; cat "$log" >&2
  return 1
}

stop_stack() {
  local pid
  for pid in "${STACK_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${STACK_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  STACK_PIDS=()
}
