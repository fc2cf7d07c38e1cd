import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { MemStore } from "../drivers/mem.ts";
import { backup } from "../backup/backup.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { randomBytes, tempDir } from "../../testing/mod.ts";
import { restoreWith } from "./restorer.ts";
import { DirOutput } from "./dir_output.ts";
import { COMPARE_WHOLE_MAX } from "./same_blocks.ts";

const MiB = 1024 * 1024;

Deno.test("DirOutput with --overwrite keeps a large file that is the same and rewrites one that differs in one block", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  fs.mkdirSync(src);
  const big = randomBytes(COMPARE_WHOLE_MAX + 3 * MiB + 11, 9);
  fs.writeFileSync(path.join(src, "big"), big);
  fs.writeFileSync(path.join(src, "small"), "small");
  const store = new MemStore();
  const b = await backup(store, dirSource(src, { chunker: { kind: "fixed", size: 1 * MiB } }), {
    workers: 0,
  });
  const target = path.join(t.dir, "out");
  const options = { manifest: b.name, workers: 0 };
  await restoreWith(store, new DirOutput(target, options), options);
  const again = await restoreWith(store, new DirOutput(target, options), {
    ...options,
    overwrite: true,
  });
  assert.equal(again.filesUnchanged, 2);
  assert.equal(again.filesWritten, 0);
  const changed = fs.readFileSync(path.join(target, "big"));
  changed[COMPARE_WHOLE_MAX + MiB] = changed[COMPARE_WHOLE_MAX + MiB]! ^ 1;
  fs.writeFileSync(path.join(target, "big"), changed);
  const fixed = await restoreWith(store, new DirOutput(target, options), {
    ...options,
    overwrite: true,
  });
  assert.equal(fixed.filesWritten, 1);
  assert.equal(fixed.filesUnchanged, 1);
  assert.deepEqual(new Uint8Array(fs.readFileSync(path.join(target, "big"))), big);
});

Deno.test("DirOutput restored in batches of two entries sets each directory's mtime after its content", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  const rels = ["a/one", "a/b/two", "a/b/c/three", "a/b/c/four", "d/five", "six"];
  for (const rel of rels) {
    fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
    fs.writeFileSync(path.join(src, rel), rel);
  }
  fs.mkdirSync(path.join(src, "a", "empty"));
  const dirs = ["a", "a/b", "a/b/c", "a/empty", "d"];
  const past = new Date("2020-01-02T03:04:05.006Z");
  for (const d of dirs) fs.utimesSync(path.join(src, d), past, past);
  const store = new MemStore();
  const b = await backup(store, dirSource(src), { workers: 0 });
  const target = path.join(t.dir, "out");
  const options = { manifest: b.name, workers: 0 };
  let batches = 0;
  const result = await restoreWith(store, new DirOutput(target, options), {
    ...options,
    batch: { entries: 2 },
    onBatch: (entries) => {
      assert.ok(entries <= 2, `${entries} entries`);
      batches++;
    },
  });
  assert.equal(result.filesWritten, rels.length);
  assert.ok(batches >= 6, `${batches} batches`);
  for (const rel of rels) assert.equal(fs.readFileSync(path.join(target, rel), "utf8"), rel);
  for (const d of dirs) {
    assert.equal(fs.statSync(path.join(target, d)).mtimeMs, past.getTime(), d);
  }
});
