/**
 * Deterministic pseudo-random sources for the benchmark corpus: a small
 * seeded PRNG (xoshiro128**) for decisions, and an AES-128-CTR keystream for
 * bulk incompressible bytes at native speed. Neither uses `Math.random`, so
 * the same seed always yields the same corpus.
 *
 * @module
 */

import { createCipheriv, createHash } from "node:crypto";

/** splitmix32 step, used to spread a seed over the PRNG state. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Hashes a seed and a label into a 32-bit integer (for derived streams). */
function deriveSeed(seed: number, label: string): number {
  const digest = createHash("sha256").update(`bendsave-bench:${seed}:${label}`).digest();
  return digest.readUInt32LE(0);
}

/**
 * A seeded xoshiro128** generator. Streams with different labels are
 * independent, so adding a decision in one place does not shift another.
 *
 * @example
 * ```ts
 * const rng = new Prng(1, "files");
 * const size = rng.int(100, 65536);
 * ```
 */
export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** Creates a generator from a numeric seed and an optional stream label. */
  constructor(seed: number, label = "") {
    const state = { s: deriveSeed(seed, label) };
    this.#a = splitmix32(state);
    this.#b = splitmix32(state);
    this.#c = splitmix32(state);
    this.#d = splitmix32(state) | 1;
  }

  /** Returns the next unsigned 32-bit integer. */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0;
    const t = this.#b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return result;
  }

  /** Returns a float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Returns an integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** Returns true with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** Returns an integer in [lo, hi] drawn log-uniformly (many small, few large). */
  logUniform(lo: number, hi: number): number {
    const v = Math.exp(Math.log(lo) + this.float() * (Math.log(hi) - Math.log(lo)));
    return Math.min(hi, Math.max(lo, Math.round(v)));
  }

  /** Returns one element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("Cannot pick from an empty array.");
    return items[Math.floor(this.float() * items.length)] as T;
  }

  /** Returns a new generator derived from this one and a label. */
  fork(label: string): Prng {
    return new Prng(this.u32(), label);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

const ZEROS = new Uint8Array(1 << 20);

/**
 * An endless deterministic stream of incompressible bytes (AES-128-CTR
 * keystream keyed by the seed and a label), at native speed.
 *
 * @example
 * ```ts
 * const bytes = new RandomBytes(1, "big-0").next(4096);
 * ```
 */
export class RandomBytes {
  #cipher: ReturnType<typeof createCipheriv>;

  /** Creates the stream for a seed and label. */
  constructor(seed: number, label: string) {
    const key = createHash("sha256").update(`bendsave-bench-bytes:${seed}:${label}`).digest();
    this.#cipher = createCipheriv("aes-128-ctr", key.subarray(0, 16), key.subarray(16, 32));
  }

  /** Returns the next `n` bytes of the stream. */
  next(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const len = Math.min(ZEROS.length, n - off);
      out.set(this.#cipher.update(ZEROS.subarray(0, len)), off);
      off += len;
    }
    return out;
  }
}
