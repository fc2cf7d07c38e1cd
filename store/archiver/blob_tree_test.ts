import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { MemStore } from "../drivers/mem.ts";
import { Repository } from "../repository.ts";
import { restore } from "../restore/restore.ts";
import { backup, type BackupResult } from "../backup/backup.ts";
import type { OperationEvent } from "../backup/events.ts";
import type { ObjectsPart, Source, SourceObject } from "../source.ts";
import { NodeType, type TreeNode } from "../../formats/tree.ts";
import { filesUnder, randomBytes, tempDir, textBytes } from "../../testing/mod.ts";

/** One object of the in-memory bucket. */
interface Obj {
  data: Uint8Array;
  mtimeMs: number;
  etag?: string;
}

const LOCATION = "mem://bucket";
const PART = "objects";

/** A source with one objects part over `bucket`, counting the reads. */
class BucketSource implements Source {
  readonly info = {
    type: "test-objects",
    key: "test-objects:bucket",
    description: "an in-memory bucket",
    settings: {},
  };
  /** Names passed to read(), in call order. */
  readonly reads: string[] = [];
  /** Names whose read() rejects. */
  readonly failing = new Set<string>();
  /** Names in listing order (default: the bucket's order). */
  order: string[] | null = null;

  constructor(readonly bucket: Map<string, Obj>) {}

  parts(): Promise<ObjectsPart[]> {
    const bucket = this.bucket;
    const order = this.order;
    const reads = this.reads;
    const failing = this.failing;
    return Promise.resolve([{
      name: PART,
      kind: "objects",
      location: LOCATION,
      async *list(): AsyncGenerator<SourceObject> {
        for (const name of order ?? [...bucket.keys()]) {
          const o = bucket.get(name)!;
          await Promise.resolve();
          yield {
            name,
            size: o.data.length,
            mtimeMs: o.mtimeMs,
            ...(o.etag !== undefined ? { etag: o.etag } : {}),
          };
        }
      },
      read(name: string): Promise<Uint8Array> {
        reads.push(name);
        if (failing.has(name)) return Promise.reject(new Error(`permission denied on ${name}`));
        const o = bucket.get(name);
        if (!o) return Promise.reject(new Error(`no object ${name}`));
        return Promise.resolve(o.data.slice());
      },
    }]);
  }
}

const T = 1_700_000_000_000;

function sampleBucket(): Map<string, Obj> {
  return new Map<string, Obj>([
    ["1/18/_b/x.parquet", { data: randomBytes(200_000, 1), mtimeMs: T, etag: '"e-x"' }],
    ["1/18/_sg/seg.mpk", { data: textBytes(5_000, 2), mtimeMs: T + 1, etag: '"e-seg"' }],
    ["1/18/last_snapshot_location_hint_v2", {
      data: new TextEncoder().encode("1/18/_ss/snap.mpk"),
      mtimeMs: T + 2,
    }],
    ["8/25/_b/y.parquet", { data: randomBytes(70_000, 3), mtimeMs: T + 3, etag: '"e-y"' }],
    ["top.txt", { data: new Uint8Array([1, 2, 3]), mtimeMs: T + 4 }],
    ["empty", { data: new Uint8Array(0), mtimeMs: T + 5, etag: '"e-empty"' }],
  ]);
}

/** Restores the objects part of the newest backup and returns path -> bytes. */
async function restored(store: MemStore, dir: string): Promise<Map<string, Uint8Array>> {
  const target = path.join(dir, `restore-${crypto.randomUUID()}`);
  await restore(store, target, { part: PART, workers: 0 });
  const out = new Map<string, Uint8Array>();
  for (const rel of filesUnder(target)) {
    out.set(rel, new Uint8Array(fs.readFileSync(path.join(target, rel))));
  }
  return out;
}

function assertSameObjects(got: Map<string, Uint8Array>, want: Map<string, Obj>): void {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [name, o] of want) assert.deepEqual(got.get(name), o.data, name);
}

function objectsStats(r: BackupResult) {
  const p = r.manifest.parts.find((x) => x.name === PART);
  assert.ok(p, "the backup has the objects part");
  return p.stats;
}

