#!/usr/bin/env bash
# Bounded fuzzing with cargo-fuzz (libFuzzer) of the token verification path and the request
# decoders. Inputs that once crashed live in fuzz/regressions/<target> and are replayed first.
# Usage: .ci/fuzz.sh   (FUZZ_SECONDS per target, default 60)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECS="${FUZZ_SECONDS:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz@0.13.2
# No sanitizer: the stable toolchain has none; libFuzzer's coverage guidance still applies
# and a Rust panic still aborts the run as a crash.
cargo fuzz build -s none -O
total=0
for t in verify_token decode_requests; do
  mkdir -p "corpus/$t"
  if compgen -G "regressions/$t/*" >/dev/null; then
    echo "== $t: replaying $(ls "regressions/$t" | wc -l) regression inputs"
    cargo fuzz run -s none -O "$t" "regressions/$t" -- -runs=0
  fi
  echo "== $t: fuzzing for ${SECS}s"
  log="$(mktemp)"
  cargo fuzz run -s none -O "$t" "corpus/$t" -- -max_total_time="$SECS" -print_final_stats=1 2>&1 | tee "$log" | tail -n 3
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  echo "$t: $runs executions, no crash"
  total=$((total + runs))
  rm -f "$log"
done
echo "fuzz: $total executions in total, 0 crashes"
