import assert from "node:assert/strict";
import zlib from "node:zlib";
import { zstdCompress, zstdDecompress } from "./zstd_context.ts";
import { prng } from "../testing/mod.ts";

function sample(n: number, seed: number): Uint8Array {
  const next = prng(seed);
  const out = new Uint8Array(n);
  // Runs of a small alphabet with random bytes between: compressible, not trivially.
  for (let i = 0; i < n; i++) out[i] = i % 97 < 60 ? (i % 13) + 97 : next() & 0xff;
  return out;
}

Deno.test("zstdCompress writes standard frames at each level, for small and large blocks alike", () => {
  for (const [i, n] of [0, 1, 64, 300, 4096, 65_536, 1_048_576, 1_048_577, 3_000_000].entries()) {
    for (const level of [1, 3, 9]) {
      const raw = sample(n, i + 1);
      const stored = zstdCompress(raw, level);
      assert.deepEqual(
        new Uint8Array(zlib.zstdDecompressSync(stored)),
        raw,
        `${n} bytes, level ${level}`,
      );
      assert.deepEqual(zstdDecompress(stored, n), raw);
      // Its own buffer, exactly as long as the frame (it is handed to other threads).
      assert.equal(stored.byteOffset, 0);
      assert.equal(stored.buffer.byteLength, stored.length);
    }
  }
});

Deno.test("zstdDecompress refuses damaged frames and decodes the next block after one", () => {
  const raw = sample(20_000, 7);
  const frame = zstdCompress(raw, 1);
  const damaged = frame.slice();
  damaged[4] = damaged[4]! ^ 0xff; // the frame header descriptor
  assert.throws(() => zstdDecompress(damaged, raw.length), SyntaxError);
  assert.deepEqual(zstdDecompress(frame, raw.length), raw, "a fresh context after the failure");
  assert.throws(() => zstdDecompress(frame.subarray(0, frame.length - 3), raw.length), SyntaxError);
  assert.throws(() => zstdDecompress(frame, raw.length - 1), /more than/);
  assert.throws(() => zstdDecompress(frame, raw.length + 1), /expected 20001/);
  assert.throws(() => zstdDecompress(new Uint8Array(0), 0), /zstd frame/);
  assert.deepEqual(zstdDecompress(frame, raw.length), raw);
});