/** The tree node at `name` (a `/`-separated path) in the objects part of the newest manifest. */
async function nodeAt(store: MemStore, name: string): Promise<TreeNode | undefined> {
  const repo = await Repository.open(store);
  await repo.loadIndex();
  const names = await repo.manifestNames();
  const rec = await repo.loadManifest(names.at(-1)!);
  let id: Uint8Array | undefined = rec.manifest.parts.find((p) => p.name === PART)?.root;
  const segs = name.split("/");
  for (let i = 0; i < segs.length; i++) {
    if (!id) return undefined;
    const node = (await repo.loadTree(id)).find((n) => n.name === segs[i]);
    if (i === segs.length - 1) return node;
    id = node?.type === NodeType.dir ? node.subtree : undefined;
  }
  return undefined;
}

Deno.test("blobTree backup round trips every object with its nested path through restore", async () => {
  await using t = await tempDir();
  const store = new MemStore();
  const bucket = sampleBucket();
  const src = new BucketSource(bucket);
  const r = await backup(store, src, { workers: 0 });
  assert.deepEqual(r.manifest.parts.map((p) => [p.name, p.kind]), [[PART, "tree"]]);
  assert.equal(r.manifest.incomplete, false);
  assert.deepEqual(r.manifest.warnings, []);
  const s = objectsStats(r);
  assert.equal(s.files, bucket.size);
  assert.equal(s.filesNew, bucket.size);
  const total = [...bucket.values()].reduce((a, o) => a + o.data.length, 0);
  assert.equal(s.bytes, total);
  assert.equal(s.bytesRead, total);
  // Directories: 1, 1/18, 1/18/_b, 1/18/_sg, 8, 8/25, 8/25/_b.
  assert.equal(s.dirs, 7);
  assert.deepEqual([...src.reads].sort(), [...bucket.keys()].sort());
  assertSameObjects(await restored(store, t.dir), bucket);
});

Deno.test("blobTree backup reads nothing when the listing is unchanged", async () => {
  await using t = await tempDir();
  const store = new MemStore();
  const bucket = sampleBucket();
  const first = await backup(store, new BucketSource(bucket), { workers: 0 });
  const src = new BucketSource(bucket);
  const second = await backup(store, src, { workers: 0 });
  assert.deepEqual(src.reads, []);
  assert.equal(second.parent, first.name);
  assert.equal(second.manifest.kind, "incremental");
  const s = objectsStats(second);
  assert.equal(s.filesUnchanged, bucket.size);
  assert.equal(s.filesNew, 0);
  assert.equal(s.filesChanged, 0);
  assert.equal(s.bytesRead, 0);
  assert.equal(s.newBlocks, 0);
  assert.deepEqual(second.manifest.parts[0]!.root, first.manifest.parts[0]!.root);
  assertSameObjects(await restored(store, t.dir), bucket);
});

Deno.test("blobTree backup reads again an object whose etag changed at the same size and mtime", async () => {
  await using t = await tempDir();
  const store = new MemStore();
  const bucket = sampleBucket();
  await backup(store, new BucketSource(bucket), { workers: 0 });
  const old = bucket.get("8/25/_b/y.parquet")!;
  bucket.set("8/25/_b/y.parquet", {
    data: randomBytes(old.data.length, 99),
    mtimeMs: old.mtimeMs,
    etag: '"e-y-2"',
  });
  const src = new BucketSource(bucket);
  const r = await backup(store, src, { workers: 0 });
  assert.deepEqual(src.reads, ["8/25/_b/y.parquet"]);
  const s = objectsStats(r);
  assert.equal(s.filesChanged, 1);
  assert.equal(s.filesUnchanged, bucket.size - 1);
  assert.equal(s.bytesRead, old.data.length);
  assert.equal((await nodeAt(store, "8/25/_b/y.parquet"))?.etag, '"e-y-2"');
  assertSameObjects(await restored(store, t.dir), bucket);
});

