#!/usr/bin/env bash
# Issue 13's peer benchmark: node-oidc-provider (npm `oidc-provider`, pinned in
# package-lock.json) doing one RS256 client-assertion verify + one ES256 access-token sign
# per client_credentials request, server on core 0, load from core 1 (see bench.mjs).
# Prints `| peer: ... | value unit | | | |` rows and a `<!-- ... -->` versions line.
#
#   benches/peer/run.sh
#
# Exits 0 with one line `peer skipped: <reason>` when it cannot run here (no node/npm,
# node too old, no openssl/taskset/getconf, fewer than 2 cores, npm ci failing); exits
# non-zero if the benchmark itself fails (e.g. a response that is not 200).
set -euo pipefail

skip() { echo "peer skipped: $*"; exit 0; }

command -v node >/dev/null 2>&1 || skip "node is not installed"
command -v npm >/dev/null 2>&1 || skip "npm is not installed"
for tool in openssl taskset getconf sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
cd "$(dirname "${BASH_SOURCE[0]}")"
# oidc-provider 9 targets Node 22 LTS; 20.19+ works (it prints "Unsupported runtime").
node -e '
  const [a, b] = process.versions.node.split(".").map(Number);
  process.exit(a > 22 || (a === 22 && b >= 12) || (a === 20 && b >= 19) ? 0 : 1)' \
  || skip "node $(node --version) is too old for oidc-provider 9 (needs ^20.19, ^22.12 or >= 23)"
[ "$(getconf _NPROCESSORS_ONLN)" -ge 2 ] || skip "needs 2 cores (server on one, load on the other)"

# npm ci only when node_modules is missing or the lock file (or node's version) changed
# since the last install: the stamp is the hash of both, as in scripts/test.sh for tests/js.
stamp=node_modules/.package-lock.sha256
want="$( { cat package-lock.json; node --version; } | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null 2>npm-ci.log \
    || skip "npm ci failed: $(tail -n 1 npm-ci.log)"
  rm -f npm-ci.log
  echo "$want" >"$stamp"
fi

exec node bench.mjs
