#!/usr/bin/env bash
# Runs the browser tests in headless Chromium against the real console and an emulated
# three-node cluster on 127.0.1.2-4. Expects the binaries and dist/ to be built (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/stack.sh
trap stop_stack EXIT

OUT="$PWD/test-output"
STATE="$OUT/browser-cluster"
LISTEN=127.0.1.1:8480
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
node --test --test-concurrency=1 tests/browser/
