#!/usr/bin/env bash
# Runs the "Use it from any language" material against REAL processes:
# builds todo-authority, todo-server and todo-client; starts the dev authority
# (temporary state folder, free port) and todo-server (temporary SQLite, free
# port, plaintext gRPC) trusting the authority's CA; waits for health SERVING;
# then runs and checks
#   1. examples/python   MSAL Python, client secret, grpcio stubs from gen/python
#   2. examples/node     MSAL Node, certificate, @grpc/grpc-js + proto-loader
#   3. the TypeScript stubs (gen/ts, ts-proto) with a token from todo-authority
#   4. the README's grpcurl recipes, verbatim (scripts/readme-recipes.sh)
# Both processes are stopped on exit, whatever happens.
#
# Needs what scripts/test.sh installs: .venv with grpcurl, grpcio(-tools) and
# msal ($PYTHON / $TODO_TEST_GRPCURL override), node/npm, jq. Generates the
# stubs (scripts/gen-stubs.sh) when gen/ lacks them. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

python=${PYTHON:-$repo/.venv/bin/python}
grpcurl=${TODO_TEST_GRPCURL:-$repo/.venv/bin/grpcurl}
for tool in "$python" "$grpcurl"; do
  [ -x "$tool" ] || { echo "run-examples: $tool is missing (scripts/test.sh installs it into .venv)" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "run-examples: jq is missing (apt-get install jq)" >&2; exit 1; }

passed=0
step() { printf '\n--- %s\n' "$*"; }
fail() {
  echo "run-examples: FAILED: $*" >&2
  echo "examples: $passed passed, 1 failed"
  exit 1
}
# expect FILE TEXT...: every TEXT must appear in FILE.
expect() {
  local file=$1; shift
  for text in "$@"; do
    grep -qF -- "$text" "$file" || fail "$(basename "$file") lacks: $text"
  done
}

# --- build ------------------------------------------------------------------------
step "building todo-authority, todo-server, todo-client"
cargo build --locked -q -p dev-authority -p todo-server -p todo-client
target_dir=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
bin=$target_dir/debug
for b in todo-authority todo-server todo-client; do
  [ -x "$bin/$b" ] || fail "$bin/$b was not built"
done

if [ ! -f gen/python/todo/v1/todo_pb2_grpc.py ] || [ ! -f gen/.ts-build/scripts/stubs/smoke.js ]; then
  PYTHON=$python scripts/gen-stubs.sh
fi

if ! cmp -s examples/node/package-lock.json examples/node/node_modules/.installed-lock.json 2>/dev/null; then
  step "npm ci in examples/node"
  (cd examples/node && npm ci --no-audit --no-fund --loglevel=error \
    && cp package-lock.json node_modules/.installed-lock.json)
fi

# --- start the authority and the server -------------------------------------------------
work=$(mktemp -d)
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    for log in "$work"/*.log; do
      [ -f "$log" ] && { echo "--- last lines of $(basename "$log")"; tail -n 30 "$log"; }
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

state=$work/authority
step "starting todo-authority (state in $state)"
"$bin/todo-authority" --state-dir "$state" serve --listen 127.0.0.1:0 \
  --address-file "$work/authority-url" >"$work/authority.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [ -s "$work/authority-url" ] && break; sleep 0.1; done
[ -s "$work/authority-url" ] || fail "the authority did not start"

# The daemon's settings: TODO_AUTHORITY, TODO_CLIENT_ID, TODO_SCOPE, secret,
# certificate, key, CA.
"$bin/todo-authority" --state-dir "$state" client-settings daemon >"$work/daemon.env"
settings() { sed -n "s/^$1=//p" "$work/daemon.env"; }
export_settings() {
  local key value
  while IFS='=' read -r key value; do export "$key=$value"; done <"$work/daemon.env"
}
authority=$(settings TODO_AUTHORITY)
scope=$(settings TODO_SCOPE)
ca=$(settings TODO_AUTHORITY_CA_FILE)
api_client_id=${scope#api://}
api_client_id=${api_client_id%/.default}

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server=127.0.0.1:$port
step "starting todo-server on $server (authority $authority/v2.0, API $api_client_id)"
"$bin/todo-server" --listen "$server" --database "sqlite://$work/todo.db" \
  --authority "$authority/v2.0" --client-id "$api_client_id" --authority-ca-file "$ca" \
  >"$work/server.log" 2>&1 &
pids+=($!)
serving=
for _ in $(seq 300); do
  kill -0 "${pids[1]}" 2>/dev/null || fail "todo-server exited"
  if "$grpcurl" -plaintext -max-time 2 "$server" grpc.health.v1.Health/Check 2>/dev/null \
      | grep -q '"SERVING"'; then
    serving=yes
    break
  fi
  sleep 0.1
done
[ -n "$serving" ] || fail "todo-server did not report SERVING"
echo "health: SERVING"

# --- 1. Python ---------------------------------------------------------------------------
step "examples/python (MSAL Python, client secret)"
(
  export_settings
  export TODO_SERVER=http://$server TODO_PYTHON_STUBS=$repo/gen/python
  "$python" examples/python/todo_example.py
) | tee "$work/python.out" || fail "examples/python exited non-zero"
expect "$work/python.out" "azpacr 1" "A second request came from MSAL's token cache." \
  "Refused as expected: UNAUTHENTICATED" "Created to-do" "Updated: \"Eat bread (Python)\"" \
  "Refused as expected: ABORTED" "is gone." "Python example: OK"
passed=$((passed + 1))

# --- 2. Node -----------------------------------------------------------------------------
step "examples/node (MSAL Node, certificate)"
(
  export_settings
  export TODO_SERVER=$server NODE_EXTRA_CA_CERTS=$ca
  node examples/node/todo-example.mjs
) | tee "$work/node.out" || fail "examples/node exited non-zero"
expect "$work/node.out" "azpacr 2" "A second request came from MSAL's token cache." \
  "Refused as expected: UNAUTHENTICATED" "Created to-do" "Updated: \"Eat bread (Node)\"" \
  "Refused as expected: ABORTED" "is gone." "Node example: OK"
passed=$((passed + 1))

# --- 3. TypeScript stubs ------------------------------------------------------------------
step "TypeScript stubs (gen/ts) with a token from todo-authority"
TODO_SERVER=$server TODO_TOKEN=$("$bin/todo-authority" --state-dir "$state" token) \
  node gen/.ts-build/scripts/stubs/smoke.js | tee "$work/ts.out" || fail "the TypeScript stubs smoke run exited non-zero"
expect "$work/ts.out" "TypeScript stubs: created to-do" "OK"
passed=$((passed + 1))

# --- 4. README recipes -------------------------------------------------------------------
step "README grpcurl recipes"
# What the README asks of the reader: the tools on PATH, the authority's state
# folder, the server's address.
grpcurl_dir=$(dirname "$grpcurl")
(
  export PATH="$bin:$grpcurl_dir:$PATH" TODO_AUTHORITY_STATE_DIR=$state SERVER=$server
  scripts/readme-recipes.sh
) >"$work/recipes.out" 2>&1 || { cat "$work/recipes.out"; fail "a README recipe failed"; }
cat "$work/recipes.out"
expect "$work/recipes.out" "todo.v1.ToDoService" "rpc CreateToDo" '"status": "SERVING"' \
  '"description": "Bake bread"' '"description": "Eat bread"' \
  "Code: Unauthenticated" "Code: PermissionDenied" "readme-recipes: all"
passed=$((passed + 1))

step "examples, stubs and README recipes: OK"
echo "examples: $passed passed, 0 failed"
