import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { FsStore } from "../drivers/fs.ts";
import { backup } from "../backup/backup.ts";
import { planRestore, restore } from "./restore.ts";
import { Repository } from "../repository.ts";
import { RestoreIncomplete } from "../errors.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { cli, randomBytes, tempDir } from "../../testing/mod.ts";

/** Backup 1 has `d` as a symlink to `outside`, backup 2 has `d` as a directory holding `x`. */
async function linkThenDir(dir: string) {
  const outside = path.join(dir, "outside");
  fs.mkdirSync(outside, { mode: 0o755 });
  fs.chmodSync(outside, 0o755);
  fs.writeFileSync(path.join(outside, "victim"), "precious");
  const src = path.join(dir, "src");
  fs.mkdirSync(src);
  fs.symlinkSync(outside, path.join(src, "d"));
  fs.symlinkSync(path.join(outside, "victim"), path.join(src, "f"));
  const store = await FsStore.open(path.join(dir, "repo"), { create: true });
  const b1 = await backup(store, dirSource(src), { workers: 0 });
  fs.rmSync(path.join(src, "d"));
  fs.rmSync(path.join(src, "f"));
  fs.mkdirSync(path.join(src, "d"), { mode: 0o700 });
  fs.writeFileSync(path.join(src, "d", "x"), "inside");
  fs.writeFileSync(path.join(src, "f"), "a file now");
  const b2 = await backup(store, dirSource(src), { workers: 0 });
  return { outside, store, b1: b1.name, b2: b2.name };
}

Deno.test("restore --overwrite never writes through a symlink in the target", async () => {
  await using t = await tempDir();
  const g = await linkThenDir(t.dir);
  const target = path.join(t.dir, "target");
  await restore(g.store, target, { manifest: g.b1, workers: 0 });
  assert.ok(fs.lstatSync(path.join(target, "d")).isSymbolicLink());

  const plan = await planRestore(g.store, target, { manifest: g.b2, overwrite: true });
  assert.deepEqual(plan.replacedByDirectory, [{ path: "d", was: `symlink to ${g.outside}` }]);
  assert.ok(!plan.replaced.includes("d/x"), "d/x is not looked up through the link");

  await restore(g.store, target, { manifest: g.b2, overwrite: true, workers: 0 });
  assert.deepEqual(fs.readdirSync(g.outside), ["victim"], "nothing was written outside");
  assert.equal(fs.statSync(g.outside).mode & 0o7777, 0o755, "the outside directory's mode");
  assert.equal(fs.readFileSync(path.join(g.outside, "victim"), "utf8"), "precious");
  const d = fs.lstatSync(path.join(target, "d"));
  assert.ok(d.isDirectory() && !d.isSymbolicLink());
  assert.equal(d.mode & 0o7777, 0o700);
  assert.equal(fs.readFileSync(path.join(target, "d", "x"), "utf8"), "inside");
  assert.ok(fs.lstatSync(path.join(target, "f")).isFile());
  assert.equal(fs.readFileSync(path.join(target, "f"), "utf8"), "a file now");
});

Deno.test("restore dry run names the symlink --overwrite replaces by a directory", async () => {
  await using t = await tempDir();
  const g = await linkThenDir(t.dir);
  const target = path.join(t.dir, "target");
  await restore(g.store, target, { manifest: g.b1, workers: 0 });
  const repo = g.store.location.replace(/^fs:\/\//, "");
  const r = await cli([
    "restore",
    "--from",
    `${repo}/manifests/${g.b2}`,
    "--to",
    target,
    "--overwrite",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`d \\(symlink to ${g.outside}\\)`));
  assert.deepEqual(fs.readdirSync(g.outside), ["victim"]);
});

Deno.test("restore writes every file it can past a damaged block, names the others, and exits 1", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  fs.mkdirSync(path.join(src, "sub"), { recursive: true });
  for (const n of ["a", "b", "c"]) {
    fs.writeFileSync(path.join(src, "sub", `${n}.bin`), randomBytes(50_000, n.charCodeAt(0)));
  }
  fs.chmodSync(path.join(src, "sub"), 0o750);
  const repoDir = path.join(t.dir, "repo");
  const store = await FsStore.open(repoDir, { create: true });
  const b = await backup(store, dirSource(src), { workers: 0 });
  // Damage the one block of b.bin.
  const repo = await Repository.open(store);
  await repo.loadIndex();
  const m = await repo.loadManifest(b.name);
  const root = await repo.loadTree(m.manifest.parts[0]!.root);
  const sub = await repo.loadTree(root.find((n) => n.name === "sub")!.subtree!);
  const id = sub.find((n) => n.name === "b.bin")!.blocks[0]!;
  const loc = repo.locate(id, "b.bin");
  const hex = [...loc.packId].map((x) => x.toString(16).padStart(2, "0")).join("");
  const packFile = path.join(repoDir, "packs", hex.slice(0, 2), hex);
  const bytes = fs.readFileSync(packFile);
  bytes[loc.offset + 10] = bytes[loc.offset + 10]! ^ 0xff;
  fs.writeFileSync(packFile, bytes);

  for (const workers of [0, 2]) {
    const dest = path.join(t.dir, `dest-${workers}`);
    const err = await restore(store, dest, { workers }).then(() => null, (e) => e);
    assert.ok(err instanceof RestoreIncomplete, String(err));
    assert.deepEqual(err.failed.map((f) => f.path), ["sub/b.bin"]);
    assert.deepEqual(fs.readdirSync(path.join(dest, "sub")).sort(), ["a.bin", "c.bin"]);
    assert.equal(fs.statSync(path.join(dest, "sub")).mode & 0o7777, 0o750, "dir metadata set");
  }
  const dest = path.join(t.dir, "dest-cli");
  const r = await cli(["restore", "--from", repoDir, "--to", dest, "--confirm"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /restored backup/);
  assert.match(r.stderr, /sub\/b\.bin: block [0-9a-f]{64} .* is damaged/);
  assert.deepEqual(fs.readdirSync(path.join(dest, "sub")).sort(), ["a.bin", "c.bin"]);
});
