#!/usr/bin/env bash
# Instructions per GetToDo call on the server, counted by valgrind's callgrind
# (deterministic: unaffected by other load on the machine), for the three
# variants of the ceiling comparison:
#   ceiling      --auth none, no authorization header
#   header       --auth none, the bearer header sent but not checked
#   auth         --auth entra (production layer, verified-token cache hit)
# Each server runs under callgrind; after a warm-up the counters are zeroed,
# h2load sends exactly $CALLS calls (4 connections × 16 streams), and the
# counters are dumped. Output: Ir per call and the top functions of each.
# GENERATOR=bench uses todo-bench load (tonic) instead of h2load.
#
# Usage: bench/callgrind.sh   (needs valgrind, h2load and a release build)
# Environment: CALLS (default 4000), VARIANTS (default "ceiling header auth"),
#   KEEP=1 keeps the callgrind files for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
bench=${BENCH_BIN:-$CARGO_TARGET_DIR/release/todo-bench}
calls=${CALLS:-4000}
work=$(mktemp -d)
if [ "${KEEP:-0}" = 1 ]; then
  echo "keeping the callgrind files in $work"
else
  trap 'rm -rf "$work"' EXIT
fi

# A dev authority (kept alive by an open pipe on its stdin).
mkfifo "$work/authority.in"
"$bench" authority <"$work/authority.in" >"$work/authority.env" 2>/dev/null &
authority_pid=$!
exec 3>"$work/authority.in"
for _ in $(seq 100); do grep -q TODO_BENCH_TOKEN "$work/authority.env" && break; sleep 0.1; done
set -a
# shellcheck disable=SC1091
. "$work/authority.env"
set +a

"$bench" h2load-request --id 1 --out "$work/get.bin" >/dev/null

run() {
  local name=$1 auth=$2 header=$3
  mkfifo "$work/$name.in"
  valgrind --tool=callgrind --callgrind-out-file="$work/$name.%p.out" \
    "$bench" serve --auth "$auth" --store memory \
    --authority "$TODO_AUTHORITY" --client-id "$TODO_CLIENT_ID" \
    --authority-ca-file "$TODO_AUTHORITY_CA_FILE" \
    <"$work/$name.in" >"$work/$name.stdout" 2>"$work/$name.log" &
  local pid=$!
  exec 4>"$work/$name.in"
  for _ in $(seq 600); do grep -q LISTENING "$work/$name.stdout" && break; sleep 0.1; done
  local addr
  addr=$(sed -n 's/^LISTENING //p' "$work/$name.stdout")
  # Seed to-do 1 and warm up connections, caches and the allocator.
  "$bench" load --target "http://$addr" --seed 1 --duration 2 --warmup 0 \
    --connections 1 --concurrency 4 >/dev/null
  callgrind_control -z "$pid" >/dev/null
  if [ "${GENERATOR:-h2load}" = h2load ]; then
    local h=(-H 'content-type: application/grpc' -H 'te: trailers')
    if [ "$header" = yes ]; then h+=(-H "authorization: Bearer $TODO_BENCH_TOKEN"); fi
    h2load -n "$calls" -c 4 -m 16 -t 1 -d "$work/get.bin" "${h[@]}" \
      "http://$addr/todo.v1.ToDoService/GetToDo" | grep -E '^(finished|requests)'
  else
    # Our generator (tonic over h2) for $SECONDS_LOAD seconds; 16 calls in
    # flight, so the few calls finishing after the deadline (not counted)
    # change the per-call figure by well under 1 %.
    local token=()
    if [ "$header" = yes ]; then token=(--token "$TODO_BENCH_TOKEN"); fi
    calls=$(env -u TODO_BENCH_TOKEN "$bench" load --target "http://$addr" --seed 0 --ids 1 "${token[@]}" \
      --duration "${SECONDS_LOAD:-5}" --warmup 0 --connections 4 --concurrency 16 \
      | sed -n 's/.* calls \([0-9]*\) .*/\1/p')
    echo "todo-bench load: $calls calls"
  fi
  callgrind_control -d "$pid" >/dev/null
  exec 4>&-
  wait "$pid" || true
  local out
  # The explicit dump (part 1) holds exactly the h2load calls.
  out=$(ls "$work/$name".*.out.1)
  local total
  total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
  echo "$name: $((total / calls)) instructions per call ($total for $calls calls)"
  # Self cost per function; the thread and runtime frames above them show
  # (near) 100 % and are skipped.
  callgrind_annotate --inclusive=no --threshold=100 "$out" 2>/dev/null \
    | sed -n '/file:function/,$p' | grep -E '^ *[0-9,]+ \(' | grep -vE '\((100\.0|99\.9[0-9])%\)' \
    | sed -n 1,15p | sed -E 's#/root/.cargo/registry/src/[^/]+/##; s# \[[^]]*\]$##' | cut -c1-150
  echo
}

for variant in ${VARIANTS:-ceiling header auth}; do
  case $variant in
    ceiling) run ceiling none no ;;
    header) run header none yes ;;
    auth) run auth entra yes ;;
  esac
done

exec 3>&-
wait "$authority_pid" || true
