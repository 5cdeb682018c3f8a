#!/usr/bin/env bash
# Runs every test of the project: installs what the tests need, then checks formatting,
# the dependency policy, lints, builds (Keyless, and interop/rust-azure-sdk: the Rust Azure
# SDK), runs the Rust tests and the SDK interop tests (Python SDK, and the Rust SDK's binary).
#
#   ./scripts/test.sh                 # everything, in order, stopping at the first failed stage
#   ./scripts/test.sh python          # only some stages: fmt ring clippy build rust python
#   PYTEST_ADDOPTS='-k restart' ./scripts/test.sh python   # pytest reads PYTEST_ADDOPTS
#
# Works from any directory and on a fresh machine that has the Rust toolchain, python3
# (3.11+) with venv/pip, and cargo-nextest. Safe to run again: the venv is reused while
# tests/python/requirements.txt is unchanged.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ALL_STAGES=(fmt ring clippy build rust python)
if [ "$#" -gt 0 ]; then STAGES=("$@"); else STAGES=("${ALL_STAGES[@]}"); fi
for s in "${STAGES[@]}"; do
  case " ${ALL_STAGES[*]} " in *" $s "*) ;; *) echo "unknown stage: $s (stages: ${ALL_STAGES[*]})" >&2; exit 2 ;; esac
done
wants() { case " ${STAGES[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
# The Python tests run target/debug/keyless, so they always need a fresh build.
if wants python && ! wants build; then STAGES=(build "${STAGES[@]}"); fi

banner() { printf '\n==== %s ====\n' "$*"; }

# --- setup: what the tests need ----------------------------------------------------------

VENV="$ROOT/.venv"
REQS="$ROOT/tests/python/requirements.txt"

setup_python() {
  local py stamp want
  py="$(command -v python3.11 || command -v python3)" || { echo "python3 not found" >&2; exit 1; }
  # A venv whose interpreter has vanished (e.g. the base Python was upgraded) is rebuilt.
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    banner "setup: python venv ($py)"
    rm -rf "$VENV"
    if ! "$py" -m venv "$VENV"; then
      # Debian's own python3 ships venv/ensurepip separately.
      rm -rf "$VENV"
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        "$py" -m venv "$VENV"
      else
        echo "cannot create a venv: install python3-venv" >&2; exit 1
      fi
    fi
  fi
  # Reinstall only when the pins (or the interpreter) changed: the stamp is the hash of both.
  stamp="$VENV/.requirements.sha256"
  want="$( { cat "$REQS"; "$VENV/bin/python" -VV; } | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    banner "setup: pip install -r tests/python/requirements.txt"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQS"
    echo "$want" > "$stamp"
  fi
}

setup_postgres() {
  # HOOK (PostgreSQL backend issue): install and start a throw-away PostgreSQL server here
  # (apt-get install postgresql; initdb in target/; pg_ctl start on a loopback port) and
  # export the database URL the tests read. Nothing needs it yet.
  :
}

if wants python; then setup_python; fi
setup_postgres

# --- stages --------------------------------------------------------------------------------

# The Rust Azure SDK interop project (tests/python/test_rust_sdk.py runs its binary) is a
# separate workspace with its own lock file: the SDK's dependency tree is not Keyless' and is
# not subject to the ring policy below (it has no ring or openssl today, but nothing enforces it).
INTEROP_RUST="$ROOT/interop/rust-azure-sdk/Cargo.toml"

stage_fmt() {
  banner "cargo fmt --check"
  cargo fmt --all -- --check
  cargo fmt --all --manifest-path "$INTEROP_RUST" -- --check
}

stage_ring() {
  # Policy: crypto comes from aws-lc-rs; `ring` must not be anywhere in the dependency tree.
  # `cargo tree -i` prints the inverted tree on stdout when the crate is present; when it is
  # absent it prints only a warning ("nothing to print") on stderr. Any stdout is a failure.
  banner "no ring in the dependency tree"
  local out err
  err="$(mktemp)"
  if ! out="$(cargo tree --workspace -i ring --target all -e all 2>"$err")"; then
    cat "$err" >&2; rm -f "$err"
    echo "cargo tree failed" >&2
    return 1
  fi
  rm -f "$err"
  if [ -n "$out" ]; then
    echo "ring is in the dependency tree; it must not be:" >&2
    echo "$out" >&2
    return 1
  fi
  echo "ok: ring is not a dependency"
}

stage_clippy() {
  banner "cargo clippy -D warnings"
  cargo clippy --workspace --all-targets -- -D warnings
}

stage_build() {
  banner "cargo build (debug)"
  cargo build --workspace
  banner "cargo build interop/rust-azure-sdk (the Rust Azure SDK, for the python stage)"
  cargo build --locked --manifest-path "$INTEROP_RUST"
}

stage_rust() {
  banner "cargo nextest run"
  # --no-tests=warn: a workspace without tests yet is not a failure of this script.
  cargo nextest run --workspace --no-fail-fast --no-tests=warn
  banner "cargo test --doc"
  cargo test --doc --workspace
}

stage_python() {
  banner "pytest tests/python (Azure SDK interop)"
  # KEYLESS_BIN may point elsewhere (e.g. a release build); by default the fresh debug build.
  KEYLESS_BIN="${KEYLESS_BIN:-$ROOT/target/debug/keyless}" "$VENV/bin/python" -m pytest tests/python -q
}

for s in "${ALL_STAGES[@]}"; do
  if wants "$s"; then "stage_$s"; fi
done
banner "all requested stages passed: ${STAGES[*]}"
