import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {
  cli,
  describeTree,
  filesUnder,
  lastOfType,
  makeTree,
  randomBytes,
  tempDir,
} from "../testing/mod.ts";

Deno.test("backup and restore round-trip a tree with its metadata", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"));
  const repo = path.join(t.dir, "repo");
  const b = await cli(["backup", "--from", src, "--to", repo, "--json"]);
  assert.equal(b.code, 0, b.stderr);
  const summary = lastOfType(b.stdout, "summary");
  assert.equal(summary.kind, "full");
  assert.equal(summary.repository_created, true);
  assert.equal(summary.files, 48);
  for (const f of ["config", "bendsave.md"]) assert.ok(fs.existsSync(path.join(repo, f)), f);
  assert.equal(filesUnder(path.join(repo, "manifests")).length, 1);
  assert.equal(filesUnder(path.join(repo, "locks")).length, 0, "lock released");

  const dest = path.join(t.dir, "dest");
  const r = await cli(["restore", "--from", repo, "--to", dest, "--confirm"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(describeTree(dest), describeTree(src));
  assert.equal(filesUnder(dest).filter((f) => f.includes("bendsave-tmp")).length, 0);
});

Deno.test("backup unchanged re-run writes no pack and is incremental", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"));
  const repo = path.join(t.dir, "repo");
  assert.equal((await cli(["backup", "--from", src, "--to", repo])).code, 0);
  const packs = filesUnder(path.join(repo, "packs"));
  const b = await cli(["backup", "--from", src, "--to", repo, "--json"]);
  assert.equal(b.code, 0, b.stderr);
  const s = lastOfType(b.stdout, "summary");
  assert.equal(s.kind, "incremental");
  assert.equal(s.added_bytes, 0);
  assert.equal(s.bytes_read, 0);
  assert.equal(s.files_unchanged, 48);
  assert.deepEqual(filesUnder(path.join(repo, "packs")), packs);
  assert.equal(filesUnder(path.join(repo, "manifests")).length, 2);
});

Deno.test("backup of one flipped byte in a large file adds about one block", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  fs.mkdirSync(src);
  const big = randomBytes(40 * 1024 * 1024, 7);
  fs.writeFileSync(path.join(src, "big.bin"), big);
  const repo = path.join(t.dir, "repo");
  const first = lastOfType(
    (await cli(["backup", "--from", src, "--to", repo, "--json"])).stdout,
    "summary",
  );
  big[20 * 1024 * 1024] = big[20 * 1024 * 1024]! ^ 0xff;
  fs.writeFileSync(path.join(src, "big.bin"), big);
  const b = await cli(["backup", "--from", src, "--to", repo, "--json"]);
  assert.equal(b.code, 0, b.stderr);
  const s = lastOfType(b.stdout, "summary");
  assert.equal(s.files_changed, 1);
  // One data block (FastCDC: at most 8 MiB) plus the root tree.
  assert.ok((s.new_blocks as number) <= 2, `new blocks: ${s.new_blocks}`);
  assert.ok((s.added_bytes as number) < 8.5 * 1024 * 1024, `added ${s.added_bytes}`);
  assert.ok((s.added_bytes as number) < (first.added_bytes as number) / 4);
  const dest = path.join(t.dir, "dest");
  assert.equal((await cli(["restore", "--from", repo, "--to", dest, "--confirm"])).code, 0);
  assert.deepEqual(new Uint8Array(fs.readFileSync(path.join(dest, "big.bin"))), big);
});

Deno.test("list prints a table and --json objects with the contract fields", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 1000 });
  const repo = path.join(t.dir, "repo");
  await cli(["backup", "--from", src, "--to", repo]);
  await cli(["backup", "--from", src, "--to", repo]);
  const human = await cli(["list", repo]);
  assert.equal(human.code, 0);
  assert.match(human.stdout, /name\s+time\s+kind\s+parent\s+files\s+size\s+added/);
  assert.match(human.stdout, /2 backup\(s\)/);
  const j = await cli(["list", repo, "--json"]);
  const arr = JSON.parse(j.stdout);
  assert.equal(arr.length, 2);
  for (const k of ["name", "id", "time", "parent", "kind", "files", "bytes", "added_bytes"]) {
    assert.ok(k in arr[0], k);
  }
  assert.equal(arr[0].parent, null);
  assert.equal(arr[0].kind, "full");
  assert.equal(arr[1].parent, arr[0].name);
  assert.equal(arr[1].kind, "incremental");
  assert.match(arr[0].time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  assert.match(arr[0].id, /^[0-9a-f]{64}$/);
  assert.equal(arr[0].files, 48);
});

Deno.test("restore is a dry run without --confirm and writes nothing", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 1000 });
  const repo = path.join(t.dir, "repo");
  await cli(["backup", "--from", src, "--to", repo]);
  const dest = path.join(t.dir, "dest");
  const r = await cli(["restore", "--from", repo, "--to", dest, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.existsSync(dest), false);
  const plan = lastOfType(r.stdout, "plan");
  assert.equal(plan.dry_run, true);
  assert.equal(plan.files, 48);
  assert.ok((plan.packs as unknown[]).length >= 1);
  const human = await cli(["restore", "--from", repo, "--to", dest]);
  assert.match(human.stdout, /dry run: nothing was written/);
  assert.match(human.stdout, /--confirm/);
});

