/**
 * Micro-benchmarks behind the chunker and primitive choices; see
 * `bench/CHUNKERS.md` for recorded results.
 *
 * Run: `deno bench --allow-all bench/chunker_bench.ts`
 *
 * - chunk: fixed 8 MiB vs the FastCDC default (and a 64 KiB-average FastCDC)
 *   over 64 MiB of pseudo-random bytes.
 * - sha256: node:crypto vs hash-wasm on 8 MiB.
 * - compress / decompress: zstd (node:zlib, level 3) vs fflate deflate
 *   (level 6 and 1) on 8 MiB of compressible, CSV-like bytes.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { createSHA256 } from "hash-wasm";
import { deflateSync, inflateSync } from "fflate";
import { DEFAULT_FASTCDC, DEFAULT_FIXED, splitAll } from "../formats/chunker.ts";

const MiB = 1024 * 1024;

/** Deterministic pseudo-random bytes (xorshift32 words). */
function randomBytes(length: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(length / 4));
  let s = seed | 0 || 1;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    words[i] = s >>> 0;
  }
  return new Uint8Array(words.buffer, 0, length);
}

/** Deterministic CSV-like rows: a stand-in for a database export. */
function csvBytes(length: number, seed: number): Uint8Array {
  const words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];
  const out = new Uint8Array(length);
  const enc = new TextEncoder();
  let s = seed | 0 || 1;
  let offset = 0;
  let row = 0;
  while (offset < length) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const line = `${row++},${words[s & 7]},${(s >>> 3) % 100000},2026-11-${
      10 + ((s >>> 20) % 20)
    },${((s >>> 8) % 1000000) / 100}\n`;
    const { written } = enc.encodeInto(line, out.subarray(offset));
    offset += written;
    if (written === 0) break;
  }
  return out;
}

const random64 = randomBytes(64 * MiB, 0x5eed);
const random8 = random64.subarray(0, 8 * MiB);
const csv8 = csvBytes(8 * MiB, 7);
const wasmSha = await createSHA256();

const zstd8 = zstdCompressSync(csv8, { params: { [constants.ZSTD_c_compressionLevel]: 3 } });
const deflate8 = deflateSync(csv8, { level: 6 });
const deflate8fast = deflateSync(csv8, { level: 1 });
console.log(
  `compressed size of 8 MiB CSV-like input: zstd-3 ${zstd8.length} B, ` +
    `deflate-6 ${deflate8.length} B, deflate-1 ${deflate8fast.length} B`,
);

Deno.bench("chunk 64 MiB random: fixed 8 MiB", { group: "chunk", baseline: true }, () => {
  splitAll(DEFAULT_FIXED, random64);
});
Deno.bench("chunk 64 MiB random: fastcdc default (2 MiB avg)", { group: "chunk" }, () => {
  splitAll(DEFAULT_FASTCDC, random64);
});
Deno.bench("chunk 64 MiB random: fastcdc 64 KiB avg", { group: "chunk" }, () => {
  splitAll({ kind: "fastcdc", min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 }, random64);
});

Deno.bench("sha256 8 MiB: node:crypto", { group: "sha256", baseline: true }, () => {
  createHash("sha256").update(random8).digest();
});
Deno.bench("sha256 8 MiB: hash-wasm", { group: "sha256" }, () => {
  wasmSha.init();
  wasmSha.update(random8);
  wasmSha.digest("binary");
});

Deno.bench("compress 8 MiB csv: zstd-3 (node:zlib)", { group: "compress", baseline: true }, () => {
  zstdCompressSync(csv8, { params: { [constants.ZSTD_c_compressionLevel]: 3 } });
});
Deno.bench("compress 8 MiB csv: deflate-6 (fflate)", { group: "compress" }, () => {
  deflateSync(csv8, { level: 6 });
});
Deno.bench("compress 8 MiB csv: deflate-1 (fflate)", { group: "compress" }, () => {
  deflateSync(csv8, { level: 1 });
});
Deno.bench("compress 8 MiB random: zstd-3 (node:zlib)", { group: "compress-random" }, () => {
  zstdCompressSync(random8, { params: { [constants.ZSTD_c_compressionLevel]: 3 } });
});
Deno.bench("compress 8 MiB random: deflate-6 (fflate)", { group: "compress-random" }, () => {
  deflateSync(random8, { level: 6 });
});

Deno.bench(
  "decompress 8 MiB csv: zstd (node:zlib)",
  { group: "decompress", baseline: true },
  () => {
    zstdDecompressSync(zstd8);
  },
);
Deno.bench("decompress 8 MiB csv: inflate (fflate)", { group: "decompress" }, () => {
  inflateSync(deflate8);
});
