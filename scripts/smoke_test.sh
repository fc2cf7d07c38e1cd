#!/usr/bin/env bash
# End-to-end test of the single executable (dist/bendsave, from `deno task compile`),
# run as on an air-gapped DR site: a copy of the binary in a fresh scratch
# directory, an empty environment (`env -i`, no HOME, no XDG_*), a PATH with no
# deno, node or bun on it, an empty working directory and, where the kernel
# lets us (root, or user namespaces), no network at all (`unshare -n`).
#
#   bash scripts/smoke_test.sh [path/to/bendsave]
#
# Environment: KEEP_SCRATCH=1 keeps the scratch directory; SMOKE_WORKER_MIB
# (default 48) sizes the tree of the worker check; SMOKE_REQUIRE_WORKERS=0
# reports instead of failing when no reader worker thread is seen.
# Exits 0 when every check passes, 1 (with "SMOKE TEST FAILED: ...") otherwise.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
bin_src="${1:-$repo/dist/bendsave}"
worker_mib="${SMOKE_WORKER_MIB:-48}"
require_workers="${SMOKE_REQUIRE_WORKERS:-1}"

checks=0
fail() {
  echo "SMOKE TEST FAILED: $*" >&2
  scratch_keep=1
  exit 1
}
ok() {
  checks=$((checks + 1))
  echo "ok $checks - $*"
}
note() { echo "# $*"; }

[ -f "$bin_src" ] || fail "no binary at $bin_src: run \`deno task compile\` first"
[ -x "$bin_src" ] || fail "$bin_src is not executable"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/bendsave-smoke.XXXXXX")"
scratch_keep="${KEEP_SCRATCH:-0}"
cleanup() {
  if [ "$scratch_keep" = 1 ]; then
    echo "# scratch directory kept: $scratch"
  else
    rm -rf "$scratch"
  fi
}
trap cleanup EXIT

mkdir -p "$scratch/bin" "$scratch/cwd" "$scratch/data" "$scratch/out"
bin="$scratch/bin/bendsave"
cp "$bin_src" "$bin"
chmod 755 "$bin"
cwd="$scratch/cwd"
data="$scratch/data"
size=$(stat -c %s "$bin")
note "binary: $bin_src ($size bytes, $((size / 1048576)) MiB), copied to $bin"

if [ -f "$bin_src.sha256" ]; then
  (cd "$(dirname "$bin_src")" && sha256sum -c --quiet "$(basename "$bin_src").sha256") ||
    fail "$bin_src does not match $bin_src.sha256"
  ok "sha256 matches $(basename "$bin_src").sha256"
fi

# ---------------------------------------------------------------- the sandbox

# PATH=/usr/bin:/bin, unless a JavaScript runtime lives there (node does on
# many build machines): then a directory of links to everything in it but those.
safe_path=/usr/bin:/bin
if env -i PATH="$safe_path" /bin/sh -c 'command -v deno || command -v node || command -v bun' >/dev/null 2>&1; then
  mkdir -p "$scratch/path"
  for d in /usr/bin /bin; do
    for f in "$d"/*; do
      name="${f##*/}"
      case "$name" in
        deno | denort | node | nodejs | bun | bunx | npm | npx | corepack | yarn | pnpm) continue ;;
      esac
      [ -e "$scratch/path/$name" ] || ln -s "$f" "$scratch/path/$name"
    done
  done
  safe_path="$scratch/path"
  note "node/deno/bun is in /usr/bin:/bin here: PATH is $safe_path (links to /usr/bin and /bin without them)"
fi
for rt in deno node bun; do
  if env -i PATH="$safe_path" /bin/sh -c "command -v $rt" >/dev/null 2>&1; then
    fail "$rt is on the test PATH ($safe_path)"
  fi
done
ok "no deno, node or bun on the test's PATH"

netns=()
if unshare -n true >/dev/null 2>&1; then
  netns=(unshare -n)
  note "network: every run is in an empty network namespace (unshare -n): no network at all"
