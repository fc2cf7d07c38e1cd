import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { MemStore } from "../drivers/mem.ts";
import type { Handle } from "../drivers/types.ts";
import { backup } from "../backup/backup.ts";
import { Repository } from "../repository.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { randomBytes, tempDir } from "../../testing/mod.ts";
import { readOrder } from "./collect.ts";
import { PackCache, packNeeds } from "./pack_cache.ts";
import { decodeChecked } from "./stored_block.ts";

const KiB = 1024;

/** A store that records the length of every pack read, over a MemStore. */
class CountingStore extends MemStore {
  readonly packReads: number[] = [];
  override async load(h: Handle, range?: { offset: number; length: number }) {
    const data = await super.load(h, range);
    if (h.kind === "pack") this.packReads.push(data.length);
    return data;
  }
}

/** Eight files of 600 KiB (incompressible, 256 KiB blocks) in 1 MiB packs; the open repository. */
async function fixture(dir: string) {
  const src = path.join(dir, "src");
  fs.mkdirSync(src);
  const bytes = new Map<string, Uint8Array>();
  for (let i = 0; i < 8; i++) {
    const data = randomBytes(600 * KiB, i + 1);
    fs.writeFileSync(path.join(src, `f${i}`), data);
    bytes.set(`f${i}`, data);
  }
  const store = new CountingStore();
  await backup(store, dirSource(src, { chunker: { kind: "fixed", size: 256 * KiB } }), {
    workers: 0,
    init: { packSize: 1024 * KiB },
  });
  const repo = await Repository.open(store);
  await repo.loadIndex();
  const root = (await repo.loadManifest((await repo.manifestNames())[0]!)).manifest.parts[0]!.root;
  const entries = (await repo.loadTree(root)).map((node) => ({ rel: node.name, node }));
  store.packReads.length = 0;
  const largestPack = Math.max(
    ...[...new Set(entries.flatMap((f) => f.node.blocks))].map((b) =>
      repo.index.pack(repo.locate(b, "").packIndex).size
    ),
  );
  return { store, repo, files: readOrder(repo, entries), bytes, largestPack };
}

/** Every file's bytes read through `cache`, its blocks checked. */
async function readAll(
  cache: PackCache,
  f: Awaited<ReturnType<typeof fixture>>,
): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const file of f.files) {
    const parts: Uint8Array[] = [];
    for (const id of file.node.blocks) {
      parts.push(
        decodeChecked(await cache.block(id, f.repo.locate(id, file.rel), file.rel), file.rel),
      );
    }
    const data = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let pos = 0;
    for (const p of parts) {
      data.set(p, pos);
      pos += p.length;
    }
    out.set(file.rel, data);
  }
  return out;
}

Deno.test("PackCache reads packs whole within its byte budget, once each, and drops each after its last block", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const budget = Math.floor(f.largestPack * 1.5); // one pack fits, two do not
  const cache = new PackCache(f.repo, packNeeds(f.repo, f.files), { budget });
  const read = await readAll(cache, f);
  for (const [rel, data] of f.bytes) assert.deepEqual(read.get(rel), data, rel);
  assert.ok(cache.peak > 0, "some pack was read whole");
  assert.ok(cache.peak <= budget, `peak ${cache.peak} within ${budget}`);
  assert.equal(cache.held, 0, "every pack was dropped after its last needed block");
  const whole = f.store.packReads.filter((n) => n > 256 * KiB).length;
  const packs = new Set(
    f.files.flatMap((x) => x.node.blocks.map((b) => f.repo.locate(b, "").packIndex)),
  );
  assert.ok(whole <= packs.size, `${whole} whole reads of ${packs.size} packs: none read twice`);
});

Deno.test("PackCache with a budget below a pack reads only the needed blocks, by range", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const cache = new PackCache(f.repo, packNeeds(f.repo, f.files), { budget: 512 * KiB });
  const read = await readAll(cache, f);
  for (const [rel, data] of f.bytes) assert.deepEqual(read.get(rel), data, rel);
  assert.equal(cache.peak, 0, "no pack held whole");
  const blocks = f.files.flatMap((x) => x.node.blocks);
  assert.equal(f.store.packReads.length, blocks.length, "one read per block");
  for (const [i, n] of f.store.packReads.entries()) {
    assert.equal(n, f.repo.locate(blocks[i]!, "").storedLength, `read ${i} is one block`);
  }
});

Deno.test("PackCache shared by two interleaved readers keeps within its budget and reads no pack whole twice", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const budget = Math.floor(f.largestPack * 1.5);
  const cache = new PackCache(f.repo, packNeeds(f.repo, f.files), { budget });
  const first = f.files.slice(0, 4);
  const second = f.files.slice(4);
  const reader = async (files: typeof f.files) => {
    for (const file of files) {
      for (const id of file.node.blocks) {
        decodeChecked(await cache.block(id, f.repo.locate(id, file.rel), file.rel), file.rel);
      }
    }
  };
  await Promise.all([reader(first), reader(second)]);
  assert.ok(cache.peak <= budget, `peak ${cache.peak} within ${budget}`);
  const whole = f.store.packReads.filter((n) => n > 256 * KiB).length;
  const packs = new Set(
    f.files.flatMap((x) => x.node.blocks.map((b) => f.repo.locate(b, "").packIndex)),
  );
  assert.ok(whole <= packs.size, `${whole} whole reads of ${packs.size} packs`);
});

Deno.test("PackCache refuses a budget that is not a byte count", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  assert.throws(() => new PackCache(f.repo, new Map(), { budget: -1 }), RangeError);
});
