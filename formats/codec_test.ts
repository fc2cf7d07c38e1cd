import assert from "node:assert/strict";
import {
  Codec,
  type CompressionName,
  type CompressionOptions,
  decodeBlock,
  decodeBlockTransient,
  DEFAULT_COMPRESSION,
  encodeBlock,
  MIN_COMPRESS_SIZE,
  parseCompressionName,
} from "./codec.ts";

const MiB = 1024 * 1024;
const SIZES = [0, 1, 63, 64, 8 * MiB - 1, 8 * MiB, 8 * MiB + 1];
const CODECS: CompressionName[] = ["zstd", "deflate", "none"];

/** Deterministic incompressible bytes (xorshift32, four bytes a step) so failures reproduce. */
function randomBytes(length: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(length / 4));
  let s = seed | 0 || 1;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    words[i] = s;
  }
  return new Uint8Array(words.buffer, 0, length);
}

/** Compressible bytes: a short text repeated. */
function textBytes(length: number): Uint8Array {
  const unit = new TextEncoder().encode("bendsave block codec test line 0123456789\n");
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += unit.length) out.set(unit.subarray(0, length - i), i);
  return out;
}

function options(codec: CompressionName): CompressionOptions {
  return { codec, level: 3, minSaving: 0.03 };
}

function expectedCodec(name: CompressionName): Codec {
  return name === "zstd" ? Codec.zstd : name === "deflate" ? Codec.deflate : Codec.raw;
}

Deno.test("Codec numbers are the ones stored in packs (raw 0, zstd 1, deflate 2)", () => {
  assert.deepEqual({ ...Codec }, { raw: 0, zstd: 1, deflate: 2 });
  assert.equal(MIN_COMPRESS_SIZE, 64);
  assert.deepEqual(DEFAULT_COMPRESSION, { codec: "zstd", level: 1, minSaving: 0.03 });
});

for (const name of CODECS) {
  Deno.test(`encodeBlock round trips compressible data with ${name} at sizes 0 to 8 MiB+1`, () => {
    for (const size of SIZES) {
      const raw = textBytes(size);
      const e = encodeBlock(raw, options(name));
      const want = size < MIN_COMPRESS_SIZE ? Codec.raw : expectedCodec(name);
      assert.equal(e.codec, want, `codec for ${size} bytes`);
      if (e.codec !== Codec.raw) {
        assert.ok(e.data.length < size, `${name} shrinks ${size} compressible bytes`);
      } else {
        assert.deepEqual(e.data, raw);
      }
      const back = decodeBlock(e.codec, e.data, size);
      assert.equal(back.length, size);
      assert.deepEqual(back, raw, `${name} round trip of ${size} bytes`);
    }
  });

  Deno.test(`encodeBlock stores incompressible data raw (codec 0) with ${name}`, () => {
    for (const size of SIZES) {
      const raw = randomBytes(size, size + 1);
      const e = encodeBlock(raw, options(name));
      assert.equal(e.codec, Codec.raw, `codec for ${size} random bytes`);
      assert.equal(e.data.length, size);
      assert.deepEqual(e.data, raw);
      assert.deepEqual(decodeBlock(e.codec, e.data, size), raw);
    }
  });
}

Deno.test("encodeBlock stores raw when compression saves less than minSaving", () => {
  // Half text, half random: compression saves about half, less than 60%.
  const raw = new Uint8Array(64 * 1024);
  raw.set(textBytes(32 * 1024));
  raw.set(randomBytes(32 * 1024, 7), 32 * 1024);
  for (const codec of ["zstd", "deflate"] as const) {
    assert.notEqual(encodeBlock(raw, { codec, level: 3, minSaving: 0.3 }).codec, Codec.raw);
    const e = encodeBlock(raw, { codec, level: 3, minSaving: 0.6 });
    assert.equal(e.codec, Codec.raw, codec);
    assert.deepEqual(e.data, raw);
  }
});

Deno.test("encodeBlock is deterministic for the same input and options", () => {
  const raw = textBytes(100_000);
  for (const codec of ["zstd", "deflate"] as const) {
    assert.deepEqual(encodeBlock(raw, options(codec)), encodeBlock(raw, options(codec)));
  }
});

Deno.test("decodeBlock throws SyntaxError on garbage for zstd and deflate", () => {
  const garbage = [
    new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]),
    randomBytes(100, 99),
    new Uint8Array(0),
  ];
  for (const codec of [Codec.zstd, Codec.deflate]) {
    for (const g of garbage) {
      assert.throws(
        () => decodeBlock(codec, g, 1000),
        SyntaxError,
        `codec ${codec}, ${g.length} bytes`,
      );
    }
  }
});

