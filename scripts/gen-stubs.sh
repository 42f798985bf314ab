#!/usr/bin/env bash
# Generates the Python, TypeScript and Go stubs of proto/ into gen/ with
# buf.gen.yaml, then checks them: the Python modules import and describe
# todo.v1.ToDoService, the TypeScript compiles under `tsc --strict` (with
# scripts/stubs/smoke.ts, which scripts/run-examples.sh runs against a live
# server), and the Go files declare the client and server.
#
# Every plugin is local: no network beyond npm (buf, ts-proto, tsc) and the
# Python environment you bring.
#
# Needs: node/npm; a python with grpcio-tools ($PYTHON, else .venv/bin/python
# as scripts/test.sh makes it, else python3); for Go, protoc-gen-go and
# protoc-gen-go-grpc on PATH (Debian: `apt-get install protoc-gen-go
# protoc-gen-go-grpc`; with Go: `go install` them). Without those two the Go
# target is skipped with a warning, except when CI=true or
# TODO_STUBS_REQUIRE_GO=1.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0

# --- tools ----------------------------------------------------------------------
python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=$PWD/.venv/bin/python; else python=python3; fi
fi
if ! "$python" -c 'import grpc_tools.protoc' 2>/dev/null; then
  echo "gen-stubs: $python cannot import grpc_tools (pip install -r examples/python/requirements.txt)" >&2
  exit 1
fi

# buf.gen.yaml runs `python3`: make that the interpreter chosen above.
shim=$(mktemp -d)
trap 'rm -rf "$shim"' EXIT
printf '#!/bin/sh\nexec %q "$@"\n' "$(command -v "$python")" >"$shim/python3"
chmod +x "$shim/python3"

# ts-proto and tsc, pinned by scripts/stubs/package-lock.json.
if ! cmp -s scripts/stubs/package-lock.json scripts/stubs/node_modules/.installed-lock.json 2>/dev/null; then
  echo "gen-stubs: npm ci in scripts/stubs"
  (cd scripts/stubs && npm ci --no-audit --no-fund --loglevel=error \
    && cp package-lock.json node_modules/.installed-lock.json)
fi

template=buf.gen.yaml
if ! command -v protoc-gen-go >/dev/null || ! command -v protoc-gen-go-grpc >/dev/null; then
  if [ "${CI:-}" = true ] || [ "${TODO_STUBS_REQUIRE_GO:-0}" = 1 ]; then
    echo "gen-stubs: protoc-gen-go and protoc-gen-go-grpc must be on PATH (apt-get install protoc-gen-go protoc-gen-go-grpc)" >&2
    exit 1
  fi
  echo "gen-stubs: SKIPPED Go stubs: protoc-gen-go / protoc-gen-go-grpc not on PATH (apt-get install protoc-gen-go protoc-gen-go-grpc)"
  # The Go plugins are the last entries of buf.gen.yaml.
  template=$shim/buf.gen.yaml
  sed '/^  # --- Go/,$d' buf.gen.yaml >"$template"
  rm -rf gen/go
fi

# --- generate -------------------------------------------------------------------
echo "gen-stubs: buf generate ($template)"
PATH="$shim:$PATH" npx --yes "@bufbuild/buf@${BUF_VERSION}" generate --template "$template"

# --- check ----------------------------------------------------------------------
"$python" - <<'EOF'
import sys
sys.path.insert(0, "gen/python")
from todo.v1 import todo_pb2, todo_pb2_grpc
service = todo_pb2.DESCRIPTOR.services_by_name["ToDoService"]
methods = sorted(m.name for m in service.methods)
assert methods == ["CreateToDo", "DeleteToDo", "GetToDo", "ListToDos", "UpdateToDo"], methods
assert hasattr(todo_pb2_grpc, "ToDoServiceStub") and hasattr(todo_pb2_grpc, "ToDoServiceServicer")
print(f"gen-stubs: Python stubs OK ({service.full_name}: {', '.join(methods)})")
EOF

# gen/ts imports @grpc/grpc-js and @bufbuild/protobuf: let it find them.
ln -sfn ../scripts/stubs/node_modules gen/node_modules
rm -rf gen/.ts-build
scripts/stubs/node_modules/.bin/tsc -p scripts/stubs/tsconfig.json
echo "gen-stubs: TypeScript stubs OK (tsc --strict; smoke program in gen/.ts-build)"

if [ -d gen/go ]; then
  grep -q '^package todov1$' gen/go/todo/v1/todo.pb.go
  grep -q 'func NewToDoServiceClient(' gen/go/todo/v1/todo_grpc.pb.go
  grep -q 'func RegisterToDoServiceServer(' gen/go/todo/v1/todo_grpc.pb.go
  echo "gen-stubs: Go stubs generated ($(protoc-gen-go --version), $(protoc-gen-go-grpc --version); not compiled: no Go toolchain here)"
fi

find gen -path gen/node_modules -prune -o -path gen/.ts-build -prune -o -type f -print | sort
