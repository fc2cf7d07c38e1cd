import assert from "node:assert/strict";
import { randomFillSync } from "node:crypto";
import { ID_LENGTH, sha256, toHex } from "../formats/hash.ts";
import { encodeIndexFile } from "../formats/index_file.ts";
import { BlobKind, type PackEntry } from "../formats/pack.ts";
import { BlockIndex } from "./block_index.ts";

const enc = (s: string) => new TextEncoder().encode(s);

/** `n` random 32-byte ids, back to back in one buffer. */
function randomIds(n: number): Uint8Array {
  return randomFillSync(new Uint8Array(n * ID_LENGTH));
}

function idAt(ids: Uint8Array, i: number): Uint8Array {
  return ids.subarray(i * ID_LENGTH, (i + 1) * ID_LENGTH);
}

/** A deterministic entry for block number `i` with id `id`. */
function entry(id: Uint8Array, i: number): PackEntry {
  return {
    id,
    kind: i % 5 === 0 ? BlobKind.tree : BlobKind.data,
    codec: i % 3,
    offset: 8 + (i % 1000) * 4096,
    storedLength: 1 + (i * 7919) % 4_000_000,
    rawLength: (i * 104_729) % 0xffff_ffff,
  };
}

/**
 * An index file of `count` random blocks in packs of `perPack`, built one
 * pack at a time (an index file is its 8-byte header followed by pack
 * records, so single-pack files concatenate) to keep the test's own memory
 * small.
 */
function bigIndexFile(ids: Uint8Array, count: number, perPack: number): Uint8Array {
  const packs = Math.ceil(count / perPack);
  const recordSize = 32 + 8 + 4;
  const out = new Uint8Array(8 + packs * recordSize + count * 48);
  let pos = 8;
  for (let p = 0; p < packs; p++) {
    const entries: PackEntry[] = [];
    for (let i = p * perPack; i < Math.min(count, (p + 1) * perPack); i++) {
      entries.push(entry(idAt(ids, i), i));
    }
    const file = encodeIndexFile([{
      packId: sha256(enc(`pack ${p}`)),
      packSize: 32 * 1024 * 1024,
      entries,
    }]);
    if (p === 0) out.set(file.subarray(0, 8));
    out.set(file.subarray(8), pos);
    pos += file.length - 8;
  }
  assert.equal(pos, out.length);
  return out;
}

Deno.test("BlockIndex add, has and lookup work for 100k random ids across growth", () => {
  const n = 100_000;
  const ids = randomIds(n);
  const index = new BlockIndex();
  const packs = Array.from({ length: 10 }, (_, p) => index.addPack(sha256(enc(`p${p}`)), 1000 + p));
  const before = index.memoryBytes();
  for (let i = 0; i < n; i++) assert.equal(index.add(packs[i % 10]!, entry(idAt(ids, i), i)), true);
  assert.equal(index.size, n);
  assert.ok(index.memoryBytes() > before, "the arrays grew");
  for (let i = 0; i < n; i++) {
    const id = idAt(ids, i);
    assert.equal(index.has(id), true);
    const want = entry(id, i);
    const loc = index.lookup(id);
    assert.deepEqual(loc, {
      packId: sha256(enc(`p${i % 10}`)),
      packIndex: i % 10,
      kind: want.kind,
      codec: want.codec,
      offset: want.offset,
      storedLength: want.storedLength,
      rawLength: want.rawLength,
    });
  }
  const absent = randomIds(10_000);
  for (let i = 0; i < 10_000; i++) {
    assert.equal(index.has(idAt(absent, i)), false);
    assert.equal(index.lookup(idAt(absent, i)), undefined);
  }
});

Deno.test("BlockIndex finds ids that share their first four bytes", () => {
  const index = new BlockIndex(16);
  const p = index.addPack(sha256(enc("p")), 1);
  const ids: Uint8Array[] = [];
  for (let i = 0; i < 200; i++) {
    const id = sha256(enc(`id ${i}`));
    id.set([0xde, 0xad, 0xbe, 0xef]); // every id hashes to the same slot
    ids.push(id);
    assert.equal(index.add(p, entry(id, i)), true);
  }
  ids.forEach((id, i) => assert.equal(index.lookup(id)?.offset, entry(id, i).offset, `id ${i}`));
  const other = sha256(enc("other"));
  other.set([0xde, 0xad, 0xbe, 0xef]);
  assert.equal(index.has(other), false);
});

