import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  checkFastCdcOptions,
  FASTCDC_CUT_RULE,
  FASTCDC_MAX_MAX,
  FastCdcChunker,
  type FastCdcOptions,
  GEAR_TABLE_PROCEDURE,
  gearTable,
} from "./chunker_fastcdc.ts";

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

function oneShot(options: FastCdcOptions, data: Uint8Array): number[] {
  const c = new FastCdcChunker(options);
  const lengths = c.push(data);
  const last = c.finish();
  return last > 0 ? [...lengths, last] : lengths;
}

/**
 * A slow, literal transcription of FASTCDC_CUT_RULE with plain (non-int32)
 * arithmetic: "the top k bits of h are zero" is written as h < 2^(32-k).
 */
function referenceCuts(options: FastCdcOptions, data: Uint8Array): number[] {
  const { min, avg, max } = options;
  const gear = gearTable(options.seed ?? 0);
  const b = Math.log2(avg);
  const limitS = 2 ** (32 - (b + 2));
  const limitL = 2 ** (32 - (b - 2));
  const out: number[] = [];
  let start = 0;
  while (start < data.length) {
    let h = 0;
    let len = data.length - start;
    for (let j = min; start + j < data.length; j++) {
      h = (h * 2 + (gear[data[start + j] ?? 0] ?? 0)) % 2 ** 32;
      if (j < avg && h < limitS) {
        len = j + 1;
        break;
      }
      if (j >= avg && h < limitL) {
        len = j + 1;
        break;
      }
      if (j === max - 1) {
        len = max;
        break;
      }
    }
    out.push(len);
    start += len;
  }
  return out;
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

function insertAt(data: Uint8Array, at: number, bytes: number[]): Uint8Array {
  const out = new Uint8Array(data.length + bytes.length);
  out.set(data.subarray(0, at));
  out.set(bytes, at);
  out.set(data.subarray(at), at + bytes.length);
  return out;
}

const SMALL: FastCdcOptions = { min: 256, avg: 1024, max: 4096 };
const MEDIUM: FastCdcOptions = { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 };

Deno.test("gearTable matches the check values written in GEAR_TABLE_PROCEDURE", () => {
  // Also the published first outputs of splitmix64 seeded 0 and 1.
  assert.equal(gearTable(0)[0], 0xe220a839);
  assert.equal(gearTable(0)[1], 0x6e789e6a);
  assert.equal(gearTable(1)[0], 0x910a2dec);
  const checks = [...GEAR_TABLE_PROCEDURE.matchAll(/gear\[(\d+)\] = 0x([0-9A-F]{8})/g)];
  assert.ok(checks.length >= 4);
  let seed = 0;
  for (const m of checks) {
    if (GEAR_TABLE_PROCEDURE.lastIndexOf("for seed 1", m.index) >= 0) seed = 1;
    assert.equal(gearTable(seed)[Number(m[1])], parseInt(m[2] ?? "", 16), m[0]);
  }
});

Deno.test("gearTable returns a fresh copy of 256 distinct values", () => {
  const a = gearTable(5);
  assert.equal(a.length, 256);
  assert.equal(new Set(a).size, 256);
  a.fill(0);
  assert.notEqual(gearTable(5)[0], 0);
  assert.throws(() => gearTable(-1), RangeError);
  assert.throws(() => gearTable(2 ** 32), RangeError);
});

Deno.test("FastCdcChunker follows FASTCDC_CUT_RULE exactly", () => {
  assert.match(FASTCDC_CUT_RULE, /maskS = the top \(b \+ 2\) bits/);
  const data = randomBytes(1 << 20, 3);
  assert.deepEqual(oneShot(SMALL, data), referenceCuts(SMALL, data));
  const seeded = { min: 300, avg: 2048, max: 3000, seed: 99 };
  assert.deepEqual(oneShot(seeded, data), referenceCuts(seeded, data));
});

Deno.test("FastCdcChunker cut points are pinned (repository format contract)", () => {
  // If this fails, existing repositories lose dedup against new backups.
  const data = randomBytes(1 << 20, 1);
  assert.deepEqual(
    oneShot({ min: 1024, avg: 4096, max: 16384 }, data).slice(0, 8),
    PINNED_SEED0,
  );
  assert.deepEqual(
    oneShot({ min: 1024, avg: 4096, max: 16384, seed: 12345 }, data).slice(0, 8),
    PINNED_SEED12345,
  );
});
const PINNED_SEED0 = [2521, 4804, 4152, 5566, 3128, 6380, 1763, 2214];
const PINNED_SEED12345 = [4665, 4906, 4387, 4618, 4927, 5987, 6269, 5559];

Deno.test("FastCdcChunker keeps every block but the last within [min, max]", () => {
  const inputs = [
    randomBytes(4 << 20, 11),
    new Uint8Array(3 * MEDIUM.max + 5), // zeros: no content cut point, max cuts
    randomBytes(4 << 20, 12).map((b) => b & 3), // low entropy
    new Uint8Array(1 << 20).map((_, i) => i % 251), // periodic
  ];
  for (const data of inputs) {
    const lengths = oneShot(MEDIUM, data);
    assert.equal(lengths.reduce((a, b) => a + b, 0), data.length);
    for (const n of lengths.slice(0, -1)) {
      assert.ok(n >= MEDIUM.min && n <= MEDIUM.max, `block length ${n}`);
    }
    const last = lengths.at(-1) ?? 0;
    assert.ok(last >= 1 && last <= MEDIUM.max);
  }
  assert.deepEqual(oneShot(MEDIUM, inputs[1]!), [MEDIUM.max, MEDIUM.max, MEDIUM.max, 5]);
});

Deno.test("FastCdcChunker gives no block for an empty stream and one for a short one", () => {
  assert.deepEqual(oneShot(SMALL, new Uint8Array(0)), []);
  assert.deepEqual(oneShot(SMALL, new Uint8Array(1)), [1]);
  assert.deepEqual(oneShot(SMALL, randomBytes(SMALL.min, 4)), [SMALL.min]);
});

Deno.test("FastCdcChunker averages close to avg on random data", () => {
  const data = randomBytes(16 << 20, 21);
  const lengths = oneShot(MEDIUM, data);
  const mean = data.length / lengths.length;
  assert.ok(mean > 0.9 * MEDIUM.avg && mean < 1.5 * MEDIUM.avg, `mean ${mean}`);
});

Deno.test("FastCdcChunker is deterministic and depends on the seed", () => {
  const data = randomBytes(2 << 20, 31);
  const a = oneShot(SMALL, data);
  assert.deepEqual(oneShot(SMALL, data), a);
  assert.deepEqual(oneShot({ ...SMALL, seed: 0 }, data), a);
  assert.notDeepEqual(oneShot({ ...SMALL, seed: 1 }, data), a);
});

Deno.test("FastCdcChunker gives the same cuts for any split into pushes", () => {
  const data = randomBytes(3 << 20, 41);
  const rnd = randomBytes(100_000, 43);
  for (const options of [SMALL, MEDIUM]) {
    const expected = oneShot(options, data);
    for (let trial = 0; trial < 12; trial++) {
      const c = new FastCdcChunker(options);
      const got: number[] = [];
      let offset = 0;
      let k = trial * 1000;
      // Push sizes from 0 bytes to about 4 MiB, varying by trial.
      const scale = [1, 7, 97, 1021, 16411, 65537][trial % 6] ?? 1;
      while (offset < data.length) {
        const r = rnd[k++ % rnd.length] ?? 0;
        const n = Math.min(data.length - offset, Math.floor(r * scale / 4));
        got.push(...c.push(data.subarray(offset, offset + n)));
        offset += n;
      }
      const last = c.finish();
      if (last > 0) got.push(last);
      assert.deepEqual(got, expected, `trial ${trial}`);
    }
  }
});

Deno.test("FastCdcChunker resets after finish", () => {
  const data = randomBytes(100_000, 51);
  const c = new FastCdcChunker(SMALL);
  c.push(data.subarray(0, 12_345));
  c.finish();
  const lengths = c.push(data);
  const last = c.finish();
  assert.deepEqual(last > 0 ? [...lengths, last] : lengths, oneShot(SMALL, data));
});

Deno.test("FastCdcChunker resynchronizes after an insertion near the start", () => {
  const data = randomBytes(8 << 20, 61);
  const before = new Set(blockHashes(data, oneShot(MEDIUM, data)));
  for (const at of [1000, 40_000, 3_000_000]) {
    const changed = insertAt(data, at, [9, 8, 7, 6, 5]);
    const after = blockHashes(changed, oneShot(MEDIUM, changed));
    const fresh = after.filter((h) => !before.has(h)).length;
    assert.ok(fresh >= 1 && fresh <= 2, `${fresh} new blocks of ${after.length}`);
    assert.ok(after.length > 100);
  }
});

Deno.test("checkFastCdcOptions rejects values out of range with a RangeError quoting them", () => {
  const bad: [FastCdcOptions, string][] = [
    [{ min: 256, avg: 1000, max: 4096 }, "got 1000;"],
    [{ min: 256, avg: 128, max: 4096 }, "got 128;"],
    [{ min: 256, avg: 2 ** 29, max: 2 ** 30 }, `got ${2 ** 29};`],
    [{ min: 256, avg: NaN, max: 4096 }, "got NaN;"],
    [{ min: 32, avg: 1024, max: 4096 }, "got 32;"],
    [{ min: 1024, avg: 1024, max: 4096 }, "got 1024;"],
    [{ min: 256.5, avg: 1024, max: 4096 }, "got 256.5;"],
    [{ min: 256, avg: 1024, max: 1024 }, "got 1024;"],
    [{ min: 256, avg: 1024, max: FASTCDC_MAX_MAX + 1 }, `got ${FASTCDC_MAX_MAX + 1};`],
    [{ min: 256, avg: 1024, max: Infinity }, "got Infinity;"],
    [{ min: 256, avg: 1024, max: 4096, seed: -1 }, "got -1;"],
    [{ min: 256, avg: 1024, max: 4096, seed: 2 ** 32 }, `got ${2 ** 32};`],
    [{ min: 256, avg: 1024, max: 4096, seed: 0.5 }, "got 0.5;"],
  ];
  for (const [options, quoted] of bad) {
    assert.throws(() => checkFastCdcOptions(options), (e: unknown) => {
      assert.ok(e instanceof RangeError);
      assert.ok(e.message.includes(quoted), e.message);
      return true;
    });
    assert.throws(() => new FastCdcChunker(options), RangeError);
  }
  checkFastCdcOptions({ min: 64, avg: 256, max: 257, seed: 0xffff_ffff });
  checkFastCdcOptions({ min: 64, avg: 2 ** 28, max: FASTCDC_MAX_MAX });
});
