#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a while over its checked-in seeds.
# The short run in scripts/test.sh (CI) uses this; see README.md.
#
# No cargo-fuzz install and no nightly: it runs `cargo build` with exactly the
# flags `cargo fuzz build -O -s none` uses (libFuzzer with SanitizerCoverage,
# `--cfg fuzzing`, debug assertions), so the two share build artifacts.
# Safe Rust needs no sanitizer; `cargo fuzz run -s address` is for long runs.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]    default: 15 s, every target
#
# Environment: TODO_FUZZ_TARGET_DIR (default fuzz/target) where to build; keep
# it between runs to rebuild only what changed. New inputs go to a temporary
# folder (the seeds are not modified); a crash, timeout or out-of-memory
# fails the run and leaves its input in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-15}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(token claims jwks requests)
fi

host=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR=${TODO_FUZZ_TARGET_DIR:-$PWD/target}
flags=(
  -Cpasses=sancov-module
  -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
  -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares
  --cfg fuzzing
  -Cllvm-args=-simplifycfg-branch-fold-threshold=0
  -Cllvm-args=-sanitizer-coverage-stack-depth
  -Cdebug-assertions
  -Ccodegen-units=1
)
bins=()
for target in "${targets[@]}"; do bins+=(--bin "$target"); done

start=$(date +%s)
# --target keeps the instrumentation off build scripts and proc macros.
# Not --locked: a dependency added to the main crates is added to
# fuzz/Cargo.lock (every version already pinned there stays).
RUSTFLAGS="${flags[*]}" cargo build --release \
  --config 'profile.release.debug="line-tables-only"' \
  --target "$host" "${bins[@]}"
echo "==> fuzz targets built in $(($(date +%s) - start)) s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in "${targets[@]}"; do
  mkdir -p "$work/$target" "artifacts/$target"
  echo "==> fuzzing $target for ${seconds} s"
  # First folder: where new inputs go; the seeds are read only.
  status=0
  "$CARGO_TARGET_DIR/$host/release/$target" "$work/$target" "corpus/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1 \
    >"$work/$target.log" 2>&1 || status=$?
  grep -E '^(#[0-9]+ +DONE|INFO: seed corpus|stat::number_of_executed_units|stat::peak_rss)' \
    "$work/$target.log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$work/$target.log" >&2
    echo "fuzz target $target FAILED (exit $status); its input is in fuzz/artifacts/$target/;" \
      "reproduce with: $CARGO_TARGET_DIR/$host/release/$target fuzz/artifacts/$target/<file>" >&2
    exit 1
  fi
done
echo "==> fuzzing done in $(($(date +%s) - start)) s"
