import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { FIXED_MAX_SIZE, FIXED_MIN_SIZE, FixedChunker } from "./chunker_fixed.ts";

/** Deterministic pseudo-random bytes (xorshift32) so failures reproduce. */
function randomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let s = seed | 0 || 1;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

function oneShot(size: number, data: Uint8Array): number[] {
  const c = new FixedChunker(size);
  const lengths = c.push(data);
  const last = c.finish();
  return last > 0 ? [...lengths, last] : lengths;
}

function blockHashes(data: Uint8Array, lengths: number[]): string[] {
  const out: string[] = [];
  let offset = 0;
  for (const n of lengths) {
    out.push(createHash("sha256").update(data.subarray(offset, offset + n)).digest("hex"));
    offset += n;
  }
  return out;
}

Deno.test("FixedChunker cuts 0, 1, size-1, size, size+1 and 2*size bytes", () => {
  const size = 64;
  assert.deepEqual(oneShot(size, new Uint8Array(0)), []);
  assert.deepEqual(oneShot(size, new Uint8Array(1)), [1]);
  assert.deepEqual(oneShot(size, new Uint8Array(size - 1)), [size - 1]);
  assert.deepEqual(oneShot(size, new Uint8Array(size)), [size]);
  assert.deepEqual(oneShot(size, new Uint8Array(size + 1)), [size, 1]);
  assert.deepEqual(oneShot(size, new Uint8Array(2 * size)), [size, size]);
});

Deno.test("FixedChunker reports a block as soon as its last byte is pushed", () => {
  const c = new FixedChunker(64);
  assert.deepEqual(c.push(new Uint8Array(63)), []);
  assert.deepEqual(c.push(new Uint8Array(1)), [64]);
  assert.deepEqual(c.push(new Uint8Array(0)), []);
  assert.equal(c.finish(), 0);
});

Deno.test("FixedChunker gives the same cuts for any split into pushes", () => {
  const total = 10_000;
  const expected = oneShot(100, new Uint8Array(total));
  const sizes = randomBytes(2000, 7);
  for (let trial = 0; trial < 20; trial++) {
    const c = new FixedChunker(100);
    const got: number[] = [];
    let done = 0;
    let k = trial * 50;
    while (done < total) {
      const n = Math.min(total - done, (sizes[k++ % sizes.length] ?? 0) * (trial % 3 + 1));
      got.push(...c.push(new Uint8Array(n)));
      done += n;
    }
    const last = c.finish();
    if (last > 0) got.push(last);
    assert.deepEqual(got, expected);
  }
});

Deno.test("FixedChunker resets after finish", () => {
  const c = new FixedChunker(64);
  assert.deepEqual(c.push(new Uint8Array(100)), [64]);
  assert.equal(c.finish(), 36);
  assert.deepEqual(c.push(new Uint8Array(64)), [64]);
  assert.equal(c.finish(), 0);
});

Deno.test("FixedChunker changes almost every block after an insertion near the start", () => {
  const data = randomBytes(4 * 1024 * 1024, 42);
  const inserted = new Uint8Array(data.length + 5);
  inserted.set(data.subarray(0, 1000));
  inserted.set([1, 2, 3, 4, 5], 1000);
  inserted.set(data.subarray(1000), 1005);
  const size = 64 * 1024;
  const before = new Set(blockHashes(data, oneShot(size, data)));
  const after = blockHashes(inserted, oneShot(size, inserted));
  const shared = after.filter((h) => before.has(h)).length;
  assert.equal(after.length, 65);
  assert.equal(shared, 0);
});

Deno.test("FixedChunker rejects sizes that are not integers in range", () => {
  for (const bad of [0, -1, 1.5, NaN, Infinity, FIXED_MIN_SIZE - 1, FIXED_MAX_SIZE + 1]) {
    assert.throws(() => new FixedChunker(bad), (e: unknown) => {
      assert.ok(e instanceof RangeError);
      assert.match(e.message, new RegExp(`got ${String(bad)};`));
      return true;
    });
  }
  new FixedChunker(FIXED_MIN_SIZE);
  new FixedChunker(FIXED_MAX_SIZE);
});
