#!/usr/bin/env bash
# Builds the benchmarks (release) and runs them, then prints one table: every figure next
# to its bound (measured in the same run) or its target, the ratio, and ok/MISSED.
#
#   exchange       the token exchange hot path in process, one thread, vs its crypto
#   http_exchange  the real `keyless serve`, server on one core, unique assertions:
#                  CPU per exchange over keep-alive HTTPS/1.1 and HTTP/2 vs one RS256
#                  verify + one ES256 sign; throughput; p99 at half the maximum rate
#   vault_read     Key Vault secret GETs (RBAC checked), server on one core: CPU per read
#                  with a new token each time and with one token repeated
#   webhook        `keyless webhook` mutating realistic unique pods, one core:
#                  CPU per admission (admissions/s per core), p99 at half the maximum rate
#   mgmt_scale     management writes and start-up as the tenant grows (1k..100k
#                  identities): PUT latency, time to a usable credential, start-up, RSS,
#                  exchange latency at 10 vs 100k (KEYLESS_BENCH_SCALE=1000,10000 for fewer);
#                  then two replicas on PostgreSQL at the largest N: a credential written
#                  on one, usable on the other (a throw-away PostgreSQL server is started
#                  as scripts/test.sh does, unless KEYLESS_TEST_POSTGRES_URL is set)
#   peer           a peer for scale: node-oidc-provider doing the same RS256 verify +
#                  ES256 sign per exchange, measured like http_exchange
#                  (benches/peer/run.sh; skipped with a reason without node/npm)
#
#   ./scripts/bench.sh                  # all of the above
#   ./scripts/bench.sh webhook vault_read
#   KEYLESS_BENCH_PERF=/tmp/perf.data ./scripts/bench.sh http_exchange   # + a profile
#
# Not part of ./scripts/test.sh: figures on a shared 2-core machine are noisy, so compare
# ratios from one run, not absolute numbers across runs. Loopback only; bounded runs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
banner() { printf '\n==== %s ====\n' "$*"; }
# shellcheck source=lib/postgres.sh
source "$ROOT/scripts/lib/postgres.sh"

KNOWN=()
for f in crates/keyless/benches/*.rs; do
  b="$(basename "$f" .rs)"
  # soak is a long-running leak check, run on its own: ./scripts/bench.sh soak
  [ "$b" = soak ] || KNOWN+=("$b")
done
KNOWN+=(peer)
BENCHES=("${KNOWN[@]}")
if [ "$#" -gt 0 ]; then BENCHES=("$@"); fi
for b in "${BENCHES[@]}"; do
  [ "$b" = peer ] || [ -f "crates/keyless/benches/$b.rs" ] || {
    echo "unknown benchmark: $b (benchmarks: ${KNOWN[*]} soak)" >&2; exit 2; }
done

args=()
for b in "${BENCHES[@]}"; do [ "$b" = peer ] || args+=(--bench "$b"); done
[ "${#args[@]}" -eq 0 ] || cargo bench -p keyless "${args[@]}" --no-run

for b in "${BENCHES[@]}"; do [ "$b" != mgmt_scale ] || setup_postgres; done
log="$(mktemp)"
trap 'rm -f "$log"; stop_postgres' EXIT
for b in "${BENCHES[@]}"; do
  printf '\n==== %s ====\n' "$b"
  if [ "$b" = peer ]; then
    benches/peer/run.sh 2>&1 | tee -a "$log" || echo "| peer: failed (see above) | | | | |" | tee -a "$log"
  else
    cargo bench -q -p keyless --bench "$b" 2>&1 | tee -a "$log"
  fi
done

printf '\n## Keyless benchmarks (%s, %s)\n\n' "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$(date -u +%Y-%m-%dT%H:%MZ)"
echo '| figure | measured | bound or target | ratio | verdict |'
echo '|---|---|---|---|---|'
grep -E '^\| ' "$log" | grep -vE '^\| (figure|---)' || true
grep -E '^peer skipped' "$log" | sed 's/^/| /; s/$/ | | | | |/' || true
if grep -qE '^\| .*\| MISSED \|$' "$log"; then
  echo; echo "some figures MISSED their bound or target (see above)"
fi
# Periodic kernel work on these cores preempts the pinned server and shows in the tails
# (p99), whatever the server does: say so next to the figures when it is running.
if pgrep -x 'kdamond\.[0-9]+' >/dev/null 2>&1; then
  echo
  echo "note: the kernel's DAMON monitor (kdamond) runs on this machine: every 512 ms it"
  echo "takes a core for ~0.7 ms, sometimes 4-8 ms, preempting the pinned server; the p99"
  echo "figures include those stalls (perf record -e sched:sched_switch -a shows them)."
fi
