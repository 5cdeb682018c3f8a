#!/usr/bin/env bash
# Runs every test of the project: installs what the tests need, then checks formatting,
# the dependency policy, lints, builds (Keyless, and interop/rust-azure-sdk: the Rust Azure
# SDK), runs the Rust tests and the SDK interop tests (Python SDK, and the Rust SDK's binary),
# and the web console's browser test (Chromium from Debian's packages, installed if missing).
#
#   ./scripts/test.sh                 # everything, in order, stopping at the first failed stage
#   ./scripts/test.sh python          # only some stages: fmt ring clippy build rust python fuzz
#   PYTEST_ADDOPTS='-k restart' ./scripts/test.sh python   # pytest reads PYTEST_ADDOPTS
#
# Works from any directory and on a fresh machine that has the Rust toolchain and python3
# (3.11+): cargo-nextest is installed (pinned) when missing, falling back to `cargo test`
# when it cannot be; PostgreSQL is installed from Debian's packages when missing. Safe to
# run again: the venv is reused while tests/python/requirements.txt is unchanged, the
# Azure CLI's venv (cached outside the checkout) while its pins are, and
# tests/js/node_modules while tests/js/package-lock.json is (no node: the JS tests skip).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ALL_STAGES=(fmt ring clippy build rust python fuzz)
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

# The real Azure CLI (tests/python/test_azure_cli.py) in its own venv, cached outside the
# checkout because installing it takes minutes: ${XDG_CACHE_HOME:-~/.cache}/keyless/
# az-venv-<hash of the pins and the interpreter>. A venv whose install did not finish (no
# .complete stamp) is rebuilt. The tests find az through KEYLESS_AZ_CLI; when the install
# fails (no registry), KEYLESS_AZ_CLI_UNAVAILABLE says why and those tests skip with it.
AZ_REQS="$ROOT/tests/python/azure-cli-requirements.txt"

setup_azure_cli() {
  local py key venv started log
  py="$(command -v python3.11 || command -v python3)" || { echo "python3 not found" >&2; exit 1; }
  key="$( { cat "$AZ_REQS"; "$py" -VV; } | sha256sum | cut -c1-16)"
  venv="${XDG_CACHE_HOME:-$HOME/.cache}/keyless/az-venv-$key"
  if [ ! -f "$venv/.complete" ] || ! AZURE_CONFIG_DIR="$venv/.az-config" "$venv/bin/az" version >/dev/null 2>&1; then
    banner "setup: azure-cli ($(grep -m1 '^azure-cli==' "$AZ_REQS")) in $venv (once; takes minutes)"
    started=$SECONDS
    log="$(mktemp)"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    if "$py" -m venv "$venv" >"$log" 2>&1 \
      && "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$AZ_REQS" >>"$log" 2>&1 \
      && AZURE_CONFIG_DIR="$venv/.az-config" "$venv/bin/az" version >>"$log" 2>&1; then
      touch "$venv/.complete"
      echo "azure-cli installed in $((SECONDS - started)) s"
    else
      tail -n 20 "$log" >&2
      rm -rf "$venv"
      export KEYLESS_AZ_CLI_UNAVAILABLE="azure-cli could not be installed from PyPI into $venv (see the setup output)"
      echo "warning: $KEYLESS_AZ_CLI_UNAVAILABLE; the Azure CLI tests will be skipped" >&2
    fi
    rm -f "$log"
  fi
  if [ -f "$venv/.complete" ]; then export KEYLESS_AZ_CLI="$venv/bin/az"; fi
}

# The JavaScript SDK interop project (tests/js: the real @azure/identity and
# @azure/keyvault-secrets from npm, pinned by its package-lock.json), run by
# tests/python/test_managed_identity_js.py. `npm ci` installs exactly the lock file into
# tests/js/node_modules, only when the lock file (or node's version) changed since the last
# install: the stamp is the hash of both. Without node the JS tests skip with that reason.
JS_DIR="$ROOT/tests/js"

