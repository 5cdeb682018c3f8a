#!/usr/bin/env bash
# Runs the benchmarks (release builds) and prints their ratios, each measured against a
# bound taken in the same run (one RS256 verify + one ES256 sign with aws-lc-rs):
#
#   exchange       the token exchange hot path in process, one thread
#   http_exchange  the real `keyless serve` over keep-alive HTTPS on loopback:
#                  server CPU per exchange
#   vault_read     Key Vault secret reads against the real server: CPU per read with a
#                  new token each time and with one token repeated, vs one ES256 verify
#   mgmt_scale     management writes, start-up, memory and exchange latency at 1k, 10k
#                  and 100k identities (KEYLESS_BENCH_SCALE=1000,10000 for fewer); not
#                  in the default set (about 3 minutes)
#
#   ./scripts/bench.sh                  # both
#   ./scripts/bench.sh exchange         # one
#
# Not part of ./scripts/test.sh: figures on a shared 2-core machine are noisy, so the
# ratios, not absolute numbers, are what to compare. Loopback only; bounded runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BENCHES=(exchange http_exchange vault_read)
if [ "$#" -gt 0 ]; then BENCHES=("$@"); fi
args=()
for b in "${BENCHES[@]}"; do
  case "$b" in exchange|http_exchange|vault_read|mgmt_scale) args+=(--bench "$b") ;;
    *) echo "unknown benchmark: $b (benchmarks: exchange http_exchange vault_read mgmt_scale)" >&2; exit 2 ;;
  esac
done
cargo bench -p keyless "${args[@]}"
