#!/usr/bin/env bash
# Starts the talos-dr demo: an emulated three-node Talos cluster on real etcd (127.0.0.2-4) and
# the console on http://127.0.0.1:8080. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"
bash scripts/setup.sh
cargo fetch --locked
trunk build --release
cargo build --locked -p talos-dr -p talos-emulator --bins

source scripts/lib/stack.sh
trap stop_stack EXIT INT TERM
STATE="$PWD/demo-state"
LISTEN="${TALOS_DR_LISTEN:-127.0.0.1:8080}"
echo "starting the emulated cluster (real etcd on 127.0.0.2, 127.0.0.3, 127.0.0.4)..."
start_emulator "$STATE" 127.0.0.2 3
# One demo user per role; the emulator's start empties $STATE, so each run gets new passwords.
create_users "$STATE/console-data" "$STATE/logins.txt" \
  viewer:viewer operator:operator approver:approver admin:admin
start_console "$LISTEN" "$STATE/talosconfig" emulated-admin "$STATE/console.log" "$STATE/console-data"
cat <<MSG

talos-dr is running: http://$LISTEN
  cluster "emulated": 3 control-plane nodes, talosconfig $STATE/talosconfig
  fault control:      http://$(cat "$STATE/control.addr")  (e.g. curl -X POST .../nodes/127.0.0.3/etcd/kill)
  logs:               $STATE/emulator.log, $STATE/console.log
  sign in as (user, password, roles; also in $STATE/logins.txt):
$(sed 's/^/    /' "$STATE/logins.txt")
Press Ctrl-C to stop.
MSG
wait