Deno.test("BlockIndex add ignores a duplicate id and keeps the first location", () => {
  const index = new BlockIndex();
  const p0 = index.addPack(sha256(enc("p0")), 10);
  const p1 = index.addPack(sha256(enc("p1")), 20);
  const id = sha256(enc("block"));
  assert.equal(index.add(p0, entry(id, 1)), true);
  assert.equal(index.add(p1, entry(id.slice(), 2)), false);
  assert.equal(index.size, 1);
  assert.equal(index.lookup(id)?.packIndex, p0);
  assert.equal(index.lookup(id)?.offset, entry(id, 1).offset);
});

Deno.test("BlockIndex add copies the id so the caller may reuse its buffer", () => {
  const index = new BlockIndex();
  const p = index.addPack(sha256(enc("p")), 10);
  const buf = sha256(enc("a"));
  index.add(p, entry(buf, 0));
  buf.set(sha256(enc("b")));
  assert.equal(index.has(sha256(enc("a"))), true);
  assert.equal(index.has(sha256(enc("b"))), false);
});

Deno.test("BlockIndex add throws RangeError on an id that is not 32 bytes", () => {
  const index = new BlockIndex();
  for (const n of [0, 31, 33]) {
    assert.throws(() => index.add(0, entry(new Uint8Array(n), 0)), RangeError);
  }
  assert.equal(index.size, 0);
});

Deno.test("BlockIndex addPack returns the same number for a known pack id", () => {
  const index = new BlockIndex();
  const a = sha256(enc("a"));
  const b = sha256(enc("b"));
  assert.equal(index.addPack(a, 100), 0);
  assert.equal(index.addPack(b, 200), 1);
  assert.equal(index.addPack(a.slice(), 999), 0);
  assert.equal(index.packCount, 2);
  assert.deepEqual(index.pack(0), { id: a, size: 100 });
  assert.deepEqual([...index.packs()], [{ id: a, size: 100, index: 0 }, {
    id: b,
    size: 200,
    index: 1,
  }]);
});

Deno.test("BlockIndex addPack copies the pack id", () => {
  const index = new BlockIndex();
  const id = sha256(enc("a"));
  index.addPack(id, 1);
  id.fill(0);
  assert.deepEqual(index.pack(0).id, sha256(enc("a")));
});

Deno.test("BlockIndex pack throws RangeError on an unknown pack number", () => {
  const index = new BlockIndex();
  index.addPack(sha256(enc("a")), 1);
  for (const i of [1, -1, 1.5]) assert.throws(() => index.pack(i), RangeError, String(i));
});

Deno.test("BlockIndex entries lists every block once with its pack", () => {
  const index = new BlockIndex();
  const p = index.addPack(sha256(enc("p")), 1);
  const want = new Map<string, number>();
  for (let i = 0; i < 50; i++) {
    const id = sha256(enc(`b${i}`));
    index.add(p, entry(id, i));
    want.set(toHex(id), entry(id, i).storedLength);
  }
  const got = new Map<string, number>();
  for (const e of index.entries()) {
    assert.equal(e.packIndex, p);
    got.set(toHex(e.id), e.storedLength);
  }
  assert.deepEqual(got, want);
});

Deno.test("BlockIndex loadIndexFile finds every block of a small index file", () => {
  const packs = [0, 1, 2].map((p) => ({
    packId: sha256(enc(`pack ${p}`)),
    packSize: 1000 * (p + 1),
    entries: Array.from({ length: 5 }, (_, i) => entry(sha256(enc(`${p}/${i}`)), p * 5 + i)),
  }));
  const index = new BlockIndex();
  assert.equal(index.loadIndexFile(encodeIndexFile(packs)), 15);
  assert.equal(index.size, 15);
  assert.equal(index.packCount, 3);
  for (const [p, pack] of packs.entries()) {
    assert.deepEqual(index.pack(p), { id: pack.packId, size: pack.packSize });
    for (const e of pack.entries) {
      const { id: _, ...rest } = e;
      assert.deepEqual(index.lookup(e.id), { ...rest, packId: pack.packId, packIndex: p });
    }
  }
});

