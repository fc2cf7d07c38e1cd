import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { MemStore } from "../drivers/mem.ts";
import type { Handle, SaveOptions } from "../drivers/types.ts";
import { backup } from "../backup/backup.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { randomBytes, tempDir } from "../../testing/mod.ts";
import { restoreWith } from "./restorer.ts";
import { StoreOutput, type StoreOutputLimits } from "./store_output.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * A MemStore that measures what a restore hands it and has not yet
 * stored: the buffer of each `save` until it is stored, the current chunk
 * of each `saveStream` (a chunk may be reused once the next is asked for).
 * `peak` is the most of those bytes at once. What the driver itself keeps
 * (MemStore builds a streamed object whole) is not the restore's and is
 * not counted.
 */
class BufferMeter extends MemStore {
  buffered = 0;
  peak = 0;
  readonly saves: number[] = [];
  readonly ranges: number[] = [];
  /** Names being streamed: the driver's own save of them is not counted. */
  readonly #streaming = new Set<string>();
  #add(n: number) {
    this.buffered += n;
    this.peak = Math.max(this.peak, this.buffered);
  }
  override async save(h: Handle, data: Uint8Array, options?: SaveOptions) {
    const counted = h.kind === "raw" && !this.#streaming.has(h.name);
    if (counted) {
      this.saves.push(data.length);
      this.#add(data.length);
    }
    try {
      await super.save(h, data, options);
    } finally {
      if (counted) this.buffered -= data.length;
    }
  }
  override saveStream(
    h: Handle,
    chunks: AsyncIterable<Uint8Array>,
    size: number,
    options?: SaveOptions,
  ) {
    const meter = async function* (m: BufferMeter): AsyncIterable<Uint8Array> {
      let held = 0;
      try {
        for await (const chunk of chunks) {
          m.buffered -= held;
          held = chunk.length;
          m.#add(held);
          yield chunk;
        }
      } finally {
        m.buffered -= held;
      }
    };
    this.#streaming.add(h.name);
    return super.saveStream(h, meter(this), size, options).finally(() =>
      this.#streaming.delete(h.name)
    );
  }
  override load(h: Handle, range?: { offset: number; length: number }) {
    if (h.kind === "raw") this.ranges.push(range?.length ?? -1);
    return super.load(h, range);
  }
}

/** Two 6 MiB files and three small ones, in 256 KiB blocks, backed up into a MemStore. */
async function fixture(dir: string) {
  const src = path.join(dir, "src");
  fs.mkdirSync(path.join(src, "db"), { recursive: true });
  const files = new Map<string, Uint8Array>([
    ["db/a.parquet", randomBytes(6 * MiB + 17, 1)],
    ["db/b.parquet", randomBytes(6 * MiB - 5, 2)],
    ["x.json", randomBytes(3000, 3)],
    ["y.json", randomBytes(40 * KiB, 4)],
    ["db/z.bin", randomBytes(700 * KiB, 5)],
  ]);
  for (const [rel, data] of files) fs.writeFileSync(path.join(src, rel), data);
  const store = new MemStore();
  const b = await backup(store, dirSource(src, { chunker: { kind: "fixed", size: 256 * KiB } }), {
    workers: 0,
    init: { packSize: 1 * MiB },
  });
  return { store, files, manifest: b.name };
}

/** A bound of 2 MiB of object data for saves in flight, objects over 1 MiB streamed. */
const LIMITS: StoreOutputLimits = {
  streamThreshold: 1 * MiB,
  saveBytes: 2 * MiB,
  streamCost: 512 * KiB,
};

Deno.test("StoreOutput restores objects larger than its memory bound holding no more than the bound at once", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const target = new BufferMeter();
  const output = new StoreOutput(target, LIMITS);
  const result = await restoreWith(f.store, output, { manifest: f.manifest });
  assert.equal(result.filesWritten, f.files.size);
  for (const [rel, data] of f.files) {
    assert.deepEqual(await target.load({ kind: "raw", name: rel }), data, rel);
  }
  assert.ok(target.peak > 0);
  assert.ok(target.peak <= LIMITS.saveBytes!, `peak buffered ${target.peak} bytes`);
  assert.ok(output.peakHeld <= LIMITS.saveBytes!, `peak counted ${output.peakHeld} bytes`);
  assert.ok(Math.max(...target.saves) <= LIMITS.streamThreshold!, "no large object saved whole");
});

Deno.test("StoreOutput with --overwrite compares a large object range by range, never loading it whole", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const target = new BufferMeter();
  await restoreWith(f.store, new StoreOutput(target, LIMITS), { manifest: f.manifest });
  target.ranges.length = 0;
  target.saves.length = 0;
  const again = await restoreWith(f.store, new StoreOutput(target, LIMITS), {
    manifest: f.manifest,
    overwrite: true,
  });
  assert.equal(again.filesUnchanged, f.files.size);
  assert.equal(again.filesWritten, 0);
  assert.deepEqual(target.saves, []);
  // Small objects are read whole (-1), large ones one 256 KiB block at a time.
  assert.ok(target.ranges.every((n) => n === -1 || n <= 256 * KiB), String(target.ranges));
  assert.equal(target.ranges.filter((n) => n === -1).length, 3);
});

Deno.test("StoreOutput rewrites a large object that differs in one block", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const target = new BufferMeter();
  await restoreWith(f.store, new StoreOutput(target, LIMITS), { manifest: f.manifest });
  const h = { kind: "raw", name: "db/a.parquet" } as const;
  const changed = (await target.load(h)).slice();
  changed[3 * MiB] = changed[3 * MiB]! ^ 1;
  await target.save(h, changed);
  const again = await restoreWith(f.store, new StoreOutput(target, LIMITS), {
    manifest: f.manifest,
    overwrite: true,
  });
  assert.equal(again.filesWritten, 1);
  assert.deepEqual(await target.load(h), f.files.get("db/a.parquet"));
});
