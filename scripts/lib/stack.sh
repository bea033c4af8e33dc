# Helpers to start an emulated Talos cluster and the console, shared by the demo and the browser
# tests. Sourced, not run. Every process started here is stopped by stop_stack (trap it).

STACK_PIDS=()
# Where cargo put the debug binaries (CARGO_TARGET_DIR moves them).
BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/debug"

# start_emulator STATE_DIR BASE_IP NODES [EMULATOR_ARG...]: starts the emulator (with any extra
# `talos-emulator up` arguments) and waits until its cluster is healthy.
start_emulator() {
  local state="$1" base_ip="$2" nodes="$3"; shift 3
  rm -rf "$state"; mkdir -p "$state"
  "$BIN_DIR"/talos-emulator up --nodes "$nodes" --state-dir "$state" --base-ip "$base_ip" "$@" \
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

# create_users DATA_DIR LOGINS_FILE NAME:ROLE[,ROLE...]...: adds console users with generated
# passwords to the console's database in DATA_DIR, and writes one "NAME PASSWORD ROLES" line per
# user to LOGINS_FILE (readable by its owner only).
create_users() {
  local data="$1" logins="$2"; shift 2
  (umask 077; : >"$logins")
  local spec name roles role password
  for spec in "$@"; do
    name="${spec%%:*}"; roles="${spec#*:}"
    local args=()
    IFS=, read -ra role_list <<<"$roles"
    for role in "${role_list[@]}"; do args+=(--role "$role"); done
    password="$("$BIN_DIR"/talos-dr user add "$name" "${args[@]}" --data-dir "$data" 2>>"$logins.log")"
    printf '%s %s %s\n' "$name" "$password" "$roles" >>"$logins"
  done
}

# login_password LOGINS_FILE NAME: the password create_users gave NAME.
login_password() {
  awk -v name="$2" '$1 == name { print $2 }' "$1"
}

# start_console LISTEN TALOSCONFIG CONTEXT LOG DATA_DIR: starts talos-dr with its database in
# DATA_DIR and waits for its API to answer (401 without a session counts as an answer).
start_console() {
  local listen="$1" talosconfig="$2" context="$3" log="$4" data="$5"
  # Least privilege: health polls with os:reader, snapshots with os:etcd:backup, and only
  # recovery steps with os:admin (the emulator's talosconfig holds one context per role).
  "$BIN_DIR"/talos-dr serve --listen "$listen" --cluster "emulated=$talosconfig#$context" \
    --cluster-credential "emulated:reader=$talosconfig#emulated-reader" \
    --cluster-credential "emulated:etcd_backup=$talosconfig#emulated-etcd-backup" \
    --cluster-credential "emulated:admin=$talosconfig#emulated-admin" \
    --data-dir "$data" >"$log" 2>&1 &
  STACK_PIDS+=($!)
  local i
  for i in $(seq 1 120); do
    curl -sS -o /dev/null "http://$listen/api/session" >/dev/null 2>&1 && return 0
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