Deno.test("blobTree backup without an etag reads again on an mtime change only", async () => {
  await using t = await tempDir();
  const store = new MemStore();
  const bucket = sampleBucket();
  await backup(store, new BucketSource(bucket), { workers: 0 });

  // Same size and mtime, new content, no etag: taken from the parent (by design).
  const hint = "1/18/last_snapshot_location_hint_v2";
  const before = bucket.get(hint)!;
  bucket.set(hint, {
    data: new TextEncoder().encode("1/18/_ss/snbp.mpk"),
    mtimeMs: before.mtimeMs,
  });
  const same = new BucketSource(bucket);
  const r1 = await backup(store, same, { workers: 0 });
  assert.deepEqual(same.reads, []);
  assert.equal(objectsStats(r1).filesUnchanged, bucket.size);
  const kept = await restored(store, t.dir);
  assert.deepEqual(kept.get(hint), before.data, "the parent's bytes are kept");

  // A new mtime makes it read again.
  bucket.set(hint, { data: bucket.get(hint)!.data, mtimeMs: before.mtimeMs + 1000 });
  const moved = new BucketSource(bucket);
  const r2 = await backup(store, moved, { workers: 0 });
  assert.deepEqual(moved.reads, [hint]);
  assert.equal(objectsStats(r2).filesChanged, 1);
  assert.equal(objectsStats(r2).filesUnchanged, bucket.size - 1);
  assertSameObjects(await restored(store, t.dir), bucket);
  assert.equal((await nodeAt(store, hint))?.mtimeMs, before.mtimeMs + 1000);
});

Deno.test("blobTree backup commits an incomplete backup without an object that cannot be read", async () => {
  await using t = await tempDir();
  const store = new MemStore();
  const bucket = sampleBucket();
  const src = new BucketSource(bucket);
  src.failing.add("1/18/_sg/seg.mpk");
  const events: OperationEvent[] = [];
  const r = await backup(store, src, { workers: 0, onEvent: (e) => events.push(e) });
  assert.equal(r.manifest.incomplete, true);
  assert.equal(r.manifest.stats.errors, 1);
  assert.equal(r.manifest.warnings.length, 1);
  assert.match(r.manifest.warnings[0]!, /mem:\/\/bucket\/1\/18\/_sg\/seg\.mpk: cannot read: /);
  assert.match(r.manifest.warnings[0]!, /permission denied/);
  assert.ok(
    events.some((e) => e.type === "warning" && e.path === `${LOCATION}/1/18/_sg/seg.mpk`),
    JSON.stringify(events.filter((e) => e.type === "warning")),
  );
  const s = objectsStats(r);
  assert.equal(s.files, bucket.size - 1);
  assert.equal(s.bytes, [...bucket.values()].reduce((a, o) => a + o.data.length, 0) - 5_000);
  // The committed manifest is the one on the store.
  const repo = await Repository.open(store);
  assert.deepEqual(await repo.manifestNames(), [r.name]);
  assert.equal((await repo.loadManifest(r.name)).manifest.incomplete, true);
  const got = await restored(store, t.dir);
  const want = new Map(bucket);
  want.delete("1/18/_sg/seg.mpk");
  assertSameObjects(got, want);
  assert.equal(await nodeAt(store, "1/18/_sg/seg.mpk"), undefined);
});

Deno.test("blobTree backup reads a failed object again in the next backup", async () => {
  await using t = await tempDir();
  const store = new MemStore();
  const bucket = sampleBucket();
  const failing = new BucketSource(bucket);
  failing.failing.add("top.txt");
  await backup(store, failing, { workers: 0 });
  const src = new BucketSource(bucket);
  const r = await backup(store, src, { workers: 0 });
  assert.deepEqual(src.reads, ["top.txt"]);
  assert.equal(r.manifest.incomplete, false);
  assertSameObjects(await restored(store, t.dir), bucket);
});

for (const order of [["a", "a/b"], ["a/b", "a"]]) {
  Deno.test(`blobTree backup reports a name used as an object and a folder (listed ${order.join(", ")})`, async () => {
    await using t = await tempDir();
    const store = new MemStore();
    const bucket = new Map<string, Obj>([
      ["a", { data: new TextEncoder().encode("I am a"), mtimeMs: T }],
      ["a/b", { data: new TextEncoder().encode("I am a/b"), mtimeMs: T }],
      ["c", { data: new TextEncoder().encode("I am c"), mtimeMs: T }],
    ]);
    const src = new BucketSource(bucket);
    src.order = order.concat("c");
    const r = await backup(store, src, { workers: 0 });
    assert.equal(r.manifest.incomplete, true);
    assert.deepEqual(r.manifest.warnings, [
      `${LOCATION}/a: skipped: other objects use this name as a folder`,
    ]);
    assert.equal(objectsStats(r).files, 2);
    assert.equal(objectsStats(r).bytes, "I am a/b".length + "I am c".length);
    assert.deepEqual([...src.reads].sort(), ["a/b", "c"]);
    const got = await restored(store, t.dir);
    assert.deepEqual([...got.keys()].sort(), ["a/b", "c"]);
    assert.deepEqual(got.get("a/b"), bucket.get("a/b")!.data);
  });
}

