#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the tools the tests drive
# (grpcurl, Python grpcio-tools and MSAL in .venv, buf through npm), checks the
# contract with `buf lint` and `buf breaking` against main, runs every Rust
# test, then generates the Python/TypeScript/Go stubs and runs the examples and
# README recipes against a live dev authority and server.
#
# Needs: cargo, python3 (with venv), node/npm, jq; for the Go stubs
# protoc-gen-go and protoc-gen-go-grpc (skipped without them, except in CI).
# Set TODO_TEST_SKIP_LINT=1 to skip fmt/clippy/buf (they also run in CI), and
# TODO_TEST_SKIP_EXAMPLES=1 to skip the stubs and examples steps, and
# TODO_TEST_SKIP_FUZZ=1 to skip the short fuzzing run.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv for the test tools"
  python3 -m venv .venv
fi
requirements=$(cat scripts/requirements-test.txt examples/python/requirements.txt)
if [ "$requirements" != "$(cat .venv/.requirements 2>/dev/null)" ]; then
  echo "==> installing test tools (grpcurl, grpcio-tools, msal) into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check \
    -r scripts/requirements-test.txt -r examples/python/requirements.txt
  printf '%s\n' "$requirements" >.venv/.requirements
fi
export TODO_TEST_PYTHON="$PWD/.venv/bin/python"
export TODO_TEST_GRPCURL="$PWD/.venv/bin/grpcurl"
"$TODO_TEST_GRPCURL" --version

# PostgreSQL tests: use TODO_TEST_POSTGRES_URL when set, else a local server
# if one answers; without one they print SKIPPED (CI sets the URL and
# requires it).
if [ -z "${TODO_TEST_POSTGRES_URL:-}" ] && command -v pg_isready >/dev/null \
   && pg_isready -q -h 127.0.0.1 -p 5432; then
  export TODO_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/test"
fi
echo "==> PostgreSQL for tests: ${TODO_TEST_POSTGRES_URL:-none (PostgreSQL tests will be SKIPPED)}"

if [ "${TODO_TEST_SKIP_LINT:-0}" != 1 ]; then
  echo "==> buf lint (proto/)"
  npx --yes "@bufbuild/buf@${BUF_VERSION}" lint
  # On main this compares main with itself; on a branch it catches any change
  # to proto/ that would break existing clients or stubs.
  if git rev-parse -q --verify refs/heads/main >/dev/null; then
    against='.git#branch=main'
  elif git rev-parse -q --verify refs/remotes/origin/main >/dev/null; then
    against='.git#ref=refs/remotes/origin/main'
  else
    echo "no main branch to compare proto/ with" >&2
    exit 1
  fi
  echo "==> buf breaking (proto/ against $against)"
  npx --yes "@bufbuild/buf@${BUF_VERSION}" breaking --against "$against"
  echo "==> cargo fmt --check"
  cargo fmt --all -- --check
  echo "==> cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi

echo "==> cargo test"
cargo_log=$(mktemp)
trap 'rm -f "$cargo_log"' EXIT
cargo test --workspace --locked "$@" 2>&1 | tee "$cargo_log"

# Short fuzzing run (fuzz/README.md): the cargo-fuzz targets (bearer tokens,
# signed claims, JWKS, ToDo requests) built with libFuzzer instrumentation by
# plain cargo (no cargo-fuzz install, no nightly), 12 s each over the checked-in
# seeds; any crash fails. 1.5-2 min once the dependencies are built (cached
# in ~/.cache/todo-fuzz); the first build takes 4-5 min more.
# TODO_TEST_SKIP_FUZZ=1 skips it.
if [ "${TODO_TEST_SKIP_FUZZ:-0}" != 1 ]; then
  echo "==> fuzzing smoke run (fuzz/run.sh, 4 targets x ${TODO_FUZZ_SECONDS:-12} s)"
  TODO_FUZZ_TARGET_DIR="${TODO_FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/todo-fuzz/target}" \
    fuzz/run.sh "${TODO_FUZZ_SECONDS:-12}"
fi

# Benchmarks are not part of `cargo test` (bench/run.sh runs them); this
# few-second run of the harness (dev authority, bench servers, load, key
# rollover, SIGKILL durability check, client cold start) keeps it from
# rotting: it fails unless every scenario produced numbers and no errors.
echo "==> benchmark harness smoke run (todo-bench smoke)"
cargo run --locked -q -p todo-bench -- smoke

if [ "${TODO_TEST_SKIP_EXAMPLES:-0}" != 1 ]; then
  echo "==> stubs: buf generate for Python, TypeScript and Go (buf.gen.yaml), then check them"
  PYTHON="$TODO_TEST_PYTHON" scripts/gen-stubs.sh

  echo "==> examples (Python MSAL, Node MSAL, TypeScript stubs) and README grpcurl recipes"
  echo "    against a live todo-authority and todo-server"
  PYTHON="$TODO_TEST_PYTHON" scripts/run-examples.sh
fi

# One closing line for the whole run: the Rust tests' totals (ignored tests
# are the crash-test child server, started by its parent test).
awk '/^test result:/ { p += $4; f += $6; i += $8 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$cargo_log"
