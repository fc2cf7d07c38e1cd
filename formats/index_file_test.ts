import assert from "node:assert/strict";
import { sha256 } from "./hash.ts";
import {
  decodeIndexFile,
  encodeIndexFile,
  INDEX_VERSION,
  type IndexedPack,
  indexFileOfPack,
  scanIndexFile,
} from "./index_file.ts";
import { BlobKind, ENTRY_SIZE, type PackEntry, readEntry, trailerEntries } from "./pack.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function samplePack(n: number, count: number, packSize: number): IndexedPack {
  const entries: PackEntry[] = [];
  let offset = 8;
  for (let i = 0; i < count; i++) {
    const storedLength = 100 + i;
    entries.push({
      id: sha256(enc(`pack ${n} block ${i}`)),
      kind: i % 2 === 0 ? BlobKind.data : BlobKind.tree,
      codec: i % 3,
      offset,
      storedLength,
      rawLength: storedLength * 3,
    });
    offset += storedLength;
  }
  return { packId: sha256(enc(`pack ${n}`)), packSize, entries };
}

const SEVERAL: IndexedPack[] = [
  samplePack(0, 3, 1000),
  samplePack(1, 0, 24),
  samplePack(2, 250, 2 ** 33 + 5), // a pack size above 32 bits survives the u64 field
  samplePack(3, 1, 0xffff_ffff),
];

Deno.test("encodeIndexFile starts with BSIX and version 1", () => {
  assert.equal(INDEX_VERSION, 1);
  assert.deepEqual(encodeIndexFile([]), new Uint8Array([0x42, 0x53, 0x49, 0x58, 1, 0, 0, 0]));
});

Deno.test("encodeIndexFile lays out one record as pack id, u64le size, u32le count, entries", () => {
  const p = samplePack(9, 2, 0x0102030405);
  const buf = encodeIndexFile([p]);
  assert.equal(buf.length, 8 + 32 + 8 + 4 + 2 * ENTRY_SIZE);
  assert.deepEqual(buf.subarray(8, 40), p.packId);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  assert.equal(dv.getBigUint64(40, true), 0x0102030405n);
  assert.equal(dv.getUint32(48, true), 2);
  assert.deepEqual(readEntry(buf, 52), p.entries[0]);
  assert.deepEqual(readEntry(buf, 52 + ENTRY_SIZE), p.entries[1]);
});

Deno.test("decodeIndexFile round trips several packs", () => {
  const buf = encodeIndexFile(SEVERAL);
  assert.deepEqual(decodeIndexFile(buf), SEVERAL);
});

Deno.test("decodeIndexFile round trips an empty index", () => {
  assert.deepEqual(decodeIndexFile(encodeIndexFile([])), []);
});

Deno.test("decodeIndexFile reads an index held in a subarray view and copies pack ids", () => {
  const buf = encodeIndexFile(SEVERAL);
  const backing = new Uint8Array(buf.length + 13);
  backing.set(buf, 9);
  const got = decodeIndexFile(backing.subarray(9, 9 + buf.length));
  backing.fill(0);
  assert.deepEqual(got, SEVERAL);
});

Deno.test("scanIndexFile visits every pack with its size, count and raw entries", () => {
  const buf = encodeIndexFile(SEVERAL);
  const seen: { packId: Uint8Array; packSize: number; count: number; bytes: number }[] = [];
  scanIndexFile(buf, (packId, packSize, count, entries) => {
    seen.push({ packId: packId.slice(), packSize, count, bytes: entries.length });
    for (let i = 0; i < count; i++) {
      const want = SEVERAL[seen.length - 1]!.entries[i];
      assert.deepEqual(readEntry(entries, i * ENTRY_SIZE), want);
    }
  });
  assert.deepEqual(
    seen,
    SEVERAL.map((p) => ({
      packId: p.packId,
      packSize: p.packSize,
      count: p.entries.length,
      bytes: p.entries.length * ENTRY_SIZE,
    })),
  );
});

Deno.test("scanIndexFile visits nothing in an empty index", () => {
  let calls = 0;
  scanIndexFile(encodeIndexFile([]), () => calls++);
  assert.equal(calls, 0);
});

Deno.test("decodeIndexFile throws SyntaxError on every truncation of a file", () => {
  const buf = encodeIndexFile([samplePack(0, 2, 500), samplePack(1, 1, 300)]);
  // Cutting exactly at a record boundary leaves a valid, shorter index.
  const boundaries = new Set([8, 8 + 44 + 2 * ENTRY_SIZE]);
  for (let n = 0; n < buf.length; n++) {
    if (boundaries.has(n)) {
      assert.equal(decodeIndexFile(buf.subarray(0, n)).length, n === 8 ? 0 : 1);
      continue;
    }
    assert.throws(() => decodeIndexFile(buf.subarray(0, n)), SyntaxError, `first ${n} bytes`);
  }
});

Deno.test("decodeIndexFile throws SyntaxError on a bad magic", () => {
  const buf = encodeIndexFile(SEVERAL);
  for (let pos = 0; pos < 4; pos++) {
    const bad = buf.slice();
    bad[pos] = bad[pos]! ^ 0x01;
    assert.throws(() => decodeIndexFile(bad), { name: "SyntaxError", message: /BSIX/ });
  }
  assert.throws(() => decodeIndexFile(enc("BSPK\x01\x00\x00\x00")), SyntaxError);
});

Deno.test("decodeIndexFile throws SyntaxError on an index version it does not read", () => {
  const buf = encodeIndexFile(SEVERAL);
  for (const v of [0, 2]) {
    const bad = buf.slice();
    bad[4] = v;
    assert.throws(() => decodeIndexFile(bad), {
      name: "SyntaxError",
      message: new RegExp(`version ${v}`),
    });
  }
});

Deno.test("scanIndexFile throws SyntaxError when a count runs past the end of the file", () => {
  const buf = encodeIndexFile([samplePack(0, 2, 500)]);
  new DataView(buf.buffer).setUint32(8 + 32 + 8, 3, true);
  let calls = 0;
  assert.throws(() => scanIndexFile(buf, () => calls++), {
    name: "SyntaxError",
    message: /truncated/,
  });
  assert.equal(calls, 0);
});

Deno.test("indexFileOfPack makes the bytes encodeIndexFile makes of that one pack", () => {
  const entries: PackEntry[] = [0, 1, 2].map((i) => ({
    id: sha256(enc(`block ${i}`)),
    kind: i === 1 ? BlobKind.tree : BlobKind.data,
    codec: i,
    offset: 8 + i * 100,
    storedLength: 100,
    rawLength: 150 + i,
  }));
  const packId = sha256(enc("pack"));
  assert.deepEqual(
    indexFileOfPack(packId, 5000, trailerEntries(entries)),
    encodeIndexFile([{ packId, packSize: 5000, entries }]),
  );
  assert.deepEqual(
    indexFileOfPack(packId, 8, new Uint8Array(0)),
    encodeIndexFile([{ packId, packSize: 8, entries: [] }]),
  );
  assert.throws(() => indexFileOfPack(packId, 8, new Uint8Array(47)), RangeError);
});