setup_js() {
  local stamp want
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node/npm not found: the JavaScript SDK tests will be skipped" >&2
    return 0
  fi
  stamp="$JS_DIR/node_modules/.package-lock.sha256"
  want="$( { cat "$JS_DIR/package-lock.json"; node --version; } | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    banner "setup: npm ci (tests/js, node $(node --version))"
    (cd "$JS_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
}

# Debian's Chromium, for the web console's browser test (tests/js/console.test.mjs drives
# it with playwright-core, which downloads no browser of its own). Installed from Debian's
# packages when missing, as PostgreSQL is; without it (and not root) the test fails with
# what to install.
setup_chromium() {
  if [ -x /usr/bin/chromium ]; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    banner "setup: apt-get install chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium (/usr/bin/chromium) not found: install Debian's chromium package" >&2
  fi
}

# A throw-away PostgreSQL server (setup_postgres, stop_postgres): scripts/lib/postgres.sh.
# shellcheck source=lib/postgres.sh
source "$ROOT/scripts/lib/postgres.sh"

# The test runner: cargo-nextest (one process per test, so a test that leaks a server or
# a global cannot disturb another). A fresh machine may lack it: install the pinned
# version; if that fails (no registry), fall back to `cargo test`, which runs the same
# tests.
NEXTEST_VERSION=0.9.143
HAVE_NEXTEST=0
setup_nextest() {
  if cargo nextest --version >/dev/null 2>&1; then HAVE_NEXTEST=1; return 0; fi
  banner "setup: cargo install cargo-nextest@$NEXTEST_VERSION"
  if cargo install --locked "cargo-nextest@$NEXTEST_VERSION"; then
    HAVE_NEXTEST=1
  else
    echo "warning: cargo-nextest could not be installed; running the tests with cargo test" >&2
  fi
}

if wants rust; then setup_nextest; fi
if wants python; then setup_python; setup_azure_cli; setup_js; setup_chromium; fi
if wants rust || wants python; then setup_postgres; fi

# --- stages --------------------------------------------------------------------------------

# The Rust Azure SDK interop project (tests/python/test_rust_sdk.py and
# test_keyvault_rust_sdk.py run its binaries) is a separate workspace with its own lock file:
# the SDK's dependency tree is not Keyless'. The ring stage checks it too (no ring, no
# openssl), so that the SDK as tested is the rustls + aws-lc-rs build Keyless users get.
INTEROP_RUST="$ROOT/interop/rust-azure-sdk/Cargo.toml"
# The example workload (a separate cargo project on crates/keyless-credential, with its own
# lock file); the integration tests run its binary (crates/keyless/tests/integration/credential).
EXAMPLE_DIR="$ROOT/examples/keyvault-reader"
# The fuzz targets (a separate cargo workspace with its own lock file; scripts/fuzz.sh).
FUZZ_MANIFEST="$ROOT/fuzz/Cargo.toml"

stage_fmt() {
  banner "cargo fmt --check"
  cargo fmt --all -- --check
  cargo fmt --all --manifest-path "$INTEROP_RUST" -- --check
  cargo fmt --all --manifest-path "$EXAMPLE_DIR/Cargo.toml" -- --check
  cargo fmt --all --manifest-path "$FUZZ_MANIFEST" -- --check
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
  # The interop project: neither ring nor openssl. A crate that is in no lock file at all
  # makes `cargo tree -i` fail ("did not match any packages"): that is absent too.
  local crate
  for crate in ring openssl openssl-sys; do
    if out="$(cargo tree --locked --manifest-path "$INTEROP_RUST" -i "$crate" --target all -e all 2>/dev/null)" \
      && [ -n "$out" ]; then
      echo "$crate is in interop/rust-azure-sdk's dependency tree; it must not be:" >&2
      echo "$out" >&2
      return 1
    fi
  done
  echo "ok: interop/rust-azure-sdk has neither ring nor openssl"
  # The example workload is an application on keyless-credential: the same policy.
  for crate in ring openssl openssl-sys; do
    if out="$(cargo tree --locked --manifest-path "$EXAMPLE_DIR/Cargo.toml" -i "$crate" --target all -e all 2>/dev/null)" \
      && [ -n "$out" ]; then
      echo "$crate is in examples/keyvault-reader's dependency tree; it must not be:" >&2
      echo "$out" >&2
      return 1
    fi
  done
  echo "ok: examples/keyvault-reader has neither ring nor openssl"
  # The fuzz workspace, with the fuzzer's runtime crate: the same policy.
  for crate in ring openssl openssl-sys; do
    if out="$(cargo tree --locked --manifest-path "$FUZZ_MANIFEST" --features afl -i "$crate" --target all -e all 2>/dev/null)" \
      && [ -n "$out" ]; then
      echo "$crate is in fuzz/'s dependency tree; it must not be:" >&2
      echo "$out" >&2
      return 1
    fi
  done
  echo "ok: fuzz/ has neither ring nor openssl"
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
  banner "cargo build examples/keyvault-reader (the example workload, for the rust stage)"
  cargo build --locked --manifest-path "$EXAMPLE_DIR/Cargo.toml" --target-dir "$EXAMPLE_DIR/target"
}

stage_rust() {
  if [ "$HAVE_NEXTEST" = 1 ]; then
    banner "cargo nextest run"
    cargo nextest run --workspace --no-fail-fast
    # The whole integration suite again, every server on its own PostgreSQL database:
    # both storage backends are held to the same behaviour end to end.
    banner "cargo nextest run: integration suite on PostgreSQL"
    KEYLESS_TEST_BACKEND=postgres cargo nextest run -p keyless --test integration --no-fail-fast
  else
    banner "cargo test"
    cargo test --workspace --no-fail-fast
    banner "cargo test: integration suite on PostgreSQL"
    KEYLESS_TEST_BACKEND=postgres cargo test -p keyless --test integration --no-fail-fast
  fi
  banner "cargo test --doc"
  cargo test --doc --workspace
}

stage_python() {
  banner "pytest tests/python (Azure SDK interop)"
  # KEYLESS_BIN may point elsewhere (e.g. a release build); by default the fresh debug build.
  KEYLESS_BIN="${KEYLESS_BIN:-$ROOT/target/debug/keyless}" "$VENV/bin/python" -m pytest tests/python -q
  # The web console in a real browser (screenshots land in target/console-screenshots/).
  if command -v node >/dev/null; then
    banner "node --test tests/js/console.test.mjs (keyless console in Chromium)"
    KEYLESS_BIN="${KEYLESS_BIN:-$ROOT/target/debug/keyless}" node --test tests/js/console.test.mjs
  else
    echo "node not found: the web console browser test is skipped" >&2
  fi
}

stage_fuzz() {
  # Replays every kept input (seed corpus and past crashes), then fuzzes each target
  # briefly (FUZZ_SMOKE_SECONDS, default 15) with AFL++; fails on any crash or hang.
  "$ROOT/scripts/fuzz.sh" smoke
}

for s in "${ALL_STAGES[@]}"; do
  if wants "$s"; then "stage_$s"; fi
done
banner "all requested stages passed: ${STAGES[*]}"
