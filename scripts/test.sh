#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the tools the tests drive
# (grpcurl, Python grpcio-tools and MSAL in .venv, buf through npm), checks the
# contract with `buf lint`, then runs every Rust test.
#
# Needs: cargo, python3 (with venv), node/npm. Set TODO_TEST_SKIP_LINT=1 to
# skip fmt/clippy/buf (they also run in CI).
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv for the test tools"
  python3 -m venv .venv
fi
if ! cmp -s scripts/requirements-test.txt .venv/.requirements 2>/dev/null; then
  echo "==> installing test tools (grpcurl, grpcio-tools, msal) into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  cp scripts/requirements-test.txt .venv/.requirements
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
  echo "==> cargo fmt --check"
  cargo fmt --all -- --check
  echo "==> cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi

echo "==> cargo test"
cargo test --workspace --locked "$@"
