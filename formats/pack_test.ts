import assert from "node:assert/strict";
import { crc32c } from "./crc32c.ts";
import { sha256 } from "./hash.ts";
import {
  BlobKind,
  checkHeader,
  ENTRY_SIZE,
  PACK_FOOTER_SIZE,
  PACK_HEADER_SIZE,
  PACK_VERSION,
  type PackEntry,
  packHeader,
  packTrailer,
  parseFooter,
  parsePack,
  readEntry,
  writeEntry,
} from "./pack.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** Blocks of varied sizes and contents (never containing "BSPKTAIL"). */
function sampleBlocks(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => new Uint8Array((i * 37) % 300).fill(i & 0xff));
}

/** A pack as the pack writer lays it out: header, blocks back to back, trailer. */
function buildPack(blocks: readonly Uint8Array[]): { pack: Uint8Array; entries: PackEntry[] } {
  const entries: PackEntry[] = [];
  let offset = PACK_HEADER_SIZE;
  blocks.forEach((b, i) => {
    entries.push({
      id: sha256(b),
      kind: i % 2 === 0 ? BlobKind.data : BlobKind.tree,
      codec: i % 3,
      offset,
      storedLength: b.length,
      rawLength: b.length * 2 + i,
    });
    offset += b.length;
  });
  return { pack: concat([packHeader(), ...blocks, packTrailer(entries)]), entries };
}

Deno.test("packHeader is BSPK, version 1 and three zero bytes", () => {
  assert.equal(PACK_VERSION, 1);
  assert.deepEqual(packHeader(), new Uint8Array([0x42, 0x53, 0x50, 0x4b, 1, 0, 0, 0]));
  assert.equal(packHeader().length, PACK_HEADER_SIZE);
});

Deno.test("writeEntry lays out id, offset, lengths, kind, codec and zero padding little-endian", () => {
  const id = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
  const out = new Uint8Array(ENTRY_SIZE).fill(0xee);
  writeEntry(out, 0, {
    id,
    offset: 0x04030201,
    storedLength: 0x08070605,
    rawLength: 0x0c0b0a09,
    kind: BlobKind.tree,
    codec: 2,
  });
  assert.deepEqual(out.subarray(0, 32), id);
  assert.deepEqual(
    out.subarray(32),
    new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2, 0, 0]),
  );
});

Deno.test("readEntry and writeEntry round trip at an offset inside a subarray view", () => {
  const backing = new Uint8Array(7 + 3 * ENTRY_SIZE);
  const view = backing.subarray(7);
  const e: PackEntry = {
    id: sha256(enc("x")),
    kind: BlobKind.tree,
    codec: 1,
    offset: 0xffff_ffff,
    storedLength: 0xffff_fffe,
    rawLength: 0,
  };
  writeEntry(view, ENTRY_SIZE, e);
  assert.deepEqual(readEntry(view, ENTRY_SIZE), e);
  assert.ok(backing.subarray(0, 7 + ENTRY_SIZE).every((b) => b === 0), "nothing written before");
  assert.ok(backing.subarray(7 + 2 * ENTRY_SIZE).every((b) => b === 0), "nothing written after");
});

Deno.test("readEntry copies the id so later writes to the buffer do not change it", () => {
  const buf = new Uint8Array(ENTRY_SIZE);
  const id = sha256(enc("y"));
  writeEntry(buf, 0, {
    id,
    kind: BlobKind.data,
    codec: 0,
    offset: 8,
    storedLength: 1,
    rawLength: 1,
  });
  const e = readEntry(buf, 0);
  buf.fill(0);
  assert.deepEqual(e.id, id);
});

Deno.test("writeEntry throws RangeError on an id that is not 32 bytes", () => {
  const e = { kind: BlobKind.data, codec: 0, offset: 8, storedLength: 1, rawLength: 1 };
  for (const n of [0, 31, 33]) {
    assert.throws(
      () => writeEntry(new Uint8Array(100), 0, { ...e, id: new Uint8Array(n) }),
      RangeError,
    );
  }
});

Deno.test("packTrailer ends with count, crc32c of the entries and BSPKTAIL", () => {
  const { entries } = buildPack(sampleBlocks(3));
  const t = packTrailer(entries);
  assert.equal(t.length, 3 * ENTRY_SIZE + PACK_FOOTER_SIZE);
  const dv = new DataView(t.buffer, t.byteOffset + 3 * ENTRY_SIZE, 8);
  assert.equal(dv.getUint32(0, true), 3);
  assert.equal(dv.getUint32(4, true), crc32c(t.subarray(0, 3 * ENTRY_SIZE)));
  assert.equal(new TextDecoder().decode(t.subarray(t.length - 8)), "BSPKTAIL");
  assert.deepEqual(parseFooter(t.subarray(t.length - PACK_FOOTER_SIZE)), {
    count: 3,
    crc: crc32c(t.subarray(0, 3 * ENTRY_SIZE)),
  });
});

Deno.test("parsePack reads back a pack with no entries", () => {
  const { pack } = buildPack([]);
  assert.equal(pack.length, PACK_HEADER_SIZE + PACK_FOOTER_SIZE);
  assert.deepEqual(parsePack(pack), []);
});

