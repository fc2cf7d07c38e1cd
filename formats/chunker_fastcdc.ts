/**
 * A FastCDC-style content-defined chunker: a gear rolling hash over the
 * bytes of each block, cut points where the hash has enough zero bits, with
 * normalized chunking (a harder mask before the average size and an easier
 * mask after it) between a minimum and a maximum block size.
 *
 * The gear table and the cut rule are part of the repository format: a
 * block's boundaries decide its SHA-256 and therefore deduplication across
 * backups. Changing either silently breaks dedup against old backups (never
 * correctness: restore only concatenates stored blocks). Both are written
 * out in {@linkcode GEAR_TABLE_PROCEDURE} and {@linkcode FASTCDC_CUT_RULE}.
 *
 * @module
 */

import type { Chunker } from "./chunker.ts";

/**
 * How the gear table is generated, exactly; part of the repository format
 * contract. The implementation in {@linkcode gearTable} follows this text.
 */
export const GEAR_TABLE_PROCEDURE: string = `bendsave FastCDC gear table, format 1.
The table has 256 unsigned 32-bit entries gear[0..255]. It is derived from
the chunker seed (an unsigned 32-bit integer, default 0) with splitmix64;
all arithmetic below is on unsigned 64-bit integers modulo 2^64:
  state = seed
  for i = 0 .. 255:
    state = state + 0x9E3779B97F4A7C15
    z = state
    z = (z XOR (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z XOR (z >> 27)) * 0x94D049BB133111EB
    z = z XOR (z >> 31)
    gear[i] = z >> 32            (the high 32 bits of the i-th output)
Check values for seed 0: gear[0] = 0xE220A839, gear[1] = 0x6E789E6A,
gear[2] = 0x06C45D18, gear[255] = 0x5A5832BB; for seed 1: gear[0] = 0x910A2DEC.`;

/**
 * Where blocks are cut, exactly; part of the repository format contract.
 * The implementation in {@linkcode FastCdcChunker} follows this text.
 */
export const FASTCDC_CUT_RULE: string = `bendsave FastCDC cut rule, format 1.
Parameters: min, avg, max (bytes; avg a power of two 2^b, min < avg < max)
and the gear table of the seed. Masks on the 32-bit hash keep its top bits:
  maskS = the top (b + 2) bits set, the others clear  (used before avg)
  maskL = the top (b - 2) bits set, the others clear  (used from avg on)
Each block starts where the previous one ended (the first at stream offset 0).
With x[j] the byte at offset j from the block start and h = 0:
  bytes at offsets 0 .. min-1 are not hashed;
  for j = min, min+1, ...:
    h = (2*h + gear[x[j]]) mod 2^32
    if j < avg and (h AND maskS) == 0: the block has length j + 1
    if j >= avg and (h AND maskL) == 0: the block has length j + 1
    if j == max - 1: the block has length max
If the stream ends first, the remaining bytes (if any) are the last block.
So every block but the last has a length in [min + 1, max].`;

/** Smallest accepted `min` in bytes (64 B). */
export const FASTCDC_MIN_MIN = 64;
/** Smallest accepted `avg` in bytes (256 B, so that maskL keeps at least 6 bits). */
export const FASTCDC_MIN_AVG = 256;
/** Largest accepted `avg` in bytes (256 MiB, so that maskS fits in 32 bits). */
export const FASTCDC_MAX_AVG = 256 * 1024 * 1024;
/** Largest accepted `max` in bytes (1 GiB). */
export const FASTCDC_MAX_MAX = 1024 * 1024 * 1024;
/** Largest accepted `seed` (seeds are unsigned 32-bit integers). */
export const FASTCDC_MAX_SEED = 0xffff_ffff;

/** Size parameters of the FastCDC chunker, in bytes. */
export interface FastCdcOptions {
  /** No cut before this many bytes; these bytes are not hashed. */
  min: number;
  /** Target block size, a power of two; the normalization point. */
  avg: number;
  /** A block is cut at this length if no content cut point came first. */
  max: number;
  /** Gear table seed, an unsigned 32-bit integer (default 0). */
  seed?: number;
}

/**
 * Throws a `RangeError` unless the options satisfy the limits above:
 * `avg` a power of two in [256 B, 256 MiB], integers with
 * 64 <= `min` < `avg` < `max` <= 1 GiB, and `seed` (if given) in [0, 2^32-1].
 *
 * @example
 * ```ts
 * checkFastCdcOptions({ min: 524288, avg: 2097152, max: 8388608 }); // ok
 * ```
 */
export function checkFastCdcOptions(o: FastCdcOptions): void {
  const { min, avg, max, seed } = o;
  if (
    !Number.isInteger(avg) || avg < FASTCDC_MIN_AVG || avg > FASTCDC_MAX_AVG ||
    (avg & (avg - 1)) !== 0
  ) {
    throw new RangeError(
      `FastCDC "avg" must be a power of two from ${FASTCDC_MIN_AVG} to ${FASTCDC_MAX_AVG} bytes, got ${
        String(avg)
      }; use for example 2097152 (2 MiB).`,
    );
  }
  if (!Number.isInteger(min) || min < FASTCDC_MIN_MIN || min >= avg) {
    throw new RangeError(
      `FastCDC "min" must be an integer from ${FASTCDC_MIN_MIN} to avg - 1 (${
        avg - 1
      }) bytes, got ${String(min)}; use for example avg / 4 (${avg / 4}).`,
    );
  }
  if (!Number.isInteger(max) || max <= avg || max > FASTCDC_MAX_MAX) {
    throw new RangeError(
      `FastCDC "max" must be an integer from avg + 1 (${
        avg + 1
      }) to ${FASTCDC_MAX_MAX} bytes, got ${String(max)}; use for example avg * 4 (${avg * 4}).`,
    );
  }
  if (
    seed !== undefined && (!Number.isInteger(seed) || seed < 0 || seed > FASTCDC_MAX_SEED)
  ) {
    throw new RangeError(
      `FastCDC "seed" must be an integer from 0 to ${FASTCDC_MAX_SEED}, got ${
        String(seed)
      }; omit it to use 0.`,
    );
  }
}

