#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian machine: installs what the
# tests need, then the Rust suites, then the flow checks and flow tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# System packages the end-to-end tests use: sipp (runtime/tests/e2e_sipp.rs,
# e2e_mail.rs) and Python's aiosmtpd as the SMTP relay (runtime/tests/e2e_mail.rs).
need_pkgs=(sip-tester python3-aiosmtpd)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "warning: not a Debian system; install ${need_pkgs[*]} yourself" >&2
  else
    missing=()
    for p in "${need_pkgs[@]}"; do installed "$p" || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
      step "installing ${missing[*]}"
      sudo=""
      [ "$(id -u)" -eq 0 ] || sudo="sudo"
      $sudo apt-get update -qq
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
  fi
fi
# The sipp tests skip (loudly) without sipp unless CI is set; here sipp must run.
command -v sipp >/dev/null 2>&1 || { echo "error: sipp is not installed (Debian package sip-tester)" >&2; exit 1; }
# The email tests look for aiosmtpd under python3, then /usr/bin/python3 (where Debian puts it).
python3 -c 'import aiosmtpd' 2>/dev/null || /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null ||
  { echo "error: Python's aiosmtpd is not installed (Debian package python3-aiosmtpd, or pip install aiosmtpd)" >&2; exit 1; }

step "cargo test (workspace)"
cargo test --workspace --locked

# The binary the integration tests built (`cargo run -p` would resolve other
# features and rebuild Cranelift).
vflow="${CARGO_TARGET_DIR:-target}/debug/vflow"

step "vflow check flows stdlib examples tests"
"$vflow" check flows stdlib examples tests/flows
"$vflow" check tests/load/flows

step "vflow test flows stdlib examples (both engines)"
"$vflow" test flows stdlib examples --coverage --engine jit
"$vflow" test flows stdlib examples --engine interp
