import assert from "node:assert/strict";
import { PackWriter } from "./pack_writer.ts";
import { BlockIndex } from "./block_index.ts";
import { MemStore } from "./drivers/mem.ts";
import { BlobKind, parsePack } from "../formats/pack.ts";
import { sha256, toHex } from "../formats/hash.ts";
import { decodeIndexFile } from "../formats/index_file.ts";

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

Deno.test("PackWriter writeIndex lists every pack saved since the last one, in save order, as its trailer says", async () => {
  const store = new MemStore();
  const saved: string[] = [];
  const save = store.save.bind(store);
  store.save = (...args: Parameters<MemStore["save"]>) => {
    if (args[0].kind === "pack") saved.push(args[0].name);
    return save(...args);
  };
  const writer = new PackWriter(store, new BlockIndex(), { targetSize: 150 });
  const addBlocks = async (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const data = new Uint8Array(100 + (i % 7));
      new DataView(data.buffer).setUint32(0, i);
      await writer.add(sha256(data), BlobKind.data, { codec: 0, data, rawLength: data.length + 1 });
    }
  };
  /** Checks index file `name` against the packs `packs` as saved. */
  const check = async (name: string | null, packs: string[]) => {
    assert.ok(name);
    const listed = decodeIndexFile(await store.load({ kind: "index", name }));
    assert.deepEqual(listed.map((p) => toHex(p.packId)), packs);
    for (const p of listed) {
      const bytes = await store.load({ kind: "pack", name: toHex(p.packId) });
      assert.equal(p.packSize, bytes.length);
      assert.deepEqual(p.entries, parsePack(bytes));
    }
  };
  // 600 blocks, two to a pack: the index records outgrow any small first buffer many times.
  await addBlocks(0, 600);
  assert.equal(writer.unindexed.length, 300);
  const first = await writer.writeIndex();
  assert.equal(saved.length, 300);
  await check(first, saved);
  assert.deepEqual(writer.unindexed, []);
  assert.equal(await writer.writeIndex(), null, "nothing new to index");
  await addBlocks(600, 605);
  await check(await writer.writeIndex(), saved.slice(300));
});

Deno.test("PackWriter add copies a block's bytes: the caller may reuse its buffer", async () => {
  const store = new MemStore();
  const writer = new PackWriter(store, new BlockIndex(), { targetSize: 1 << 20 });
  const buf = new Uint8Array(64);
  const ids: Uint8Array[] = [];
  for (let i = 0; i < 3; i++) {
    buf.fill(i + 1);
    ids.push(sha256(buf));
    await writer.add(ids[i]!, BlobKind.data, { codec: 0, data: buf, rawLength: buf.length });
  }
  assert.equal(writer.has(ids[2]!), true, "a block of the open pack is pending");
  await writer.flush();
  const [pack] = writer.unindexed;
  const bytes = await store.load({ kind: "pack", name: toHex(pack!.packId) });
  assert.deepEqual(toHex(sha256(bytes)), toHex(pack!.packId));
  const entries = parsePack(bytes);
  assert.deepEqual(entries.map((e) => toHex(e.id)), ids.map(toHex));
  for (const [i, e] of entries.entries()) {
    assert.deepEqual(
      bytes.subarray(e.offset, e.offset + e.storedLength),
      new Uint8Array(64).fill(i + 1),
    );
  }
});

Deno.test("PackWriter: a pack saved while an index file is being saved goes into the next index file", async () => {
  const store = new MemStore();
  const save = store.save.bind(store);
  let releaseIndex!: () => void;
  const indexHeld = new Promise<void>((r) => (releaseIndex = r));
  store.save = async (...args: Parameters<MemStore["save"]>) => {
    if (args[0].kind === "index") await indexHeld;
    return await save(...args);
  };
  const writer = new PackWriter(store, new BlockIndex(), { targetSize: 1000 });
  const block = (n: number) => {
    const data = new Uint8Array(2000).fill(n);
    return [sha256(data), BlobKind.data, { codec: 0, data, rawLength: data.length }] as const;
  };
  await writer.add(...block(1)); // fills the pack: saved at once
  const first = writer.writeIndex(); // its index save waits
  await new Promise((r) => setTimeout(r, 10));
  await writer.add(...block(2)); // another pack, saved while the index file is held
  releaseIndex();
  const names = [await first, await writer.writeIndex()];
  assert.ok(names[1] !== null, "the second pack is listed by a second index file");
  const listed = [];
  for (const name of names) {
    const bytes = await store.load({ kind: "index", name: name! });
    listed.push(decodeIndexFile(bytes).map((p) => p.entries.length));
  }
  assert.deepEqual(listed, [[1], [1]]);
});

Deno.test("PackWriter: a pack written while the next one fills fails the next add, flush and writeIndex, and nothing is indexed", async () => {
  const store = new MemStore();
  const save = store.save.bind(store);
  let saves = 0;
  store.save = async (...args: Parameters<MemStore["save"]>) => {
    if (args[0].kind === "pack" && saves++ === 0) {
      await new Promise((r) => setTimeout(r, 5));
      throw new Error("disk full");
    }
    return await save(...args);
  };
  const writer = new PackWriter(store, new BlockIndex(), { targetSize: 1000 });
  const block = (n: number) => {
    const data = new Uint8Array(2000).fill(n);
    return [sha256(data), BlobKind.data, { codec: 0, data, rawLength: data.length }] as const;
  };
  await writer.add(...block(1)); // fills a pack: its save begins, the add does not wait for it
  await assert.rejects(writer.add(...block(2)), /disk full/); // waits for the one before
  await assert.rejects(writer.add(...block(3)), /disk full/);
  await assert.rejects(writer.writeIndex(), /disk full/);
  const indexes = [];
  for await (const f of store.list("index")) indexes.push(f.name);
  assert.deepEqual(indexes, []);
});
