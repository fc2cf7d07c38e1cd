import assert from "node:assert/strict";
import { PackWriter } from "./pack_writer.ts";
import { BlockIndex } from "./block_index.ts";
import { MemStore } from "./drivers/mem.ts";
import { BlobKind } from "../formats/pack.ts";
import { sha256 } from "../formats/hash.ts";

/** Adds data and tree blocks in turn; returns the kinds of each saved pack's blocks. */
async function packKinds(separateTrees: boolean): Promise<number[][]> {
  const store = new MemStore();
  const writer = new PackWriter(store, new BlockIndex(), { targetSize: 1 << 20, separateTrees });
  for (let i = 0; i < 6; i++) {
    const data = new Uint8Array(100).fill(i);
    const kind = i % 2 ? BlobKind.tree : BlobKind.data;
    await writer.add(sha256(data), kind, { codec: 0, data, rawLength: data.length });
  }
  await writer.flush();
  const packs = writer.unindexed.map((p) => p.entries.map((e) => e.kind as number));
  let saved = 0;
  for await (const _ of store.list("pack")) saved++;
  assert.equal(saved, packs.length, "every pack listed is saved");
  return packs;
}

Deno.test("PackWriter with separateTrees saves tree blocks in packs of their own, data first", async () => {
  assert.deepEqual(await packKinds(true), [[0, 0, 0], [1, 1, 1]]);
});

Deno.test("PackWriter without separateTrees keeps every kind in one pack", async () => {
  assert.deepEqual(await packKinds(false), [[0, 1, 0, 1, 0, 1]]);
});

Deno.test("PackWriter saves one pack after the other when adds overlap", async () => {
  const store = new MemStore();
  let saving = 0;
  let overlapped = false;
  const save = store.save.bind(store);
  store.save = async (...args: Parameters<MemStore["save"]>) => {
    if (saving++ > 0) overlapped = true;
    await new Promise((r) => setTimeout(r, 5));
    try {
      return await save(...args);
    } finally {
      saving--;
    }
  };
  const writer = new PackWriter(store, new BlockIndex(), { targetSize: 150, separateTrees: true });
  const adds = [];
  for (let i = 0; i < 8; i++) {
    const data = new Uint8Array(100).fill(i);
    adds.push(writer.add(sha256(data), i % 2 ? BlobKind.tree : BlobKind.data, {
      codec: 0,
      data,
      rawLength: data.length,
    }));
  }
  await Promise.all(adds);
  await writer.writeIndex();
  assert.equal(overlapped, false, "no save began before the one before it ended");
  // Two blocks of 100 bytes pass the 150-byte target: four packs of each kind's pairs.
  assert.equal(writer.stats.packs, 4);
  assert.equal(writer.stats.blocks, 8);
});
