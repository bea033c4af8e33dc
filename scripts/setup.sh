#!/usr/bin/env bash
# Installs everything talos-dr needs to build, demo and test on a Debian machine.
# Each step checks first and skips what is already there, so a warm machine passes in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130
TRUNK_VERSION=0.21.14
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

need_apt=()
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need_apt+=(etcd-client)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# python3 with venv support, for moto (below).
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# PostgreSQL: the tests start a throwaway server for the replica tests (scripts/lib/postgres.sh).
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes)"
  # --locked fails on this registry snapshot (webpki-roots); the unlocked build works.
  cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" --force
fi

if [ "$(trunk --version 2>/dev/null | awk '{print $2}')" != "$TRUNK_VERSION" ]; then
  say "installing trunk $TRUNK_VERSION (about ten minutes)"
  cargo install trunk --version "=$TRUNK_VERSION" --locked --force
fi

if [ -f package-lock.json ]; then
  if [ ! -x node_modules/.bin/wasm-opt ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "installing npm packages (wasm-opt, playwright-core, oidc-provider)"
    npm ci --no-audit --no-fund
  fi
fi
# moto: a local S3-compatible server for the snapshot store's tests. Debian's Python refuses
# system-wide pip installs, so it lives in a project-local virtualenv.
if ! .venv-moto/bin/python -c 'import moto.server, boto3' >/dev/null 2>&1; then
  say "installing moto[server] into .venv-moto (S3 tests)"
  python3 -m venv .venv-moto
  .venv-moto/bin/pip install --quiet 'moto[server]==5.2.5'
fi
say "tools ready"
