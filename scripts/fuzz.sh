#!/usr/bin/env bash
# Coverage-guided fuzzing of Keyless' parsers with AFL++ (cargo-afl, stable toolchain).
# The targets, what each covers and the figures of the last long run: docs/design/fuzzing.md.
#
#   ./scripts/fuzz.sh                  # every target, 300 s each
#   ./scripts/fuzz.sh arm 600          # one target, 600 s
#   ./scripts/fuzz.sh all 60           # every target, 60 s each
#   ./scripts/fuzz.sh replay           # only replay corpus/ and regressions/ (cargo test)
#   ./scripts/fuzz.sh smoke            # CI: replay, then every target for FUZZ_SMOKE_SECONDS (15)
#   ./scripts/fuzz.sh list             # the target names
#
# Installs cargo-afl (pinned) when missing; cargo-afl builds AFL++ from source once per
# toolchain (kept in ~/.local/share/afl.rs). Builds the instrumented targets in
# fuzz/target, runs each with its seed corpus (fuzz/corpus/<target>) into
# fuzz/out/<target>, then prints one line per target: executions, executions per second,
# edges found, bitmap coverage, crashes, hangs. Crashing and hanging inputs are copied to
# fuzz/findings/<target>/; the script then exits non-zero. A fixed crash's input goes to
# fuzz/regressions/<target>/, which the replay (and so CI) runs on every change.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/fuzz"
CARGO_AFL_VERSION=0.18.2
TARGETS=(token_form jws jwks discovery expression arm vault admission kubeconfig)

what="${1:-all}"
seconds="${2:-300}"

banner() { printf '\n==== %s ====\n' "$*"; }

replay() {
  banner "fuzz: replay corpus/ and regressions/ (cargo test, no instrumentation)"
  # The main workspace's target directory: the lock files pin the same versions, so the
  # debug build of the Keyless crates and their dependencies (test.sh's build stage) is
  # reused. The instrumented build (fuzz/target) uses other flags and stays apart.
  cargo test --locked --manifest-path "$FUZZ/Cargo.toml" --target-dir "$ROOT/target" \
    --test replay -- --nocapture
}

setup_afl() {
  if ! cargo afl --version 2>/dev/null | grep -q "$CARGO_AFL_VERSION"; then
    banner "setup: cargo install cargo-afl@$CARGO_AFL_VERSION (builds AFL++)"
    cargo install --locked "cargo-afl@$CARGO_AFL_VERSION"
  fi
  # cargo-afl builds AFL++ when it is installed; for a toolchain installed later it
  # has to be asked. When AFL++ is already built for this toolchain, this is a no-op
  # that fails ("already built"), so its outcome is checked below instead.
  if ! afl_dir >/dev/null; then
    banner "setup: cargo afl config --build (AFL++ for this toolchain)"
    cargo afl config --build
  fi
  afl_dir >/dev/null || { echo "AFL++ is not built (cargo afl config --build)" >&2; exit 1; }
}

# Where cargo-afl keeps AFL++ for the active toolchain.
afl_dir() {
  local commit
  commit="$(rustc -vV | sed -n 's/^commit-hash: \(.......\).*/\1/p')"
  local d
  for d in "${XDG_DATA_HOME:-$HOME/.local/share}"/afl.rs/rustc-*-"$commit"*/afl.rs-"$CARGO_AFL_VERSION"/afl/bin; do
    [ -x "$d/afl-fuzz" ] && { echo "$d"; return 0; }
  done
  return 1
}

build() {
  banner "fuzz: cargo afl build (instrumented, release)"
  # The fuzz workspace has its own lock file; the same dependency policy holds there.
  local crate out
  for crate in ring openssl openssl-sys; do
    if out="$(cargo tree --locked --manifest-path "$FUZZ/Cargo.toml" --features afl -i "$crate" --target all -e all 2>/dev/null)" \
      && [ -n "$out" ]; then
      echo "$crate is in fuzz/'s dependency tree; it must not be:" >&2
      echo "$out" >&2
      exit 1
    fi
  done
  (cd "$FUZZ" && cargo afl build --locked --release --features afl --bins)
}

