#!/usr/bin/env bash
# Runs the browser tests in headless Chromium against the real console and an emulated
# three-node cluster on 127.0.1.2-4. Expects the binaries and dist/ to be built (scripts/test.sh).
# The recovery test breaks and restores its cluster, so it gets its own console and emulated
# cluster on 127.0.80.1-4 (and a single-node one on 127.0.80.9-10); the recovery variants and
# forms get theirs on 127.0.81.x-127.0.84.x. Arguments name test files to run instead of all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/stack.sh
source scripts/lib/postgres.sh
trap 'stop_stack; stop_postgres' EXIT

OUT="$PWD/test-output"
STATE="$OUT/browser-cluster"
LISTEN=127.0.1.1:8480
mkdir -p "$OUT"
# Machine-config backups need a key; every console these tests start gets the same one.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$OUT/config-backup.key"
export TALOS_DR_CONFIG_BACKUP_KEY_FILE="$OUT/config-backup.key"
start_emulator "$STATE" 127.0.1.2 3
create_users "$STATE/console-data" "$STATE/logins.txt" \
  sre:viewer,operator,approver,admin viewer:viewer operator:viewer,operator
start_console "$LISTEN" "$STATE/talosconfig" emulated-admin "$OUT/console-browser.log" "$STATE/console-data"

export TALOS_DR_URL="http://$LISTEN"
# The tests sign in first: TALOS_DR_USER holds every role, TALOS_DR_VIEWER only viewer,
# TALOS_DR_OPERATOR viewer and operator.
export TALOS_DR_USER=sre
TALOS_DR_PASSWORD="$(login_password "$STATE/logins.txt" sre)"
export TALOS_DR_PASSWORD
export TALOS_DR_VIEWER=viewer
TALOS_DR_VIEWER_PASSWORD="$(login_password "$STATE/logins.txt" viewer)"
export TALOS_DR_VIEWER_PASSWORD
export TALOS_DR_OPERATOR=operator
TALOS_DR_OPERATOR_PASSWORD="$(login_password "$STATE/logins.txt" operator)"
export TALOS_DR_OPERATOR_PASSWORD
export EMULATOR_CONTROL="http://$(cat "$STATE/control.addr")"
export SCREENSHOT_DIR="$OUT/screenshots"
mkdir -p "$SCREENSHOT_DIR"

RECOVERY_STATE="$OUT/browser-recovery-cluster"
RECOVERY_LISTEN=127.0.80.1:8480
start_emulator "$RECOVERY_STATE" 127.0.80.2 3
create_users "$RECOVERY_STATE/console-data" "$RECOVERY_STATE/logins.txt" \
  recovery-operator:viewer,operator recovery-approver:viewer,approver
start_console "$RECOVERY_LISTEN" "$RECOVERY_STATE/talosconfig" emulated-admin \
  "$OUT/console-recovery.log" "$RECOVERY_STATE/console-data"
export RECOVERY_URL="http://$RECOVERY_LISTEN"
export RECOVERY_CONTROL="http://$(cat "$RECOVERY_STATE/control.addr")"
export RECOVERY_OPERATOR=recovery-operator
RECOVERY_OPERATOR_PASSWORD="$(login_password "$RECOVERY_STATE/logins.txt" recovery-operator)"
export RECOVERY_OPERATOR_PASSWORD
export RECOVERY_APPROVER=recovery-approver
RECOVERY_APPROVER_PASSWORD="$(login_password "$RECOVERY_STATE/logins.txt" recovery-approver)"
export RECOVERY_APPROVER_PASSWORD
# A single-node cluster for the "one control-plane node and no fresh snapshot" warning.
SINGLE_STATE="$OUT/browser-single-cluster"
SINGLE_LISTEN=127.0.80.9:8480
start_emulator "$SINGLE_STATE" 127.0.80.10 1
create_users "$SINGLE_STATE/console-data" "$SINGLE_STATE/logins.txt" recovery-operator:viewer,operator
start_console "$SINGLE_LISTEN" "$SINGLE_STATE/talosconfig" emulated-admin \
  "$OUT/console-single.log" "$SINGLE_STATE/console-data"
export SINGLE_URL="http://$SINGLE_LISTEN"
SINGLE_OPERATOR_PASSWORD="$(login_password "$SINGLE_STATE/logins.txt" recovery-operator)"
export SINGLE_OPERATOR_PASSWORD