Deno.test("restore by manifest path restores that generation", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 1000 });
  const repo = path.join(t.dir, "repo");
  await cli(["backup", "--from", src, "--to", repo]);
  const before = describeTree(src);
  fs.writeFileSync(path.join(src, "one.bin"), "changed");
  fs.rmSync(path.join(src, "many"), { recursive: true });
  await cli(["backup", "--from", src, "--to", repo]);
  const [first] = JSON.parse((await cli(["list", repo, "--json"])).stdout);
  const dest = path.join(t.dir, "dest");
  const r = await cli([
    "restore",
    "--from",
    `${repo}/manifests/${first.name}`,
    "--to",
    dest,
    "--confirm",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(describeTree(dest), before);
});

Deno.test("restore --include restores only matching paths", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 1000 });
  const repo = path.join(t.dir, "repo");
  await cli(["backup", "--from", src, "--to", repo]);
  const dest = path.join(t.dir, "dest");
  const r = await cli([
    "restore",
    "--from",
    repo,
    "--to",
    dest,
    "--confirm",
    "--include",
    "docs",
    "--include",
    "many/f1*.txt",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const got = filesUnder(dest);
  assert.deepEqual(
    got,
    [
      "docs/deep/er/notes.txt",
      "docs/readme.md",
      ...Array.from({ length: 40 }, (_, i) => `many/f${i}.txt`).filter((f) =>
        /^many\/f1[^/]*\.txt$/.test(f)
      ).sort(),
    ].sort(),
  );
});

Deno.test("restore refuses a non-empty target without --overwrite, then rewrites only what differs", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 1000 });
  const repo = path.join(t.dir, "repo");
  await cli(["backup", "--from", src, "--to", repo]);
  const dest = path.join(t.dir, "dest");
  fs.mkdirSync(dest);
  fs.writeFileSync(path.join(dest, "one.bin"), "local edit");
  fs.writeFileSync(path.join(dest, "keep-me.txt"), "not in the backup");
  const refused = await cli(["restore", "--from", repo, "--to", dest, "--confirm"]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /not empty.*--overwrite/);
  assert.equal(fs.readFileSync(path.join(dest, "one.bin"), "utf8"), "local edit");
  const dry = await cli(["restore", "--from", repo, "--to", dest, "--overwrite", "--json"]);
  assert.deepEqual(lastOfType(dry.stdout, "plan").replaced, ["one.bin"]);
  const first = await cli([
    "restore",
    "--from",
    repo,
    "--to",
    dest,
    "--confirm",
    "--overwrite",
    "--json",
  ]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(lastOfType(first.stdout, "summary").files_written, 48);
  // Second time: everything is identical, nothing is rewritten.
  fs.writeFileSync(path.join(dest, "one.bin"), "x");
  const again = await cli([
    "restore",
    "--from",
    repo,
    "--to",
    dest,
    "--confirm",
    "--overwrite",
    "--json",
  ]);
  const s = lastOfType(again.stdout, "summary");
  assert.equal(s.files_written, 1);
  assert.equal(s.files_unchanged, 47);
  assert.equal(fs.readFileSync(path.join(dest, "keep-me.txt"), "utf8"), "not in the backup");
  fs.rmSync(path.join(dest, "keep-me.txt"));
  assert.deepEqual(describeTree(dest), describeTree(src));
});

Deno.test("cli prints help and exits 2 on usage errors", async () => {
  const none = await cli([]);
  assert.equal(none.code, 2);
  assert.match(none.stdout, /Usage: bendsave <command>/);
  for (const c of ["backup", "list", "restore"]) {
    const h = await cli([c, "--help"]);
    assert.equal(h.code, 0);
    assert.match(h.stdout, new RegExp(`Usage: bendsave ${c}`));
  }
  const unknown = await cli(["frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const badFlag = await cli(["backup", "--form", "x"]);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /--form.*bendsave backup --help/);
  const missing = await cli(["backup", "--from", "/tmp"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /needs --to/);
  const v = await cli(["--version"]);
  assert.equal(v.code, 0);
  assert.match(
    v.stdout,
    /bendsave \d+\.\d+\.\d+\nrepository format: writes 1\.2 \(2\.0 encrypted\), reads 1 to 2/,
  );
});

Deno.test("show prints a backup's manifest, and --json gives it as an object", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 1000 });
  const repo = path.join(t.dir, "repo");
  await cli(["backup", "--from", src, "--to", repo]);
  await cli(["backup", "--from", src, "--to", repo]);
  const [first, second] = JSON.parse((await cli(["list", repo, "--json"])).stdout);
  const human = await cli(["show", `${repo}/manifests/${second.name}`]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, new RegExp(`kind +incremental, parent ${first.name}`));
  assert.match(human.stdout, /part +files \(tree\): 48 files/);
  const j = JSON.parse((await cli(["show", repo, "--json"])).stdout);
  assert.equal(j.name, second.name);
  assert.equal(j.id, second.id);
  assert.equal(j.parent, first.name);
  assert.equal(j.source.type, "dir");
  assert.equal(j.parts[0].chunker.kind, "fastcdc");
  const missing = await cli(["show", `${repo}/manifests/20000101_000000.manifest`]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no manifest 20000101_000000\.manifest .*bendsave list/);
});
