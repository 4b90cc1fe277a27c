#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian machine: installs what the
# tests need, then the Rust suites, then the flow checks and flow tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# System packages the end-to-end tests use (none needed yet beyond the toolchain).
need_pkgs=()
if [ ${#need_pkgs[@]} -gt 0 ]; then
  missing=()
  for p in "${need_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
fi

step "cargo test (workspace)"
cargo test --workspace --locked

step "vflow check flows stdlib examples"
cargo run -q --locked -p vflow-runtime -- check flows stdlib examples