# The recovery variants and forms each get their own console and cluster (they break and restore
# it); started only when their test file runs.
runs() {
  local arg
  [ "${#TEST_ARGS[@]}" -eq 0 ] && return 0
  for arg in "${TEST_ARGS[@]}"; do
    case "$1" in "$arg"|"${arg%/}"/*) return 0 ;; esac
  done
  return 1
}
TEST_ARGS=("$@")

# recovery_stack PREFIX STATE BASE_IP NODES LISTEN [EMULATOR_ARG...]: an emulated cluster with the
# recovery operator and approver (and an admin) and its console, exported for recovery-flow.mjs
# as PREFIX_URL, PREFIX_CONTROL, PREFIX_STATE and PREFIX_{OPERATOR,APPROVER,ADMIN}_PASSWORD.
# With LISTEN "-" no console is started: the test starts (and restarts) it itself.
recovery_stack() {
  local prefix="$1" state="$2" base_ip="$3" nodes="$4" listen="$5"; shift 5
  start_emulator "$state" "$base_ip" "$nodes" "$@"
  create_users "$state/console-data" "$state/logins.txt" recovery-operator:viewer,operator \
    recovery-approver:viewer,approver recovery-admin:viewer,operator,admin
  if [ "$listen" != - ]; then
    start_console "$listen" "$state/talosconfig" emulated-admin "$state/console.log" "$state/console-data"
    export "${prefix}_URL=http://$listen"
  fi
  export "${prefix}_CONTROL=http://$(cat "$state/control.addr")"
  export "${prefix}_STATE=$state"
  local who
  for who in operator approver admin; do
    export "${prefix}_${who^^}_PASSWORD=$(login_password "$state/logins.txt" "recovery-$who")"
  done
}
export RECOVERY_ADMIN=recovery-admin
export TALOS_DR_BIN="$BIN_DIR/talos-dr"

if runs tests/browser/recovery-variants.test.mjs; then
  recovery_stack RAW_COPY "$OUT/browser-raw-copy-cluster" 127.0.81.2 3 127.0.81.1:8480
  recovery_stack INIT_NODE "$OUT/browser-init-node-cluster" 127.0.82.2 3 127.0.82.1:8480 --init-node
  recovery_stack SINGLE_FLOW "$OUT/browser-single-flow-cluster" 127.0.83.2 1 127.0.83.1:8480
fi
if runs tests/browser/recovery-forms.test.mjs; then
  recovery_stack FORMS "$OUT/browser-forms-cluster" 127.0.84.2 3 -
  export FORMS_URL=http://127.0.84.1:8480
fi
# Two console replicas on one PostgreSQL database, one emulated cluster (127.0.85.x). The test
# command's PostgreSQL server is used when it runs one; otherwise this script starts its own.
if runs tests/browser/replicas.test.mjs; then
  if [ -z "${TALOS_DR_TEST_DATABASE_URL:-}" ]; then
    start_postgres 127.0.110.2 55432
  fi
  REPLICA_DB="tdr_browser_$$"
  psql -q "$TALOS_DR_TEST_DATABASE_URL" -c "CREATE DATABASE $REPLICA_DB"
  REPLICA_DATABASE_URL="${TALOS_DR_TEST_DATABASE_URL%/*}/$REPLICA_DB"
  REPLICA_STATE="$OUT/browser-replica-cluster"
  start_emulator "$REPLICA_STATE" 127.0.85.3 3
  DATABASE_URL="$REPLICA_DATABASE_URL" create_users "$REPLICA_STATE/console-a-data" "$REPLICA_STATE/logins.txt" \
    replica-operator:viewer,operator replica-approver:viewer,approver
  DATABASE_URL="$REPLICA_DATABASE_URL" start_console 127.0.85.1:8480 "$REPLICA_STATE/talosconfig" emulated-admin \
    "$OUT/console-replica-a.log" "$REPLICA_STATE/console-a-data"
  DATABASE_URL="$REPLICA_DATABASE_URL" start_console 127.0.85.2:8480 "$REPLICA_STATE/talosconfig" emulated-admin \
    "$OUT/console-replica-b.log" "$REPLICA_STATE/console-b-data"
  export REPLICA_A_URL="http://127.0.85.1:8480" REPLICA_B_URL="http://127.0.85.2:8480"
  export REPLICA_OPERATOR=replica-operator REPLICA_APPROVER=replica-approver
  REPLICA_OPERATOR_PASSWORD="$(login_password "$REPLICA_STATE/logins.txt" replica-operator)"
  REPLICA_APPROVER_PASSWORD="$(login_password "$REPLICA_STATE/logins.txt" replica-approver)"
  export REPLICA_OPERATOR_PASSWORD REPLICA_APPROVER_PASSWORD
fi

node --test --test-concurrency=1 "${@:-tests/browser/}"