Deno.test("blobTree backup records each object's etag in its tree node", async () => {
  const store = new MemStore();
  const bucket = sampleBucket();
  await backup(store, new BucketSource(bucket), { workers: 0 });
  for (const [name, o] of bucket) {
    const node = await nodeAt(store, name);
    assert.ok(node, name);
    assert.equal(node.type, NodeType.file);
    assert.equal(node.size, o.data.length, name);
    assert.equal(node.mtimeMs, o.mtimeMs, name);
    assert.equal(node.etag, o.etag, name);
  }
  const dir = await nodeAt(store, "1/18");
  assert.equal(dir?.type, NodeType.dir);
  assert.equal(dir?.etag, undefined);
});

Deno.test("blobTree backup stores an empty listing as an empty tree in a valid manifest", async () => {
  await using t = await tempDir();
  const store = new MemStore();
  const src = new BucketSource(new Map());
  const r = await backup(store, src, { workers: 0 });
  assert.deepEqual(src.reads, []);
  assert.equal(r.manifest.incomplete, false);
  assert.deepEqual(r.manifest.parts.map((p) => p.name), [PART]);
  const s = objectsStats(r);
  assert.equal(s.files, 0);
  assert.equal(s.dirs, 0);
  assert.equal(s.bytes, 0);
  const repo = await Repository.open(store);
  await repo.loadIndex();
  const rec = await repo.loadManifest(r.name);
  assert.deepEqual(rec.id, r.id);
  assert.deepEqual(await repo.loadTree(rec.manifest.parts[0]!.root), []);
  const target = path.join(t.dir, "empty-restore");
  const res = await restore(store, target, { part: PART, workers: 0 });
  assert.equal(res.files, 0);
  assert.deepEqual(filesUnder(target), []);
});

/** A bucket with `stat`, whose reads of ranges are recorded; `onStat` may change the bucket. */
class RangedSource extends BucketSource {
  /** [name, offset, length] of every ranged read. */
  readonly ranges: [string, number, number][] = [];
  onStat: ((name: string) => void) | null = null;

  override async parts(): Promise<ObjectsPart[]> {
    const [part] = await super.parts();
    const bucket = this.bucket;
    const ranges = this.ranges;
    return [{
      ...part!,
      read: (name, range) => {
        if (!range) return part!.read(name);
        ranges.push([name, range.offset, range.length]);
        const o = bucket.get(name)!;
        return Promise.resolve(o.data.slice(range.offset, range.offset + range.length));
      },
      stat: (name) => {
        this.onStat?.(name);
        const o = bucket.get(name)!;
        return Promise.resolve({
          name,
          size: o.data.length,
          mtimeMs: o.mtimeMs,
          ...(o.etag !== undefined ? { etag: o.etag } : {}),
        });
      },
    }];
  }
}

Deno.test("blobTree backup reads a large object in bounded ranges and restores it whole", async () => {
  await using t = await tempDir();
  const big = randomBytes(40 * 1024 * 1024 + 12345, 7);
  const bucket = new Map<string, Obj>([
    ["stage/internal/big.csv", { data: big, mtimeMs: T, etag: '"e-big"' }],
    ["small", { data: textBytes(1000, 8), mtimeMs: T, etag: '"e-small"' }],
  ]);
  const store = new MemStore();
  const src = new RangedSource(bucket);
  const r = await backup(store, src, { workers: 0 });
  assert.equal(r.manifest.incomplete, false);
  // The big one in 8 MiB ranges covering it exactly; the small one whole.
  const ranges = src.ranges.filter(([n]) => n === "stage/internal/big.csv");
  assert.equal(ranges.length, 6); // five of 8 MiB and the rest
  assert.ok(ranges.every(([, , len]) => len <= 8 * 1024 * 1024));
  assert.equal(ranges.reduce((a, [, , len]) => a + len, 0), big.length);
  assert.deepEqual(src.reads, ["small"]);
  assertSameObjects(await restored(store, t.dir), bucket);
});

