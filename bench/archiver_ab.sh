#!/usr/bin/env bash
# Before/after of the archiver (issue 14): alternating rounds of two checkouts' CLI on
#   - a directory backup of DIR (first, then unchanged),
#   - a Databend cluster backup from fs storage (first, then unchanged): CLUSTER is a query-node
#     TOML whose fs data_path holds the objects (see the RESULTS.md section for how it was made).
# Each step runs under /usr/bin/time -v; one line per step: variant step wall_s cpu_s maxrss_kB.
# Usage: bench/archiver_ab.sh ROUNDS DIR CLUSTER CHECKOUT_A CHECKOUT_B
set -euo pipefail
rounds=$1 dir=$2 cluster=$3
shift 3
checkouts=("$@")
deno="$(cd "$(dirname "$0")/.." && pwd)/toolchain/node_modules/.bin/deno"
work=$(mktemp -d /tmp/bendsave-ab-XXXXXX)
trap 'rm -rf "$work"' EXIT
step() { # variant step args...
  local name=$1 what=$2 c=$3
  shift 3
  /usr/bin/time -v -o "$work/time" "$deno" run --allow-all --config "$c/deno.json" "$c/cli/main.ts" \
    backup "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  awk -v n="$name" -v s="$what" -F': ' '
    /User time/ {u=$2} /System time/ {y=$2} /Maximum resident/ {m=$2}
    /Elapsed \(wall/ {split($2, a, ":"); w = (length(a) == 3) ? a[1]*3600 + a[2]*60 + a[3] : a[1]*60 + a[2]}
    END {printf "%s %s %.2f %.2f %d\n", n, s, w, u + y, m}' "$work/time"
}
for ((r = 0; r < rounds; r++)); do
  order=(0 1)
  if ((r % 2 == 1)); then order=(1 0); fi
  for i in "${order[@]}"; do
    c=${checkouts[$i]}
    name=$(basename "$c")
    rm -rf "$work/repo" "$work/crepo"
    sync
    step "$name" dir-first "$c" --from "$dir" --to "$work/repo"
    step "$name" dir-unchanged "$c" --from "$dir" --to "$work/repo"
    sync
    step "$name" cluster-first "$c" --from "$cluster" \
      --meta-export-file "$c/testdata/sample-cluster/meta-export.jsonl" --to "$work/crepo"
    step "$name" cluster-unchanged "$c" --from "$cluster" \
      --meta-export-file "$c/testdata/sample-cluster/meta-export.jsonl" --to "$work/crepo"
  done
done
