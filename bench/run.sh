#!/usr/bin/env bash
# Reproduces the tables of BENCHMARKS.md (issue #7) in one go:
#   1. builds the release binaries (todo-bench, todo-server, todo-client);
#   2. installs h2load (Debian nghttp2-client) and the peers' pinned
#      dependencies (bench/peers/node: npm ci; bench/peers/python: a venv);
#   3. runs the criterion micro-benchmarks of entra-auth (validation cold,
#      cached, raw RS256) and entra-token-provider (cached token, BearerLayer);
#   4. runs `todo-bench suite` with every scenario, peers and h2load included,
#      and PostgreSQL when one answers on 127.0.0.1:5432.
#
# Usage: bench/run.sh [todo-bench suite flags…]   e.g. bench/run.sh --rounds 5
# Environment: CARGO_TARGET_DIR (default ./target), JOBS (cargo -j, default 2),
#   OUT (report file, default $CARGO_TARGET_DIR/bench-report.md),
#   TODO_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test
#   when pg_isready answers), SKIP_MICRO=1 to skip the criterion step.
# Measurements take about 5 minutes on 2 cores (the first run also compiles).
# Take figures from a quiet machine: 1-minute load average below ~1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
jobs=${JOBS:-2}
out=${OUT:-$CARGO_TARGET_DIR/bench-report.md}

echo "==> machine"
echo "cpus: $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "kernel: $(uname -r)"
echo "rustc: $(rustc --version)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "==> build (release)"
cargo build --release --locked -j "$jobs" -p todo-bench -p todo-server -p todo-client

echo "==> h2load"
if ! command -v h2load >/dev/null; then
  apt-get update -qq && apt-get install -y -qq nghttp2-client
fi
h2load --version | head -1

echo "==> peers: Node (npm ci) and Python (venv, pinned requirements)"
(cd bench/peers/node && npm ci --no-audit --no-fund --silent)
venv=bench/peers/python/.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! cmp -s bench/peers/python/requirements.txt "$venv/.requirements" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r bench/peers/python/requirements.txt
  cp bench/peers/python/requirements.txt "$venv/.requirements"
fi

if [ "${SKIP_MICRO:-0}" != 1 ]; then
  echo "==> criterion micro-benchmarks (entra-auth, entra-token-provider)"
  criterion_flags=(--warm-up-time 1 --measurement-time 3)
  cargo bench --locked -j "$jobs" -p entra-auth --bench validate -- "${criterion_flags[@]}"
  cargo bench --locked -j "$jobs" -p entra-token-provider --bench hot_path -- "${criterion_flags[@]}"
fi

pg=${TODO_BENCH_POSTGRES_URL:-}
if [ -z "$pg" ] && command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then
  pg="postgres://postgres@127.0.0.1:5432/test"
fi

echo "==> todo-bench suite (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
args=(suite --peers --h2load --criterion-dir "$CARGO_TARGET_DIR/criterion" --output "$out")
if [ -n "$pg" ]; then
  args+=(--postgres "$pg")
fi
"$CARGO_TARGET_DIR/release/todo-bench" "${args[@]}" "$@"
echo "==> report written to $out"