elif unshare -r -n true >/dev/null 2>&1; then
  netns=(unshare -r -n)
  note "network: every run is in an empty user+network namespace (unshare -r -n): no network at all"
else
  note "network: cannot be cut here (unshare -n not permitted); runs use env -i and no HOME/XDG only"
fi

# bs <args...>: runs the binary as on the DR site; sets rc, and out/err files.
out="$scratch/out/stdout"
err="$scratch/out/stderr"
bs() {
  set +e
  (cd "$cwd" && ${netns[@]+"${netns[@]}"} env -i PATH="$safe_path" "$bin" "$@") >"$out" 2>"$err"
  rc=$?
  set -e
}
show() {
  echo "--- command: bendsave $*" >&2
  echo "--- stdout:" >&2
  tail -n 20 "$out" >&2
  echo "--- stderr:" >&2
  tail -n 20 "$err" >&2
}
# expect <exit code> <description> -- <args...>
expect() {
  local want="$1" what="$2"
  shift 3
  bs "$@"
  if [ "$rc" != "$want" ]; then
    show "$@"
    fail "$what: bendsave $* exited $rc, expected $want"
  fi
  ok "$what (exit $rc)"
}
# A top-level field of the summary line of NDJSON output, e.g. summary_field added_bytes
# (the first match: nested objects such as "parts" come after the top-level fields).
summary_field() {
  grep '"type":"summary"' "$out" | tail -n 1 | grep -o "\"$1\":[^,}]*" | head -n 1 | cut -d: -f2 | tr -d '"'
}

# ---------------------------------------------------------------- --version, --help

expect 0 "--version" -- --version
[[ "$(head -n 1 "$out")" == "bendsave "* ]] || fail "--version does not start with 'bendsave ': $(head -n 1 "$out")"
grep -q '^built: ' "$out" || fail "--version does not say how it was built"
grep -q '^built: from source' "$out" && fail "--version says 'from source': the build did not stamp BUILD_INFO"
sed 's/^/#   /' "$out"
[ "$(grep -c '^bendsave ' "$out")" = 1 ] || fail "--version printed its header more than once"

expect 0 "--help" -- --help
help="$(cat "$out")"
has_command() { grep -Eq "^[[:space:]]+$1([[:space:]]|\$)" <<<"$help"; }

# ---------------------------------------------------------------- the test tree

src="$data/src"
mkdir -p "$src/dir/sub/deep" "$src/dir/empty_sub" "$src/empty_dir" "$src/private"
head -c $((5 * 1048576 + 12345)) /dev/urandom >"$src/big.bin"
# compressible, multi-MiB, with repeated content (dedup within the file)
for i in $(seq 1 40000); do echo "line $((i % 700)) of a compressible text file"; done >"$src/dir/text.log"
: >"$src/empty_file"
echo "deep" >"$src/dir/sub/deep/file.txt"
printf 'with a space and UTF-8\n' >"$src/dir/with space é.txt"
printf '#!/bin/sh\necho hi\n' >"$src/run.sh"
chmod 0755 "$src/run.sh"
echo "secret" >"$src/private/key"
chmod 0600 "$src/private/key"
chmod 0700 "$src/private"
ln -s dir/sub/deep/file.txt "$src/link"
ln -s ../../nowhere "$src/dir/dangling"
# distinct mtimes (files first, then directories bottom-up, as a restore must)
touch -d '2021-03-04 05:06:07' "$src/big.bin"
touch -d '2020-01-02 03:04:05' "$src/dir/text.log" "$src/empty_file" "$src/dir/with space é.txt"
touch -d '2019-06-07 08:09:10' "$src/run.sh" "$src/dir/sub/deep/file.txt" "$src/private/key"
touch -h -d '2018-05-06 07:08:09' "$src/link" "$src/dir/dangling"
touch -d '2017-01-01 00:00:01' "$src/dir/sub/deep" "$src/dir/empty_sub" "$src/empty_dir"
touch -d '2017-01-01 00:00:02' "$src/dir/sub" "$src/private"
touch -d '2017-01-01 00:00:03' "$src/dir"
touch -d '2017-01-01 00:00:04' "$src"
note "test tree: $(find "$src" | wc -l) entries, $(du -sk "$src" | cut -f1) KiB"
repo_dir="$data/repo"

