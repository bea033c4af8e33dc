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
start_console "$LISTEN" "$STATE/talosconfig" emulated-admin "$OUT/console-browser.log"

export TALOS_DR_URL="http://$LISTEN"
export EMULATOR_CONTROL="http://$(cat "$STATE/control.addr")"
export SCREENSHOT_DIR="$OUT/screenshots"
mkdir -p "$SCREENSHOT_DIR"
node --test --test-concurrency=1 tests/browser/
