import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { FsStore } from "../drivers/fs.ts";
import { MemStore } from "../drivers/mem.ts";
import type { BlobStore, Handle, SaveOptions } from "../drivers/types.ts";
import { backup } from "../backup/backup.ts";
import { Repository } from "../repository.ts";
import { RestoreIncomplete } from "../errors.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { equalBytes, toHex } from "../../formats/hash.ts";
import { filesUnder, randomBytes, tempDir } from "../../testing/mod.ts";
import { restoreToStore } from "./restore.ts";

const MiB = 1024 * 1024;
/** The size above which restoreToStore streams an object (STREAM_THRESHOLD in restore.ts). */
const THRESHOLD = 16 * MiB;

/** A store that records how it was written to, over `inner`. */
class RecordingStore implements BlobStore {
  readonly inner: BlobStore;
  /** Sizes of every `save`. */
  readonly saves: number[] = [];
  /** Names and announced sizes of every `saveStream`. */
  readonly streams: { name: string; size: number }[] = [];
  /** The largest chunk a stream gave. */
  largestChunk = 0;
  constructor(inner: BlobStore) {
    this.inner = inner;
  }
  get capabilities() {
    return this.inner.capabilities;
  }
  get location() {
    return this.inner.location;
  }
  save(h: Handle, data: Uint8Array, options?: SaveOptions) {
    this.saves.push(data.length);
    return this.inner.save(h, data, options);
  }
  saveStream(h: Handle, chunks: AsyncIterable<Uint8Array>, size: number, options?: SaveOptions) {
    this.streams.push({ name: h.name, size });
    const watched = async function* (
      recorder: RecordingStore,
    ): AsyncIterable<Uint8Array> {
      for await (const chunk of chunks) {
        recorder.largestChunk = Math.max(recorder.largestChunk, chunk.length);
        yield chunk;
      }
    };
    return this.inner.saveStream!(h, watched(this), size, options);
  }
  load(h: Handle, range?: { offset: number; length: number }) {
    return this.inner.load(h, range);
  }
  stat(h: Handle) {
    return this.inner.stat(h);
  }
  list(kind: Parameters<BlobStore["list"]>[0]) {
    return this.inner.list(kind);
  }
  remove(h: Handle) {
    return this.inner.remove(h);
  }
}

/** A backup of a 40 MiB file and a small one; the repository store and the big file's bytes. */
async function fixture(dir: string) {
  const src = path.join(dir, "src");
  fs.mkdirSync(path.join(src, "db"), { recursive: true });
  const big = randomBytes(40 * MiB + 4321, 7);
  fs.writeFileSync(path.join(src, "db", "big.parquet"), big);
  fs.writeFileSync(path.join(src, "small.json"), "{}");
  const store = await FsStore.open(path.join(dir, "repo"), { create: true });
  const b = await backup(store, dirSource(src), { workers: 0 });
  return { store, big, manifest: b.name };
}

Deno.test("restoreToStore streams an object larger than 16 MiB block by block and saves small ones whole", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const target = new RecordingStore(new MemStore());
  const result = await restoreToStore(f.store, target, { manifest: f.manifest });
  assert.deepEqual(result.failed, []);
  assert.equal(result.filesWritten, 2);
  assert.deepEqual(target.streams, [{ name: "db/big.parquet", size: f.big.length }]);
  assert.deepEqual(target.saves, [2], "only the small object is saved whole");
  assert.ok(target.largestChunk > 0 && target.largestChunk <= THRESHOLD, `${target.largestChunk}`);
  const restored = await target.load({ kind: "raw", name: "db/big.parquet" });
  assert.ok(equalBytes(restored, f.big), "the streamed object holds the backed-up bytes");

  // With --overwrite an unchanged large object is compared range by range and kept.
  const again = await restoreToStore(f.store, target, { manifest: f.manifest, overwrite: true });
  assert.equal(again.filesUnchanged, 2);
  assert.equal(target.streams.length, 1);
});

Deno.test("restoreToStore leaves no object under the name of a streamed object with a damaged block, and reports it", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const r = await Repository.open(f.store);
  await r.loadIndex();
  const m = await r.loadManifest(f.manifest);
  const root = await r.loadTree(m.manifest.parts[0]!.root);
  const db = await r.loadTree(root.find((n) => n.name === "db")!.subtree!);
  const node = db.find((n) => n.name === "big.parquet")!;
  assert.ok(node.blocks.length > 3, `${node.blocks.length} blocks`);
  const loc = r.locate(node.blocks[Math.floor(node.blocks.length / 2)]!, "test");
  const id = toHex(loc.packId);
  const packFile = path.join(t.dir, "repo", "packs", id.slice(0, 2), id);
  const bytes = fs.readFileSync(packFile);
  bytes[loc.offset + 2] = bytes[loc.offset + 2]! ^ 0xff;
  fs.writeFileSync(packFile, bytes);

  const targetDir = path.join(t.dir, "objects");
  const target = new RecordingStore(await FsStore.open(targetDir, { create: true }));
  const e = await restoreToStore(f.store, target, { manifest: f.manifest }).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(e instanceof RestoreIncomplete, String(e));
  assert.deepEqual(e.failed.map((x) => x.path), ["db/big.parquet"]);
  assert.match(e.failed[0]!.message, /damaged/);
  assert.equal(target.streams.length, 1, "the object was streamed");
  assert.deepEqual(filesUnder(targetDir), ["small.json"], "no object, no temporary file");
});
