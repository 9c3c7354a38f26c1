#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for SECONDS each (default 60) with cargo-fuzz
# on the nightly toolchain, starting from the committed seeds (fuzz/corpus/<target>) and
# growing a working corpus in fuzz/corpus-work/<target> (not committed). Installs
# cargo-fuzz when it is missing. Prints executions and coverage per target, and stops at
# the first crash: the input is in fuzz/artifacts/<target>/; copy it to
# fuzz/regressions/<target>/ (the test suite replays those) and fix the cause.
#
#   scripts/fuzz.sh            # 60 s per target
#   scripts/fuzz.sh 600        # 10 minutes per target (the runs in docs/security.md)
#   scripts/fuzz.sh 12         # the smoke pass scripts/test.sh runs (under 3 minutes)
#   FUZZ_TARGETS="jws der_differential" scripts/fuzz.sh 30
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-60}
sanitizer=${FUZZ_SANITIZER:-address}
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzzing needs the nightly toolchain (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2
fi

echo "== building the fuzz targets (nightly, sanitizer: $sanitizer)"
cargo +nightly fuzz build -O -s "$sanitizer"

targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}
mkdir -p logs
printf '%-22s %12s %10s %8s %8s\n' target executions exec/s cov features
for t in $targets; do
  mkdir -p "corpus-work/$t"
  log="logs/$t.log"
  if ! cargo +nightly fuzz run -O -s "$sanitizer" "$t" "corpus-work/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
      >"$log" 2>&1; then
    echo "!! $t failed; the last lines of $log:" >&2
    tail -n 40 "$log" >&2
    echo "the input is in fuzz/artifacts/$t/; copy it to fuzz/regressions/$t/ and fix the cause" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  last=$(grep -E '(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  printf '%-22s %12s %10s %8s %8s\n' "$t" "$execs" "$rate" "$cov" "$ft"
done
