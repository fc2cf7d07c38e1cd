/**
 * Generators of file contents for the benchmark corpus: prose-like text from
 * a Zipf-distributed pseudo-word vocabulary (compresses about 3:1), CSV-like
 * records (about 2-3:1), incompressible bytes and zero runs. All output is a
 * pure function of the seed and the PRNG passed in.
 *
 * @module
 */

import { Prng, type RandomBytes } from "./prng.ts";

/** The kinds of content a corpus file or segment can hold. */
export type ContentKind = "text" | "records" | "random" | "zeros";

const VOCABULARY_SIZE = 4096;
const CONSONANTS = "bcdfghjklmnprstvwz";
const VOWELS = "aeiouy";
const STATUSES = ["ok", "pending", "failed", "retry", "shipped", "cancelled"] as const;

/**
 * Produces deterministic text-like and record-like bytes.
 *
 * @example
 * ```ts
 * const gen = new ContentGenerator(1);
 * const text = gen.text(new Prng(1, "doc"), 4096);
 * ```
 */
export class ContentGenerator {
  #words: Uint8Array[] = [];
  #wordStrings: string[] = [];
  #zipf = new Uint16Array(65536);
  #seed: number;

  /** Builds the vocabulary for a seed. */
  constructor(seed: number) {
    this.#seed = seed;
    const rng = new Prng(seed, "vocabulary");
    const encoder = new TextEncoder();
    for (let i = 0; i < VOCABULARY_SIZE; i++) {
      const syllables = rng.int(1, 4);
      let word = "";
      for (let s = 0; s < syllables; s++) {
        word += CONSONANTS[rng.int(0, CONSONANTS.length - 1)];
        word += VOWELS[rng.int(0, VOWELS.length - 1)];
        if (rng.chance(0.3)) word += CONSONANTS[rng.int(0, CONSONANTS.length - 1)];
      }
      this.#wordStrings.push(word);
      this.#words.push(encoder.encode(word));
    }
    // Zipf(s = 1.05) over the vocabulary, quantised into a 65536-entry table.
    const weights = new Float64Array(VOCABULARY_SIZE);
    let total = 0;
    for (let i = 0; i < VOCABULARY_SIZE; i++) {
      weights[i] = 1 / Math.pow(i + 1, 1.05);
      total += weights[i] as number;
    }
    let acc = 0;
    let slot = 0;
    for (let i = 0; i < VOCABULARY_SIZE; i++) {
      acc += (weights[i] as number) / total;
      const end = Math.min(65536, Math.round(acc * 65536));
      for (; slot < end; slot++) this.#zipf[slot] = i;
    }
    for (; slot < 65536; slot++) this.#zipf[slot] = VOCABULARY_SIZE - 1;
  }

  /** Returns a vocabulary word (for file and directory names). */
  word(rng: Prng): string {
    return this.#wordStrings[this.#zipf[rng.u32() & 0xffff] as number] as string;
  }

  /** Returns `n` bytes of prose-like text: words, punctuation, lines, paragraphs. */
  text(rng: Prng, n: number): Uint8Array {
    const out = new Uint8Array(n);
    let off = 0;
    let inLine = 0;
    let lineLength = 8;
    let capital = true;
    while (off < n) {
      const r = rng.u32();
      const word = this.#words[this.#zipf[r & 0xffff] as number] as Uint8Array;
      const len = Math.min(word.length, n - off);
      out.set(len === word.length ? word : word.subarray(0, len), off);
      if (capital) out[off] = (out[off] as number) - 32;
      off += len;
      capital = false;
      if (off >= n) break;
      const p = (r >>> 16) & 0xff;
      if (p < 14) {
        out[off++] = 0x2e; // "."
        capital = true;
      } else if (p < 26) {
        out[off++] = 0x2c; // ","
      }
      if (off >= n) break;
      if (++inLine >= lineLength) {
        out[off++] = 0x0a;
        if (capital && p < 3 && off < n) out[off++] = 0x0a; // paragraph
        inLine = 0;
        lineLength = 6 + ((r >>> 24) & 7);
      } else {
        out[off++] = 0x20;
      }
    }
    return out;
  }

  /** Returns `n` bytes of CSV-like records (ids, timestamps, numbers, words). */
  records(rng: Prng, n: number): Uint8Array {
    const lines: string[] = [];
    let length = 0;
    let id = rng.int(1, 1_000_000);
    let time = 1_700_000_000 + rng.int(0, 10_000_000);
    while (length < n) {
      id += rng.int(1, 7);
      time += rng.int(0, 90);
      const line = `${id},${new Date(time * 1000).toISOString()},${this.word(rng)},${
        rng.int(0, 99_999)
      },${(rng.float() * 1000).toFixed(2)},${rng.pick(STATUSES)}\n`;
      lines.push(line);
      length += line.length;
    }
    return new TextEncoder().encode(lines.join("")).subarray(0, n);
  }

  /** Returns `n` bytes of the given kind; `random` draws from `bytes`. */
  content(kind: ContentKind, rng: Prng, bytes: RandomBytes, n: number): Uint8Array {
    switch (kind) {
      case "text":
        return this.text(rng, n);
      case "records":
        return this.records(rng, n);
      case "random":
        return bytes.next(n);
      case "zeros":
        return new Uint8Array(n);
    }
  }

  /** The seed this generator was built from. */
  get seed(): number {
    return this.#seed;
  }
}
