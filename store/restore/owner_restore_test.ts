import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { FsStore } from "../drivers/fs.ts";
import { backup } from "../backup/backup.ts";
import { planRestore, restore } from "./restore.ts";
import { parseIdMap } from "./owner.ts";
import { Repository } from "../repository.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { cli, tempDir } from "../../testing/mod.ts";

const asRoot = Deno.uid() === 0;

/** A source with entries of several owners (chown needs root). */
function ownedSource(src: string): void {
  fs.mkdirSync(path.join(src, "pgdata"), { recursive: true });
  fs.writeFileSync(path.join(src, "pgdata/PG_VERSION"), "16\n");
  fs.writeFileSync(path.join(src, "setuid.bin"), "#!/bin/sh\n");
  fs.symlinkSync("pgdata/PG_VERSION", path.join(src, "link"));
  fs.chownSync(path.join(src, "pgdata/PG_VERSION"), 1234, 5678);
  fs.chownSync(path.join(src, "pgdata"), 1234, 5678);
  fs.chownSync(path.join(src, "setuid.bin"), 1234, 5678);
  fs.chmodSync(path.join(src, "setuid.bin"), 0o6755);
  fs.lchownSync(path.join(src, "link"), 4321, 8765);
  fs.chmodSync(path.join(src, "pgdata"), 0o700);
}

function owner(p: string): string {
  const st = fs.lstatSync(p);
  return `${st.uid}:${st.gid}`;
}

async function backedUp(dir: string, make: (src: string) => void): Promise<FsStore> {
  const src = path.join(dir, "src");
  fs.mkdirSync(src);
  make(src);
  const store = await FsStore.open(path.join(dir, "repo"), { create: true });
  await backup(store, dirSource(src), { workers: 0 });
  return store;
}

Deno.test({
  name: "restore sets the recorded uid and gid as root (files, directories, symlinks)",
  ignore: !asRoot,
  fn: async () => {
    await using t = await tempDir();
    const store = await backedUp(t.dir, ownedSource);
    const out = path.join(t.dir, "out");
    const plan = await planRestore(store, out);
    assert.equal(plan.ownership, "set");
    await restore(store, out, { workers: 1 });
    assert.equal(owner(path.join(out, "pgdata")), "1234:5678");
    assert.equal(owner(path.join(out, "pgdata/PG_VERSION")), "1234:5678");
    assert.equal(owner(path.join(out, "setuid.bin")), "1234:5678");
    assert.equal(owner(path.join(out, "link")), "4321:8765");
    // chown clears setuid and setgid: the owner is set before the mode.
    assert.equal((fs.statSync(path.join(out, "setuid.bin")).mode & 0o7777).toString(8), "6755");
    assert.equal((fs.statSync(path.join(out, "pgdata")).mode & 0o7777).toString(8), "700");
  },
});

Deno.test({
  name: "restore maps owners with uidMap and gidMap, and leaves them with owner false",
  ignore: !asRoot,
  fn: async () => {
    await using t = await tempDir();
    const store = await backedUp(t.dir, ownedSource);
    const mapped = path.join(t.dir, "mapped");
    await restore(store, mapped, {
      workers: 0,
      uidMap: parseIdMap("1234:26"),
      gidMap: parseIdMap("5678:27,*:28"),
    });
    assert.equal(owner(path.join(mapped, "pgdata/PG_VERSION")), "26:27");
    assert.equal(owner(path.join(mapped, "pgdata")), "26:27");
    assert.equal(owner(path.join(mapped, "link")), "4321:28");
    const plain = path.join(t.dir, "plain");
    const plan = await planRestore(store, plain, { owner: false });
    assert.equal(plan.ownership, "off");
    await restore(store, plain, { workers: 0, owner: false });
    assert.equal(owner(path.join(plain, "pgdata/PG_VERSION")), `${Deno.uid()}:${Deno.gid()}`);
    assert.equal(owner(path.join(plain, "link")), `${Deno.uid()}:${Deno.gid()}`);
  },
});

Deno.test({
  name: "restore --overwrite sets the owner of unchanged files and never through a symlink",
  ignore: !asRoot,
  fn: async () => {
    await using t = await tempDir();
    const store = await backedUp(t.dir, ownedSource);
    const out = path.join(t.dir, "out");
    await restore(store, out, { workers: 0, owner: false });
    const r = await restore(store, out, { workers: 0, overwrite: true });
    assert.ok(r.filesUnchanged >= 2);
    assert.equal(owner(path.join(out, "pgdata/PG_VERSION")), "1234:5678");
    // The link points at PG_VERSION: an lchown that followed it would have changed PG_VERSION.
    assert.equal(owner(path.join(out, "link")), "4321:8765");
  },
});

Deno.test("restore not run as root sets no owners and says so in the plan", async () => {
  await using t = await tempDir();
  const store = await backedUp(t.dir, (src) => {
    fs.writeFileSync(path.join(src, "f"), "x");
    if (asRoot) fs.chownSync(path.join(src, "f"), 1234, 5678);
  });
  const getuid = process.getuid!;
  process.getuid = () => 1000; // as if an ordinary user ran it
  try {
    const out = path.join(t.dir, "out");
    assert.equal((await planRestore(store, out)).ownership, "not-root");
    const r = await restore(store, out, { workers: 0 });
    assert.equal(r.ownership, "not-root");
    assert.equal(owner(path.join(out, "f")), `${Deno.uid()}:${Deno.gid()}`);
  } finally {
    process.getuid = getuid;
  }
});

