#!/usr/bin/env bash
# Runs every test of talos-dr: unit and integration tests against the Talos emulator and real
# etcd, the snapshot inspector against etcdctl, a short fuzz run, and the browser tests in
# headless Chromium. Installs what it needs first (scripts/setup.sh skips what is there).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"
export CARGO_TERM_COLOR=never
# One build per run: incremental caches would double the disk a build takes and save nothing.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
OUT="$PWD/test-output"
rm -rf "$OUT"; mkdir -p "$OUT"

# Each step says how much disk is left: etcd, SQLite and the build all fail oddly on a full disk.
step() {
  printf '\n== %s ==\n' "$*"
  printf '   (disk free: %s here, %s in /tmp)\n' "$(df -h --output=avail . | tail -n 1 | tr -d ' ')" \
    "$(df -h --output=avail /tmp | tail -n 1 | tr -d ' ')" || true
}

step "tools"
bash scripts/setup.sh

step "PostgreSQL for the replica tests (127.0.110.1:55432)"
source scripts/lib/postgres.sh
trap stop_postgres EXIT
start_postgres 127.0.110.1 55432

step "room to build"
# A build cache kept from earlier runs only grows; a clean build of everything takes about
# 3 GiB, so when less than 12 GiB is free the old cache goes rather than the run failing oddly
# half-way (etcd, SQLite and the linker all fail on a full disk).
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
free_gib() { df -P -BG "$1" | awk 'NR == 2 { print $4 + 0 }'; }
if [ -d "$TARGET_DIR" ] && [ "$(free_gib "$TARGET_DIR")" -lt 12 ]; then
  echo "   only $(free_gib "$TARGET_DIR") GiB free: clearing the build cache $TARGET_DIR"
  rm -rf "$TARGET_DIR"
fi

step "fetch crates"
cargo fetch --locked

step "build the console's web UI (trunk, release)"
trunk build --release

step "build"
cargo build --locked --workspace --exclude talos-dr-ui --bins --tests

step "unit and integration tests"
cargo test --locked --no-fail-fast --workspace --exclude talos-dr-ui 2>&1 | tee "$OUT/cargo-test.log"

step "the console's API tests again, on PostgreSQL"
# The same tests with every console on a database of its own on the PostgreSQL server. Not
# repeated: the killed-binary and startup tests (the real binary on SQLite), and the restart test,
# whose "restarted" console runs beside the first one: on PostgreSQL that is a live replica whose
# steps are left alone (replicas:: tests the take-over when a replica stops).
TALOS_DR_TEST_STORE=postgres cargo test --locked -p talos-dr --test api -- \
  --skip recovery_faults:: --skip startup:: --skip recovery::restart:: 2>&1 \
  | tee "$OUT/cargo-test-postgres.log"

step "web UI logic tests (host)"
cargo test --locked -p talos-dr-ui --lib 2>&1 | tee "$OUT/ui-test.log"

step "fuzz the snapshot reader briefly"
bash snapshot/fuzz/run.sh "${FUZZ_SECONDS:-30}" 2>&1 | tail -n 20

step "browser tests (headless Chromium)"
bash scripts/browser-tests.sh

step "all tests passed"