Deno.test("blobTree backup reads a large object again when it changed while it was read", async () => {
  await using t = await tempDir();
  const bucket = new Map<string, Obj>([
    ["big", { data: randomBytes(20 * 1024 * 1024, 1), mtimeMs: T, etag: '"v1"' }],
  ]);
  const store = new MemStore();
  const src = new RangedSource(bucket);
  let stats = 0;
  src.onStat = (name) => {
    // The first check finds a new version (written during the read); the second, the same.
    if (stats++ === 0) {
      bucket.set(name, { data: randomBytes(20 * 1024 * 1024, 2), mtimeMs: T + 9, etag: '"v2"' });
    }
  };
  const r = await backup(store, src, { workers: 0 });
  assert.equal(r.manifest.incomplete, false);
  assert.equal(stats, 2);
  assertSameObjects(await restored(store, t.dir), bucket); // the second version, whole
  const repo = await Repository.open(store);
  await repo.loadIndex();
  const root = r.manifest.parts[0]!.root;
  const node = (await repo.loadTree(root)).find((n) => n.name === "big")!;
  assert.equal(node.etag, '"v2"');
  assert.equal(node.mtimeMs, T + 9);
});

Deno.test("blobTree backup of an object that changed while a pack was being saved records only the second read's blocks", async () => {
  // With a reader thread, the blocks of the first read reach the archiver while it waits
  // for a slow pack save; meanwhile the read finds the object changed and starts again.
  // Those blocks used to join the second read's list (28 MiB of blocks for an object
  // recorded as 20 MiB: its restore failed).
  await using t = await tempDir();
  const bucket = new Map<string, Obj>([
    ["big", { data: randomBytes(20 * 1024 * 1024, 3), mtimeMs: T, etag: '"v1"' }],
  ]);
  class SlowPacks extends MemStore {
    override async save(h: Parameters<MemStore["save"]>[0], data: Uint8Array, o?: object) {
      if (h.kind === "pack") await new Promise((r) => setTimeout(r, 150));
      return await super.save(h, data, o);
    }
  }
  const store = new SlowPacks();
  const src = new RangedSource(bucket);
  let stats = 0;
  src.onStat = (name) => {
    if (stats++ === 0) {
      bucket.set(name, { data: randomBytes(20 * 1024 * 1024, 4), mtimeMs: T + 9, etag: '"v2"' });
    }
  };
  const r = await backup(store, src, { workers: 1, init: { packSize: 1024 * 1024 } });
  assert.equal(r.manifest.incomplete, false);
  assert.equal(stats, 2);
  assertSameObjects(await restored(store, t.dir), bucket); // the second version, whole
});

Deno.test("blobTree backup leaves out a large object that keeps changing, and says so", async () => {
  await using t = await tempDir();
  const bucket = new Map<string, Obj>([
    ["busy", { data: randomBytes(17 * 1024 * 1024, 1), mtimeMs: T, etag: '"v0"' }],
    ["calm", { data: textBytes(100, 2), mtimeMs: T }],
  ]);
  const store = new MemStore();
  const src = new RangedSource(bucket);
  let version = 0;
  src.onStat = (name) => {
    version++;
    bucket.set(name, {
      data: randomBytes(17 * 1024 * 1024, 10 + version),
      mtimeMs: T,
      etag: `"v${version}"`,
    });
  };
  const events: OperationEvent[] = [];
  const r = await backup(store, src, { workers: 0, onEvent: (e) => events.push(e) });
  assert.equal(r.manifest.incomplete, true);
  assert.ok(r.manifest.warnings.some((w) => /busy: .*changed while it was read/.test(w)));
  const got = await restored(store, t.dir);
  assert.deepEqual([...got.keys()], ["calm"]);
  assert.ok(events.some((e) => e.type === "warning" && /busy/.test(e.path ?? "")));
});

Deno.test("blobTree backup reports a large object shorter than listed instead of storing it torn", async () => {
  const bucket = new Map<string, Obj>([
    ["shrunk", { data: randomBytes(20 * 1024 * 1024, 1), mtimeMs: T, etag: '"a"' }],
  ]);
  const store = new MemStore();
  const src = new RangedSource(bucket);
  const parts = await src.parts();
  const part = parts[0]!;
  const shrinking: Source = {
    info: src.info,
    parts: () =>
      Promise.resolve([{
        ...part,
        read: (name, range) =>
          part.read(name, range).then((d) => (range && range.offset > 0 ? d.subarray(1) : d)),
      }]),
  };
  const r = await backup(store, shrinking, { workers: 0 });
  assert.equal(r.manifest.incomplete, true);
  assert.ok(r.manifest.warnings.some((w) => /shrunk: .*shorter than its listed size/.test(w)));
});