# ---------------------------------------------------------------- backups

expect 0 "backup (first, creates the repository)" -- backup --from "$src" --to "$repo_dir" --json
added1="$(summary_field added_bytes)"
[ -n "$added1" ] && [ "$added1" -gt 0 ] || fail "first backup: added_bytes is '$added1'"
[ "$(summary_field kind)" = full ] || fail "first backup: kind is '$(summary_field kind)', expected full"
first="$(summary_field name)"
note "first backup $first added $added1 bytes"

expect 0 "backup (second, incremental)" -- backup --from "$src" --to "$repo_dir" --json
added2="$(summary_field added_bytes)"
[ "$added2" = 0 ] || fail "second backup of an unchanged tree added '$added2' bytes, expected 0"
[ "$(summary_field kind)" = incremental ] || fail "second backup: kind is '$(summary_field kind)'"
ok "second backup added 0 bytes"

expect 0 "backup (human output)" -- backup --from "$src" --to "$data/repo_human"
grep -q 'created repository' "$out" || note "(the human summary does not mention the new repository)"

expect 0 "list --json" -- list "$repo_dir" --json
n="$(grep -Eo '"name": *"[^"]*\.manifest"' "$out" | wc -l)"
[ "$n" = 2 ] || { show list; fail "list --json shows $n backups, expected 2"; }
ok "list --json shows 2 backups"
expect 0 "list" -- list "$repo_dir"

# ---------------------------------------------------------------- restores

target="$data/restore"
expect 0 "restore dry run" -- restore --from "$repo_dir" --to "$target"
if [ -e "$target" ] && [ -n "$(ls -A "$target")" ]; then fail "the dry run wrote into $target"; fi
ok "the dry run wrote nothing"

expect 0 "restore --confirm" -- restore --from "$repo_dir" --to "$target" --confirm

compare() { # compare <a> <b> <what>
  if ! diff -r --no-dereference "$1" "$2" >"$scratch/out/diff" 2>&1; then
    cat "$scratch/out/diff" >&2
    fail "$3: contents differ"
  fi
  # Everything below the top directory; the target directory itself is the
  # user's (the library does not give it the source directory's mode and mtime).
  (cd "$1" && find . -mindepth 1 -exec stat -c '%a %Y %F %n' {} + | LC_ALL=C sort -k4) >"$scratch/out/meta_a"
  (cd "$2" && find . -mindepth 1 -exec stat -c '%a %Y %F %n' {} + | LC_ALL=C sort -k4) >"$scratch/out/meta_b"
  if ! diff "$scratch/out/meta_a" "$scratch/out/meta_b" >"$scratch/out/diff"; then
    cat "$scratch/out/diff" >&2
    fail "$3: modes, mtimes or types differ (stat -c '%a %Y %F %n': < source, > restore)"
  fi
  ok "$3: same contents, types, modes and mtimes ($(wc -l <"$scratch/out/meta_a") entries)"
}
compare "$src" "$target" "restore of the latest backup"

expect 2 "restore into a non-empty directory without --overwrite" -- restore --from "$repo_dir" --to "$target" --confirm
echo "changed" >"$target/dir/sub/deep/file.txt"
expect 0 "restore --overwrite" -- restore --from "$repo_dir" --to "$target" --confirm --overwrite
compare "$src" "$target" "restore --overwrite"

expect 0 "restore of a named backup" -- restore --from "$repo_dir/manifests/$first" --to "$data/restore_first" --confirm
compare "$src" "$data/restore_first" "restore of $first"

# ---------------------------------------------------------------- encrypted repositories

# The binary's Argon2id (the runtime's own, where it has one) must derive the keys every
# bendsave derives: the golden repository's key slot was written by the Deno build.
printf 'golden fixture passphrase v2.0\n' >"$data/golden_pass"
cp -r "$repo/testdata/golden/v2.0-encrypted/repo" "$data/golden_enc"
expect 4 "restore of an encrypted repository without its passphrase" -- restore --from "$data/golden_enc" --to "$data/golden_out" --confirm
expect 0 "restore of the golden encrypted repository" -- restore --from "$data/golden_enc" --to "$data/golden_out" --confirm --password-file "$data/golden_pass"
files=0
while IFS= read -r f; do
  sum=$(sha256sum "$f" | cut -d' ' -f1)
  grep -q "\"sha256\": \"$sum\"" "$repo/testdata/golden/v2.0-encrypted/expected.json" ||
    fail "golden encrypted restore: $f (SHA-256 $sum) is not in expected.json"
  files=$((files + 1))
done < <(find "$data/golden_out" -type f)
[ "$files" -gt 0 ] || fail "golden encrypted restore wrote no files"
ok "golden encrypted restore: all $files files as expected.json has them"
printf 'smoke test passphrase\n' >"$data/enc_pass"
expect 0 "backup --encrypt" -- backup --encrypt --from "$src" --to "$data/enc_repo" --password-file "$data/enc_pass"
expect 0 "restore from the new encrypted repository" -- restore --from "$data/enc_repo" --to "$data/enc_out" --confirm --password-file "$data/enc_pass"
compare "$src" "$data/enc_out" "restore of the encrypted backup"

# ---------------------------------------------------------------- errors

expect 2 "backup from a missing directory" -- backup --from "$data/missing" --to "$repo_dir"
expect 2 "list of a missing repository" -- list "$data/missing_repo"
expect 2 "restore from a missing repository" -- restore --from "$data/missing_repo" --to "$data/r2"
expect 2 "unknown command" -- frobnicate
expect 2 "unknown option" -- backup --from "$src" --to "$repo_dir" --no-such-option

# ---------------------------------------------------------------- verify / vacuum (when there)

if has_command verify; then
  expect 0 "verify" -- verify "$repo_dir"
else
  note "verify: not in this binary's --help, skipped"
fi
if has_command vacuum; then
  expect 0 "vacuum" -- vacuum "$repo_dir"
  if has_command verify; then expect 0 "verify after vacuum" -- verify "$repo_dir"; fi
  rm -rf "$data/restore_after_vacuum"
  expect 0 "restore after vacuum" -- restore --from "$repo_dir" --to "$data/restore_after_vacuum" --confirm
  compare "$src" "$data/restore_after_vacuum" "restore after vacuum"
else
  note "vacuum: not in this binary's --help, skipped"
fi

# ---------------------------------------------------------------- a Databend cluster

# The sample cluster, copied: its query-node config names ./storage beside it.
cluster="$data/cluster"
cp -r "$repo/testdata/sample-cluster" "$cluster"
node="$data/restored-node"
mkdir -p "$node"
cp "$cluster/query-node.toml" "$node/query-node.toml"
expect 0 "backup of a Databend cluster (meta export from a file)" -- \
  backup --from "$cluster/query-node.toml" --meta-export-file "$cluster/meta-export.jsonl" --to "$data/cluster_repo"
grep -q 'catalog    3 databases, 6 tables' "$out" || { show; fail "the cluster backup did not record the catalog"; }
expect 0 "show the cluster backup's catalog" -- show "$data/cluster_repo"
grep -q 'analytics.orders_shared (id 75) at 8/32/' "$out" || { show; fail "show does not print the attached table's prefix"; }
expect 0 "cluster restore dry run" -- restore --from "$data/cluster_repo" --to "$node/query-node.toml"
[ ! -e "$node/storage" ] || fail "the cluster restore dry run wrote the storage"
expect 0 "cluster restore into a fresh node" -- \
  restore --from "$data/cluster_repo" --to "$node/query-node.toml" --meta-export-to "$node/meta.jsonl" --confirm
diff -r "$cluster/storage" "$node/storage" >/dev/null || fail "the restored cluster storage differs"
cmp -s "$cluster/meta-export.jsonl" "$node/meta.jsonl" || fail "the restored meta export differs"
ok "restored cluster storage and meta export are identical"
expect 2 "cluster restore into non-empty storage without --overwrite" -- \
  restore --from "$data/cluster_repo" --to "$node/query-node.toml" --meta-export-to "$node/meta2.jsonl" --confirm
expect 1 "cluster backup with no meta service (no network)" -- \
  backup --from "$cluster/query-node.toml" --to "$data/cluster_repo"
[ "$(wc -l <"$err")" = 1 ] || { show; fail "the unreachable meta service error is not one line"; }

# The meta export over gRPC from a test meta service on loopback (needs the repository's
# deno to run the service; the binary runs under env -i, but outside the empty network
# namespace, which would hide the service's loopback).
deno_bin="$repo/toolchain/node_modules/.bin/deno"
if [ -x "$deno_bin" ]; then
  "$deno_bin" run --allow-all "$repo/testing/serve_meta.ts" "$cluster/meta-export.jsonl" --seconds 120 \
    >"$scratch/out/meta-endpoint" 2>"$scratch/out/meta-service.err" &
  meta_pid=$!
  for _ in $(seq 1 100); do
    [ -s "$scratch/out/meta-endpoint" ] && break
    sleep 0.1
  done
  endpoint="$(head -n 1 "$scratch/out/meta-endpoint")"
  [[ "$endpoint" == 127.0.0.1:* ]] || { kill "$meta_pid" 2>/dev/null; fail "the test meta service did not start: $(cat "$scratch/out/meta-service.err")"; }
  sed "s|^endpoints = .*|endpoints = [\"$endpoint\"]|" "$cluster/query-node.toml" >"$cluster/query-node-grpc.toml"
  set +e
  (cd "$cwd" && env -i PATH="$safe_path" "$bin" backup --from "$cluster/query-node-grpc.toml" --to "$data/cluster_grpc_repo") >"$out" 2>"$err"
  rc=$?
  set -e
  kill "$meta_pid" 2>/dev/null || true
  [ "$rc" = 0 ] || { show backup --from "$cluster/query-node-grpc.toml"; fail "cluster backup with the meta export over gRPC exited $rc"; }
  grid="$data/grpc-node"
  mkdir -p "$grid"
  cp "$cluster/query-node.toml" "$grid/query-node.toml"
  expect 0 "restore of the gRPC cluster backup" -- \
    restore --from "$data/cluster_grpc_repo" --to "$grid/query-node.toml" --meta-export-to "$grid/meta.jsonl" --confirm
  cmp -s "$cluster/meta-export.jsonl" "$grid/meta.jsonl" || fail "the meta export taken over gRPC differs"
  ok "the meta export taken over gRPC by the binary is identical"
else
  note "no deno at $deno_bin: the gRPC meta export is not checked with the binary"
fi

# ---------------------------------------------------------------- nothing else touched

[ -z "$(ls -A "$cwd")" ] || fail "the binary left files in its working directory: $(ls -A "$cwd")"
ok "the working directory is still empty"

if command -v strace >/dev/null 2>&1 && strace -f -qq -o /dev/null true >/dev/null 2>&1; then
  trace="$scratch/out/strace"
  set +e
  (cd "$cwd" && strace -f -qq -e trace=network,execve -e signal=none -o "$trace" \
    env -i PATH="$safe_path" "$bin" backup --from "$src" --to "$data/repo_strace" >/dev/null 2>&1)
  rc=$?
  set -e
  [ "$rc" = 0 ] || fail "backup under strace exited $rc"
  grep -v socketpair "$trace" | grep -E '\b(socket|connect|bind|sendto|sendmsg|listen)\(' >"$trace.net" || true
  if [ -s "$trace.net" ]; then
    head "$trace.net" >&2
    fail "the binary made network system calls during a backup"
  fi
  others="$(grep -E '\bexecve\(' "$trace" | grep -v "execve(\"$bin\"" | grep -Ev 'execve\("[^"]*/env"' || true)"
  [ -z "$others" ] || fail "the binary started other programs: $others"
  ok "strace: a backup makes no network system call and starts no other program"
else
  note "strace not available: network/exec system calls not traced"
fi

# ---------------------------------------------------------------- workers, start-up

wsrc="$data/worker_src"
mkdir -p "$wsrc"
per=$((worker_mib / 8))
[ "$per" -ge 1 ] || per=1
for i in 1 2 3 4 5 6 7 8; do
  mkdir -p "$wsrc/d$i"
  head -c $((per * 1048576 / 2)) /dev/urandom >"$wsrc/d$i/random"
  head -c $((per * 1048576 / 2 * 3 / 4)) /dev/urandom | base64 -w 76 >"$wsrc/d$i/text"
done
wbytes=$(du -sb "$wsrc" | cut -f1)

# timed_run <repo> [args]: a backup of the worker tree; sets wall (s) and cpu (% of one core).
timed_run() {
  local r="$1" times
  shift
  times="$( { TIMEFORMAT='%R %U %S'; time (cd "$cwd" && env -i PATH="$safe_path" "$bin" backup \
    --from "$wsrc" --to "$r" "$@" >/dev/null 2>"$err"); } 2>&1)" ||
    { cat "$err" >&2; fail "backup of the worker tree ($*) failed"; }
  wall=$(echo "$times" | awk '{ printf "%.2f", $1 }')
  cpu=$(echo "$times" | awk '{ printf "%d", ($1 > 0 ? 100 * ($2 + $3) / $1 : 0) }')
}
# sampled_run <repo>: a backup of the worker tree, sampling the binary's
# threads; reader workers are threads named "Worker" (bun) or "worker-N"
# (deno). Sets wthreads to the most seen at once.
sampled_run() {
  local pid n
  wthreads=0
  (cd "$cwd" && exec env -i PATH="$safe_path" "$bin" backup --from "$wsrc" --to "$1" >/dev/null 2>"$err") &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    n=$(cat /proc/"$pid"/task/*/comm 2>/dev/null | grep -ci '^worker' || true)
    [ "$n" -gt "$wthreads" ] && wthreads=$n
    sleep 0.02
  done
  wait "$pid" || { cat "$err" >&2; fail "backup of the worker tree exited non-zero"; }
}
timed_run "$data/repo_timed"
note "backup of $((wbytes / 1048576)) MiB: ${wall} s, ${cpu}% CPU (nproc $(nproc))"
if bs backup --help && grep -q -- '--workers' "$out"; then
  timed_run "$data/repo_noworkers" --workers 0
  note "same with --workers 0 (in-process reading): ${wall} s, ${cpu}% CPU"
fi
sampled_run "$data/repo_sampled"
if [ "$wthreads" -gt 0 ]; then
  ok "reader workers run in the binary ($wthreads worker threads seen during a backup)"
elif [ "$require_workers" = 1 ]; then
  fail "no reader worker thread seen during a ${worker_mib} MiB backup (SMOKE_REQUIRE_WORKERS=0 to only report)"
else
  note "no reader worker thread seen (the backup read in-process?)"
fi

total=0
for i in 1 2 3 4 5 6 7 8 9 10; do
  t0=$(date +%s%N)
  (cd "$cwd" && env -i PATH="$safe_path" "$bin" --version >/dev/null)
  t1=$(date +%s%N)
  total=$((total + t1 - t0))
done
startup_ms=$(awk -v t="$total" 'BEGIN { printf "%.1f", t / 10 / 1e6 }')

echo
echo "# binary size:  $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }') MiB)"
echo "# start-up:     ${startup_ms} ms (bendsave --version, average of 10)"
echo "# built:        $(sed -n 's/^built: //p' <(cd "$cwd" && env -i PATH="$safe_path" "$bin" --version))"
echo "smoke test: $checks passed, 0 failed"
