import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { FsStore } from "../drivers/fs.ts";
import { backup } from "./backup.ts";
import type { Source } from "../../sources/types.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { cli, filesUnder, tempDir } from "../../testing/mod.ts";

/** A source whose data fails after a first block was stored (a failed meta export, say). */
function failingSource(dir: string): Source {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "f"), "x".repeat(5000));
  return {
    info: { type: "test", key: "failing", description: "failing", settings: {} },
    parts: () =>
      Promise.resolve([{
        name: "meta",
        kind: "stream",
        fileName: "export.jsonl",
        open: () =>
          Promise.resolve((async function* () {
            yield new Uint8Array(300_000).fill(7);
            throw new Error("the meta export command failed");
          })()),
      }]),
  };
}

Deno.test("backup that fails before its first manifest removes the repository it created", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "new", "repo");
  const store = await FsStore.open(repo, { create: true });
  await assert.rejects(
    backup(store, failingSource(path.join(t.dir, "src")), { workers: 0 }),
    /meta export command failed/,
  );
  assert.deepEqual(filesUnder(repo), [], "no config, guide, pack or index is left");
  // The store stays usable, and the directory it made can go.
  assert.equal(await store.removeCreatedDirectory(), true);
  assert.equal(fs.existsSync(path.join(t.dir, "new")), false, "the directories it made are gone");
});

Deno.test("an encrypted first backup that fails removes its key file too", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  const store = await FsStore.open(repo, { create: true });
  const init = { passphrase: "p", kdf: { memoryKiB: 64, iterations: 1, parallelism: 1 } };
  await assert.rejects(
    backup(store, failingSource(path.join(t.dir, "src")), { workers: 0, init }),
    /meta export command failed/,
  );
  assert.deepEqual(filesUnder(repo), [], "no config, key, guide, pack or index is left");
});

Deno.test("backup that fails keeps a repository it did not create, and a directory that existed", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, "a"), "a");
  const repo = path.join(t.dir, "repo");
  fs.mkdirSync(repo);
  const store = await FsStore.open(repo);
  await assert.rejects(backup(store, failingSource(path.join(t.dir, "bad")), { workers: 0 }));
  assert.deepEqual(filesUnder(repo), [], "an empty directory the user made is kept, empty");
  assert.equal(fs.existsSync(repo), true);
  await backup(store, dirSource(src), { workers: 0 });
  const before = filesUnder(repo).filter((f) => !f.startsWith("locks/"));
  await assert.rejects(backup(store, failingSource(path.join(t.dir, "bad")), { workers: 0 }));
  const after = filesUnder(repo).filter((f) => !f.startsWith("locks/"));
  assert.ok(
    before.every((f) => after.includes(f)),
    "nothing of the existing repository is removed",
  );
});

Deno.test("backup removes temporary files an hour old that a killed save left, and keeps new ones", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, "a"), "a");
  const repo = path.join(t.dir, "repo");
  const store = await FsStore.open(repo, { create: true });
  await backup(store, dirSource(src), { workers: 0 });
  const old = ["packs/ab/.tmp-old", "manifests/.tmp-old", "index/.tmp-old"];
  for (const f of [...old, "manifests/.tmp-new"]) {
    fs.mkdirSync(path.dirname(path.join(repo, f)), { recursive: true });
    fs.writeFileSync(path.join(repo, f), "partial");
  }
  const twoHoursAgo = (Date.now() - 2 * 3_600_000) / 1000;
  for (const f of old) fs.utimesSync(path.join(repo, f), twoHoursAgo, twoHoursAgo);
  await backup(store, dirSource(src), { workers: 0 });
  const left = filesUnder(repo).filter((f) => f.includes(".tmp-"));
  assert.deepEqual(left, ["manifests/.tmp-new"]);
});

Deno.test("backup warns that --compression and --pack-size are ignored by an existing repository", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, "a"), "a");
  const repo = path.join(t.dir, "repo");
  const first = await cli(["backup", "--from", src, "--to", repo]);
  assert.equal(first.code, 0, first.stderr);
  assert.doesNotMatch(first.stderr, /ignored/);
  const again = await cli([
    "backup",
    "--from",
    src,
    "--to",
    repo,
    "--compression",
    "none",
    "--pack-size",
    "64",
  ]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(
    again.stderr,
    /compression none is ignored: this repository keeps the compression it was created with \(zstd level 1\)/,
  );
  assert.match(again.stderr, /pack size 64 MiB is ignored: .*\(32 MiB\)/);
  const plain = await cli(["backup", "--from", src, "--to", repo]);
  assert.doesNotMatch(plain.stderr, /ignored/, "no warning without the flags");
});

Deno.test("a cluster backup whose meta export fails leaves no repository behind", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  const config = path.join(import.meta.dirname!, "../../testdata/sample-cluster/query-node.toml");
  const r = await cli([
    "backup",
    "--from",
    config,
    "--to",
    repo,
    "--meta-export-command",
    "exit 1",
  ]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(fs.existsSync(repo), false, filesUnder(t.dir).join(", "));
});

Deno.test("copy of a missing manifest leaves no destination directory behind", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, "a"), "a");
  const repo = path.join(t.dir, "repo");
  assert.equal((await cli(["backup", "--from", src, "--to", repo])).code, 0);
  const dest = path.join(t.dir, "dest");
  const r = await cli(["copy", "--from", repo, "--to", dest, "--manifest", "20000101_000000"]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /20000101_000000/);
  assert.equal(fs.existsSync(dest), false);
});

Deno.test("vacuum says how many stale temporary files it removed", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, "a"), "a");
  const repo = path.join(t.dir, "repo");
  assert.equal((await cli(["backup", "--from", src, "--to", repo])).code, 0);
  const stale = path.join(repo, "manifests", ".tmp-killed");
  fs.writeFileSync(stale, "partial");
  const twoHoursAgo = (Date.now() - 2 * 3_600_000) / 1000;
  fs.utimesSync(stale, twoHoursAgo, twoHoursAgo);
  const v = await cli(["vacuum", repo]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /1 stale temporary file\(s\) removed/);
  assert.equal(fs.existsSync(stale), false);
});