# stat FILE KEY: one value of AFL++'s fuzzer_stats.
stat() { sed -n "s/^$2 *: *//p" "$1" | head -1; }

# run TARGET SECONDS: one AFL++ campaign from the seed corpus; prints its figures line.
run_target() {
  local t="$1" secs="$2" out="$FUZZ/out/$1"
  rm -rf "$out"
  mkdir -p "$out"
  local loop=1000000
  case "$t" in
    # The server targets keep state between inputs (resources the fuzzer creates):
    # a fresh process every 20,000 inputs keeps it small.
    token_form|arm|vault) loop=20000 ;;
  esac
  # No UI, no CPU pinning (CI machines are shared), no core-pattern or governor checks
  # (no root sysctl in containers); -V: stop after the time; -t: per-input timeout (ms).
  AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
  AFL_FUZZER_LOOPCOUNT="$loop" AFL_SKIP_CRASHES=0 AFL_NO_WARN_INSTABILITY=1 \
    cargo afl fuzz -i "$FUZZ/corpus/$t" -o "$out" -V "$secs" -t 2000 -m none \
      -- "$FUZZ/target/release/$t" >"$out/afl.log" 2>&1 || {
        echo "afl-fuzz failed for $t (log: $out/afl.log):" >&2
        tail -30 "$out/afl.log" >&2
        return 1
      }
}

report_line() {
  local t="$1" s="$FUZZ/out/$1/default/fuzzer_stats"
  if [ ! -f "$s" ]; then printf '%-11s %s\n' "$t" "no fuzzer_stats"; return; fi
  printf '%-11s %12s %10s %8s %8s %9s %8s %6s\n' "$t" \
    "$(stat "$s" execs_done)" "$(stat "$s" execs_per_sec)" \
    "$(stat "$s" edges_found)" "$(stat "$s" total_edges)" "$(stat "$s" bitmap_cvg)" \
    "$(stat "$s" saved_crashes)" "$(stat "$s" saved_hangs)"
}

fuzz_targets() {
  local secs="$1"; shift
  setup_afl
  build
  local t found=0
  for t in "$@"; do
    banner "fuzz: $t for ${secs}s"
    run_target "$t" "$secs"
  done
  banner "fuzz: results (${secs}s per target)"
  printf '%-11s %12s %10s %8s %8s %9s %8s %6s\n' target execs execs/s edges "of" bitmap crashes hangs
  for t in "$@"; do report_line "$t"; done
  for t in "$@"; do
    local d="$FUZZ/out/$t/default" f n=0
    for f in "$d"/crashes/id:* "$d"/hangs/id:*; do
      [ -f "$f" ] || continue
      mkdir -p "$FUZZ/findings/$t"
      cp "$f" "$FUZZ/findings/$t/$(basename "$(dirname "$f")")-$(basename "$f" | cut -d, -f1 | tr ':' '-')"
      n=$((n + 1))
    done
    if [ "$n" -gt 0 ]; then
      echo "$t: $n crashing or hanging inputs in fuzz/findings/$t/ (replay one: cargo run --manifest-path fuzz/Cargo.toml --example replay -- $t FILE)" >&2
      found=1
    fi
  done
  return "$found"
}

case "$what" in
  list) printf '%s\n' "${TARGETS[@]}" ;;
  replay) replay ;;
  smoke)
    replay
    fuzz_targets "${FUZZ_SMOKE_SECONDS:-15}" "${TARGETS[@]}"
    ;;
  all) fuzz_targets "$seconds" "${TARGETS[@]}" ;;
  *)
    case " ${TARGETS[*]} " in
      *" $what "*) fuzz_targets "$seconds" "$what" ;;
      *) echo "unknown target: $what (targets: ${TARGETS[*]}; or all, smoke, replay, list)" >&2; exit 2 ;;
    esac
    ;;
esac