/** a, sub/b and sub/c are one file; solo has a second name outside the source. */
function linkedSource(src: string): void {
  fs.mkdirSync(path.join(src, "sub"));
  fs.writeFileSync(path.join(src, "a"), "shared content\n");
  fs.linkSync(path.join(src, "a"), path.join(src, "sub/b"));
  fs.linkSync(path.join(src, "a"), path.join(src, "sub/c"));
  fs.writeFileSync(path.join(src, "solo"), "one name here\n");
  fs.linkSync(path.join(src, "solo"), path.join(src, "../solo-outside"));
  fs.writeFileSync(path.join(src, "plain"), "shared content\n"); // same bytes, not a link
}

Deno.test("backup records nlink for hard-linked files only", async () => {
  await using t = await tempDir();
  const store = await backedUp(t.dir, linkedSource);
  const repo = await Repository.open(store);
  await repo.loadIndex();
  const m = await repo.loadManifest((await repo.manifestNames())[0]!);
  const root = await repo.loadTree(m.manifest.parts[0]!.root);
  const sub = await repo.loadTree(root.find((n) => n.name === "sub")!.subtree!);
  const nlink = (nodes: typeof root, name: string) => nodes.find((n) => n.name === name)!.nlink;
  assert.equal(nlink(root, "a"), 3);
  assert.equal(nlink(sub, "b"), 3);
  assert.equal(nlink(root, "solo"), 2);
  assert.equal(nlink(root, "plain"), undefined);
  assert.equal(m.manifest.formatMinor, 2);
});

Deno.test("restore restores hard links as one inode, and other files as files", async () => {
  await using t = await tempDir();
  const store = await backedUp(t.dir, linkedSource);
  const out = path.join(t.dir, "out");
  const plan = await planRestore(store, out);
  assert.equal(plan.files, 5);
  assert.equal(plan.hardLinks, 2);
  const r = await restore(store, out, { workers: 1 });
  assert.equal(r.filesWritten, 5);
  const a = fs.statSync(path.join(out, "a"));
  assert.equal(a.nlink, 3);
  for (const p of ["sub/b", "sub/c"]) {
    const st = fs.statSync(path.join(out, p));
    assert.equal(st.ino, a.ino, p);
    assert.equal(fs.readFileSync(path.join(out, p), "utf8"), "shared content\n");
  }
  assert.equal(fs.statSync(path.join(out, "solo")).nlink, 1);
  assert.equal(fs.statSync(path.join(out, "plain")).nlink, 1);
  assert.deepEqual(
    fs.readdirSync(path.join(out, "sub")).sort(),
    ["b", "c"],
    "no temporary names are left",
  );

  // Again with --overwrite: the links are already there and stay one inode.
  const again = await restore(store, out, { workers: 0, overwrite: true });
  assert.equal(again.filesWritten, 0);
  assert.equal(again.filesUnchanged, 5);
  assert.equal(fs.statSync(path.join(out, "a")).nlink, 3);

  // A separate file in place of a link is replaced by the link.
  fs.rmSync(path.join(out, "sub/c"));
  fs.writeFileSync(path.join(out, "sub/c"), "shared content\n");
  const fixed = await restore(store, out, { workers: 0, overwrite: true });
  assert.equal(fixed.filesWritten, 1);
  assert.equal(fs.statSync(path.join(out, "sub/c")).ino, a.ino);
});

Deno.test("restore of a selection without the first name of a hard link writes it as a file", async () => {
  await using t = await tempDir();
  const store = await backedUp(t.dir, linkedSource);
  const out = path.join(t.dir, "out");
  const r = await restore(store, out, { workers: 0, include: ["sub/**"] });
  assert.equal(r.hardLinks, 1);
  const b = fs.statSync(path.join(out, "sub/b"));
  assert.ok(b.isFile());
  assert.equal(b.nlink, 2);
  assert.equal(fs.statSync(path.join(out, "sub/c")).ino, b.ino);
  assert.equal(fs.readFileSync(path.join(out, "sub/b"), "utf8"), "shared content\n");
  assert.equal(fs.existsSync(path.join(out, "a")), false);
});

Deno.test("restore CLI takes --no-owner, --map-uid and --map-gid and says what it does", async () => {
  await using t = await tempDir();
  const store = await backedUp(t.dir, linkedSource);
  const repo = store.location;
  const out = path.join(t.dir, "out");
  const dry = await cli(["restore", "--from", repo, "--to", out, "--map-uid", "0:7,*:8"]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /hard links\s+2/);
  assert.match(dry.stdout, asRoot ? /owners\s+set/ : /owners\s+not restored: not running as root/);
  const off = await cli(["restore", "--from", repo, "--to", out, "--no-owner"]);
  assert.match(off.stdout, /owners\s+not restored \(--no-owner\)/);
  const bad = await cli(["restore", "--from", repo, "--to", out, "--map-gid", "x:1"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /invalid id "x" in the id map "x:1"/);
  const both = await cli([
    "restore",
    "--from",
    repo,
    "--to",
    out,
    "--no-owner",
    "--map-uid",
    "1:2",
  ]);
  assert.equal(both.code, 2);
  if (asRoot) {
    const r = await cli([
      "restore",
      "--from",
      repo,
      "--to",
      out,
      "--confirm",
      "--map-uid",
      "0:7",
      "--map-gid",
      "*:9",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(owner(path.join(out, "sub/b")), "7:9");
    assert.equal(fs.statSync(path.join(out, "a")).nlink, 3);
  }
});
