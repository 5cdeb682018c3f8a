#!/usr/bin/env bash
# Soak: a bounded, loopback-only mixed load (exchanges, vault reads, management writes,
# hostile requests from a second loopback address) against the release `keyless serve`
# for a set time, sampling RSS, open file descriptors and database size. Prints a table
# and a verdict: flat (within 10% after warm-up, no unexpected failures) or not; exits 1
# when not.
#
#   ./scripts/soak.sh          # 600 s
#   ./scripts/soak.sh 120      # 120 s
#
# A benchmark, not a CI test (it takes minutes; its figures depend on the machine).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_TO_RUN="${1:-600}"
case "$SECONDS_TO_RUN" in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
cargo bench -p keyless --bench soak -- --seconds "$SECONDS_TO_RUN"
