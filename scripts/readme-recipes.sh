#!/usr/bin/env bash
# Extracts the README's shell recipes -- the fenced blocks opened with
# ```sh recipe -- and runs them VERBATIM, in order, in one bash with
# `set -euo pipefail`, so a recipe that stops working fails the build.
#
#   scripts/readme-recipes.sh --print   print the extracted script only
#   scripts/readme-recipes.sh           print it, then run it
#
# The recipes assume what the README says: a running dev authority and
# todo-server; todo-authority, todo-client, grpcurl and jq on PATH; the
# authority's state folder (.todo-authority, or $TODO_AUTHORITY_STATE_DIR);
# and SERVER=host:port when the server does not listen on 127.0.0.1:50051.
# scripts/run-examples.sh sets all of that up and checks the output.
set -euo pipefail
readme=${TODO_README:-"$(dirname "$0")/../README.md"}

script=$(awk '
  /^```sh recipe[[:space:]]*$/ { inside = 1; n++; printf "\n# --- recipe %d (README.md line %d)\n", n, NR; next }
  inside && /^```[[:space:]]*$/ { inside = 0; next }
  inside { print }
  END { if (inside) { print "unterminated recipe block" > "/dev/stderr"; exit 2 } }
' "$readme")
count=$(grep -c '^```sh recipe[[:space:]]*$' "$readme" || true)
if [ "$count" -eq 0 ]; then
  echo "readme-recipes: no \`\`\`sh recipe blocks in $readme" >&2
  exit 1
fi

echo "readme-recipes: $count recipe blocks from $readme:"
printf '%s\n' "$script" | sed 's/^/    /'
[ "${1:-}" = --print ] && exit 0

file=$(mktemp)
trap 'rm -f "$file"' EXIT
printf 'set -euo pipefail\n%s\n' "$script" >"$file"
echo "readme-recipes: running them"
bash "$file"
echo "readme-recipes: all $count recipe blocks ran"