Deno.test("decodeBlock throws SyntaxError when the data is a truncated stream", () => {
  const raw = randomBytes(4096, 3).map((b, i) => (i % 3 === 0 ? 0 : b));
  for (const codec of ["zstd", "deflate"] as const) {
    const e = encodeBlock(raw, options(codec));
    assert.notEqual(e.codec, Codec.raw, codec);
    const cut = e.data.subarray(0, e.data.length >> 1);
    assert.throws(() => decodeBlock(e.codec, cut, raw.length), SyntaxError, codec);
  }
});

Deno.test("decodeBlock throws SyntaxError on a wrong rawLength for every codec", () => {
  const raw = textBytes(1000);
  for (const name of CODECS) {
    const e = encodeBlock(raw, options(name));
    assert.equal(e.codec, expectedCodec(name));
    for (const wrong of [0, 1, 999, 1001, 2000]) {
      assert.throws(
        () => decodeBlock(e.codec, e.data, wrong),
        SyntaxError,
        `${name} decoded with rawLength ${wrong}`,
      );
    }
  }
});

Deno.test("decodeBlock throws SyntaxError on an unknown codec", () => {
  for (const codec of [3, 15, 255, -1]) {
    assert.throws(
      () => decodeBlock(codec, new Uint8Array([1, 2, 3]), 3),
      (e: unknown) => e instanceof SyntaxError && e.message.includes(String(codec)),
      `codec ${codec}`,
    );
  }
});

Deno.test("parseCompressionName accepts zstd, deflate and none", () => {
  for (const name of CODECS) assert.equal(parseCompressionName(name), name);
});

Deno.test("parseCompressionName throws RangeError quoting an unknown name", () => {
  for (const bad of ["gzip", "ZSTD", "", "raw", " zstd"]) {
    assert.throws(
      () => parseCompressionName(bad),
      (e: unknown) => e instanceof RangeError && e.message.includes(`"${bad}"`),
      bad,
    );
  }
});

Deno.test("decodeBlock of zstd decodes the first frame and ignores empty frames after it (FORMAT.md 7)", async () => {
  const zlib = (await import("node:zlib")).default;
  const raw = new TextEncoder().encode("bendsave ".repeat(200));
  const frame = new Uint8Array(zlib.zstdCompressSync(raw));
  const empty = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x00, 0x01, 0x00, 0x00]);
  const join = (...parts: Uint8Array[]) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) (out.set(p, at), at += p.length);
    return out;
  };
  assert.deepEqual(decodeBlock(Codec.zstd, join(frame, empty, empty), raw.length), raw);
  assert.deepEqual(decodeBlock(Codec.zstd, empty, 0), new Uint8Array(0));
  // Refused: a truncated first frame, and a skippable frame before the block's frame.
  assert.throws(
    () => decodeBlock(Codec.zstd, frame.subarray(0, frame.length - 1), raw.length),
    SyntaxError,
  );
  const skippable = new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 1, 0, 0, 0, 7]);
  assert.throws(() => decodeBlock(Codec.zstd, join(skippable, frame), raw.length), SyntaxError);
});

Deno.test("decodeBlockTransient decodes as decodeBlock does, into one reused buffer", () => {
  const a = textBytes(5000);
  const b = textBytes(3000).map((x) => x ^ 1);
  const ea = encodeBlock(a, options("zstd"));
  const eb = encodeBlock(b, options("zstd"));
  assert.equal(ea.codec, Codec.zstd);
  const ra = decodeBlockTransient(ea.codec, ea.data, a.length);
  assert.deepEqual(ra, decodeBlock(ea.codec, ea.data, a.length));
  const rb = decodeBlockTransient(eb.codec, eb.data, b.length);
  assert.deepEqual(rb, b);
  // The same memory: the first result is valid only until the next call.
  assert.equal(ra.buffer, rb.buffer);
  assert.notDeepEqual(ra.subarray(0, 16), a.subarray(0, 16));
  // A block larger than the buffer so far gets a larger one, and decodes right.
  const big = textBytes(3 << 20);
  const eg = encodeBlock(big, options("zstd"));
  assert.deepEqual(decodeBlockTransient(eg.codec, eg.data, big.length), big);
  // Every codec, and damage reported as decodeBlock reports it.
  for (const name of CODECS) {
    const e = encodeBlock(a, options(name));
    assert.deepEqual(decodeBlockTransient(e.codec, e.data, a.length), a, name);
    assert.throws(() => decodeBlockTransient(e.codec, e.data, a.length + 1), SyntaxError, name);
  }
  assert.throws(() => decodeBlockTransient(Codec.zstd, randomBytes(100, 5), 1000), SyntaxError);
  assert.throws(
    () => decodeBlockTransient(ea.codec, ea.data.subarray(0, ea.data.length >> 1), a.length),
    SyntaxError,
  );
});