Deno.test("BlockIndex loadIndexFile twice adds nothing the second time", () => {
  const pack = {
    packId: sha256(enc("pack")),
    packSize: 100,
    entries: [entry(sha256(enc("x")), 0), entry(sha256(enc("y")), 1)],
  };
  const file = encodeIndexFile([pack]);
  const index = new BlockIndex();
  index.loadIndexFile(file);
  assert.equal(index.loadIndexFile(file), 2, "returns the blocks in the file");
  assert.equal(index.size, 2);
  assert.equal(index.packCount, 1);
});

Deno.test("BlockIndex loadIndexFile throws SyntaxError on a malformed file and adds nothing", () => {
  const file = encodeIndexFile([{
    packId: sha256(enc("p")),
    packSize: 1,
    entries: [entry(sha256(enc("x")), 0)],
  }]);
  const index = new BlockIndex();
  assert.throws(() => index.loadIndexFile(file.subarray(0, file.length - 1)), SyntaxError);
  assert.throws(() => index.loadIndexFile(new Uint8Array(8)), SyntaxError);
  assert.equal(index.size, 0);
  assert.equal(index.packCount, 0);
});

Deno.test("BlockIndex loadIndexFile holds 1,000,000 blocks in at most 64 bytes each", () => {
  const n = 1_000_000;
  const ids = randomIds(n);
  let file: Uint8Array | undefined = bigIndexFile(ids, n, 2000);
  const index = new BlockIndex();
  const t0 = performance.now();
  assert.equal(index.loadIndexFile(file), n);
  const loadMs = performance.now() - t0;
  file = undefined;
  assert.equal(index.size, n);
  assert.equal(index.packCount, n / 2000);
  for (let i = 0; i < n; i++) {
    if (!index.has(idAt(ids, i))) assert.fail(`block ${i} (${toHex(idAt(ids, i))}) is not found`);
  }
  for (const i of [0, 1, 1999, 2000, 123_457, n - 1]) {
    const want = entry(idAt(ids, i), i);
    const loc = index.lookup(idAt(ids, i));
    assert.equal(loc?.packIndex, Math.floor(i / 2000));
    assert.equal(loc?.offset, want.offset);
    assert.equal(loc?.storedLength, want.storedLength);
    assert.equal(loc?.rawLength, want.rawLength);
    assert.equal(loc?.kind, want.kind);
    assert.equal(loc?.codec, want.codec);
  }
  const perBlock = index.memoryBytes() / index.size;
  console.log(
    `BlockIndex: ${perBlock.toFixed(1)} bytes/block for ${n} blocks ` +
      `(${(index.memoryBytes() / 2 ** 20).toFixed(1)} MiB, loaded in ${loadMs.toFixed(0)} ms)`,
  );
  assert.ok(perBlock <= 64, `${perBlock.toFixed(1)} bytes per block is more than 64`);
});

Deno.test("BlockIndex position numbers blocks in the order added, -1 when absent, with their pack", () => {
  const index = new BlockIndex(4);
  const ids = randomIds(40); // past the first growth
  const p0 = index.addPack(sha256(enc("p0")), 1);
  const p1 = index.addPack(sha256(enc("p1")), 1);
  for (let i = 0; i < 40; i++) index.add(i < 20 ? p0 : p1, entry(idAt(ids, i).slice(), i));
  for (let i = 0; i < 40; i++) {
    assert.equal(index.position(idAt(ids, i)), i);
    assert.equal(index.packOfPosition(i), i < 20 ? p0 : p1);
  }
  assert.equal(index.position(sha256(enc("absent"))), -1);
  assert.throws(() => index.packOfPosition(40), RangeError);
});