Deno.test("parsePack reads back a pack with one entry", () => {
  const { pack, entries } = buildPack([enc("hello, pack")]);
  const got = parsePack(pack);
  assert.deepEqual(got, entries);
  const e = got[0]!;
  assert.deepEqual(pack.subarray(e.offset, e.offset + e.storedLength), enc("hello, pack"));
});

Deno.test("parsePack reads back a pack with many entries, including empty blocks", () => {
  const blocks = sampleBlocks(1000);
  assert.ok(blocks.some((b) => b.length === 0));
  const { pack, entries } = buildPack(blocks);
  const got = parsePack(pack);
  assert.equal(got.length, 1000);
  assert.deepEqual(got, entries);
  got.forEach((e, i) => {
    assert.deepEqual(
      sha256(pack.subarray(e.offset, e.offset + e.storedLength)),
      e.id,
      `block ${i}`,
    );
  });
});

Deno.test("parsePack accepts a pack held in a subarray view", () => {
  const { pack, entries } = buildPack(sampleBlocks(5));
  const backing = new Uint8Array(pack.length + 11);
  backing.set(pack, 5);
  assert.deepEqual(parsePack(backing.subarray(5, 5 + pack.length)), entries);
});

Deno.test("parsePack throws SyntaxError on every truncation of a pack", () => {
  const { pack } = buildPack(sampleBlocks(4));
  for (let n = 0; n < pack.length; n++) {
    assert.throws(() => parsePack(pack.subarray(0, n)), SyntaxError, `first ${n} bytes`);
    assert.throws(() => parsePack(pack.subarray(pack.length - n)), SyntaxError, `last ${n} bytes`);
  }
});

Deno.test("parsePack throws SyntaxError on any flipped byte in the trailer or footer", () => {
  const { pack } = buildPack(sampleBlocks(4));
  const trailerStart = pack.length - PACK_FOOTER_SIZE - 4 * ENTRY_SIZE;
  for (let pos = trailerStart; pos < pack.length; pos++) {
    for (const bit of [0x01, 0x80]) {
      const bad = pack.slice();
      bad[pos] = bad[pos]! ^ bit;
      assert.throws(() => parsePack(bad), SyntaxError, `byte ${pos} xor ${bit}`);
    }
  }
});

Deno.test("parsePack reports a flipped trailer entry byte as a checksum mismatch", () => {
  const { pack } = buildPack(sampleBlocks(4));
  const bad = pack.slice();
  const pos = pack.length - PACK_FOOTER_SIZE - 2 * ENTRY_SIZE + 3;
  bad[pos] = bad[pos]! ^ 0x10;
  assert.throws(() => parsePack(bad), { name: "SyntaxError", message: /checksum/ });
});

Deno.test("parsePack throws SyntaxError on a bad magic", () => {
  const { pack } = buildPack(sampleBlocks(2));
  for (let pos = 0; pos < 4; pos++) {
    const bad = pack.slice();
    bad[pos] = bad[pos]! ^ 0x20;
    assert.throws(() => parsePack(bad), { name: "SyntaxError", message: /BSPK/ });
  }
  assert.throws(() => checkHeader(enc("BSP")), SyntaxError);
});

Deno.test("parsePack throws SyntaxError on a pack format version it does not read", () => {
  const { pack } = buildPack(sampleBlocks(2));
  for (const v of [0, 2, 255]) {
    const bad = pack.slice();
    bad[4] = v;
    assert.throws(() => parsePack(bad), (e: unknown) => {
      assert.ok(e instanceof SyntaxError);
      assert.ok(e.message.includes(`version ${v}`), e.message);
      return true;
    });
  }
});

Deno.test("parsePack throws SyntaxError on entries pointing outside the block area", () => {
  const blocks = [new Uint8Array(10), new Uint8Array(20)];
  const base = buildPack(blocks).entries;
  const cases: [string, PackEntry[]][] = [
    ["into the header", [{ ...base[0]!, offset: 4 }, base[1]!]],
    ["past the blocks", [base[0]!, { ...base[1]!, storedLength: 21 }]],
    ["at the end", [base[0]!, { ...base[1]!, offset: 8 + 30 + 1, storedLength: 0 }]],
    ["into the trailer", [base[0]!, { ...base[1]!, offset: 8 + 30 }]],
    ["overlapping", [base[0]!, { ...base[1]!, offset: 8 + 9 }]],
    ["past 4 GiB", [base[0]!, { ...base[1]!, storedLength: 0xffff_ffff }]],
  ];
  for (const [what, entries] of cases) {
    const pack = concat([packHeader(), ...blocks, packTrailer(entries)]);
    assert.throws(
      () => parsePack(pack),
      { name: "SyntaxError", message: /outside the block area/ },
      what,
    );
  }
});

Deno.test("parsePack throws SyntaxError when the footer counts more entries than the pack holds", () => {
  const entries = buildPack(sampleBlocks(3)).entries;
  const trailer = packTrailer(entries);
  const pack = concat([packHeader(), trailer.subarray(2 * ENTRY_SIZE)]);
  assert.throws(() => parsePack(pack), SyntaxError);
});

Deno.test("parseFooter throws SyntaxError on a footer of the wrong size", () => {
  const t = packTrailer([]);
  assert.throws(() => parseFooter(t.subarray(1)), SyntaxError);
  assert.throws(() => parseFooter(concat([t, new Uint8Array(1)])), SyntaxError);
});