const MASK64 = (1n << 64n) - 1n;
/** Computed tables by seed; shared and never handed out (callers get copies). */
const tables = new Map<number, Int32Array>();

function cachedGear(seed: number): Int32Array {
  let table = tables.get(seed);
  if (table === undefined) {
    const gear = new Uint32Array(256);
    let state = BigInt(seed);
    for (let i = 0; i < 256; i++) {
      state = (state + 0x9e3779b97f4a7c15n) & MASK64;
      let z = state;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
      z = z ^ (z >> 31n);
      gear[i] = Number(z >> 32n);
    }
    // Same bits viewed as signed: keeps the hot loop in int32 arithmetic.
    table = new Int32Array(gear.buffer);
    tables.set(seed, table);
  }
  return table;
}

/**
 * Returns (a copy of) the gear table for `seed`, generated as described in
 * {@linkcode GEAR_TABLE_PROCEDURE}. Throws a `RangeError` for a bad seed.
 *
 * @example
 * ```ts
 * gearTable(0)[0] === 0xe220a839; // true
 * ```
 */
export function gearTable(seed = 0): Uint32Array {
  if (!Number.isInteger(seed) || seed < 0 || seed > FASTCDC_MAX_SEED) {
    throw new RangeError(
      `FastCDC "seed" must be an integer from 0 to ${FASTCDC_MAX_SEED}, got ${
        String(seed)
      }; omit it to use 0.`,
    );
  }
  return new Uint32Array(cachedGear(seed).slice().buffer);
}

/** An int32 with the top `bits` bits set (1 <= bits <= 31). */
function topBits(bits: number): number {
  return ~0 << (32 - bits);
}

/**
 * Streaming FastCDC chunker following {@linkcode FASTCDC_CUT_RULE}. Prefer
 * `createChunker({ kind: "fastcdc", ... })` from `chunker.ts`; this class is
 * the implementation behind it. Cut points do not depend on how the stream is
 * split into pushes. It keeps no bytes, only the current block's length and
 * hash, so memory use is constant. After {@linkcode FastCdcChunker.finish}
 * the chunker is reset and can chunk the next stream.
 *
 * @example
 * ```ts
 * const c = new FastCdcChunker({ min: 16384, avg: 65536, max: 262144 });
 * const lengths = [...c.push(bytes), c.finish()].filter((n) => n > 0);
 * ```
 */
export class FastCdcChunker implements Chunker {
  readonly #min: number;
  readonly #avg: number;
  readonly #max: number;
  readonly #maskS: number;
  readonly #maskL: number;
  readonly #gear: Int32Array;
  /** Bytes of the current block seen so far. */
  #len = 0;
  /** Gear hash of the current block (int32 bits). */
  #hash = 0;

  /** Creates a chunker; throws a `RangeError` for options outside the limits. */
  constructor(options: FastCdcOptions) {
    checkFastCdcOptions(options);
    this.#min = options.min;
    this.#avg = options.avg;
    this.#max = options.max;
    const bits = Math.log2(options.avg);
    this.#maskS = topBits(bits + 2);
    this.#maskL = topBits(bits - 2);
    this.#gear = cachedGear(options.seed ?? 0);
  }

  /** Pushes the next bytes; returns the lengths of the blocks completed by them. */
  push(data: Uint8Array): number[] {
    const gear = this.#gear;
    const min = this.#min;
    const avg = this.#avg;
    const max = this.#max;
    const maskS = this.#maskS;
    const maskL = this.#maskL;
    const n = data.length;
    const cuts: number[] = [];
    let len = this.#len;
    let h = this.#hash;
    let i = 0;
    while (i < n) {
      if (len < min) {
        // Skip the unhashed head of the block (h is 0 here).
        const skip = Math.min(min - len, n - i);
        len += skip;
        i += skip;
        if (i >= n) break;
      }
      let cut = false;
      if (len < avg) {
        const start = i;
        const stop = i + Math.min(avg - len, n - i);
        while (i < stop) {
          h = ((h << 1) + gear[data[i]!]!) | 0;
          i++;
          if ((h & maskS) === 0) {
            cut = true;
            break;
          }
        }
        len += i - start;
      }
      if (!cut && len >= avg) {
        const start = i;
        const stop = i + Math.min(max - len, n - i);
        while (i < stop) {
          h = ((h << 1) + gear[data[i]!]!) | 0;
          i++;
          if ((h & maskL) === 0) {
            cut = true;
            break;
          }
        }
        len += i - start;
        if (len === max) cut = true;
      }
      if (cut) {
        cuts.push(len);
        len = 0;
        h = 0;
      }
    }
    this.#len = len;
    this.#hash = h;
    return cuts;
  }

  /** Ends the stream: returns the length of the final block (0 if none) and resets. */
  finish(): number {
    const last = this.#len;
    this.#len = 0;
    this.#hash = 0;
    return last;
  }
}
