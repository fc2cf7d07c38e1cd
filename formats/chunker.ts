/**
 * The chunker interface used by the backup engine: a stream of bytes goes in,
 * block lengths (cut points) come out. Two kinds exist, chosen per repository
 * or per source by {@linkcode ChunkerParams}: fixed-size blocks and FastCDC
 * content-defined blocks. Chunkers are pure: they never see I/O and keep no
 * bytes, only counters, so the caller owns (and slices) the data.
 *
 * @example
 * ```ts
 * const lengths = splitAll({ kind: "fixed", size: 4 }, new Uint8Array(10)); // [4, 4, 2]
 * ```
 *
 * @module
 */

import { checkFixedSize, FixedChunker } from "./chunker_fixed.ts";
import { checkFastCdcOptions, FastCdcChunker } from "./chunker_fastcdc.ts";

/** Fixed-size blocks: every block is `size` bytes except the last. */
export interface FixedChunkerParams {
  /** Discriminant. */
  kind: "fixed";
  /** Block size in bytes, 64 B to 1 GiB. */
  size: number;
}

/** FastCDC content-defined blocks; see `FASTCDC_CUT_RULE` in `chunker_fastcdc.ts`. */
export interface FastCdcChunkerParams {
  /** Discriminant. */
  kind: "fastcdc";
  /** Minimum block size in bytes (at least 64, below `avg`); not hashed. */
  min: number;
  /** Target block size in bytes, a power of two from 256 B to 256 MiB. */
  avg: number;
  /** Maximum block size in bytes (above `avg`, at most 1 GiB). */
  max: number;
  /** Gear table seed, an unsigned 32-bit integer; 0 when absent. */
  seed?: number;
}

/** How a stream is cut into blocks; stored in the repository config. */
export type ChunkerParams = FixedChunkerParams | FastCdcChunkerParams;

/** Streaming: feed bytes, get back cut points. */
export interface Chunker {
  /**
   * Push the next bytes of the stream; returns the lengths of the blocks that
   * are now complete (each block ends inside what was pushed so far). The
   * chunker keeps no reference to `data`.
   */
  push(data: Uint8Array): number[];
  /**
   * End of stream: the length of the final block, or 0 when nothing is
   * pending. The chunker is then reset and can be used for another stream.
   */
  finish(): number;
}

/** The fixed default: 8 MiB blocks. */
export const DEFAULT_FIXED: FixedChunkerParams = Object.freeze({
  kind: "fixed",
  size: 8 * 1024 * 1024,
});

/**
 * The FastCDC default: min 512 KiB, avg 2 MiB, max 8 MiB (measurements in
 * `bench/CHUNKERS.md`). Blocks averaged 2.1 to 2.4 MiB on random data, so
 * large files get about 3.5 to 4 times the block count of 8 MiB fixed blocks
 * (index entries, per-block work); `max` equals the fixed block size (same
 * memory bound per block); and a 100-byte insertion into a large file cost
 * one new block (2.5 MiB on average) where fixed blocks rewrote the rest of
 * the file. A 1 MiB average saved a little more but doubles the block count
 * of large files.
 */
export const DEFAULT_FASTCDC: FastCdcChunkerParams = Object.freeze({
  kind: "fastcdc",
  min: 512 * 1024,
  avg: 2 * 1024 * 1024,
  max: 8 * 1024 * 1024,
});

const FIXED_FIELDS = ["kind", "size"] as const;
const FASTCDC_FIELDS = ["kind", "min", "avg", "max", "seed"] as const;

/** Short printable rendering of an arbitrary (possibly hostile) value for messages. */
function quote(v: unknown): string {
  switch (typeof v) {
    case "string":
      return JSON.stringify(v.length > 60 ? v.slice(0, 57) + "..." : v);
    case "bigint":
      return `${v}n`;
    case "function":
      return "a function";
    case "symbol":
      return v.toString();
    case "object": {
      if (v === null) return "null";
      let s: string | undefined;
      try {
        s = JSON.stringify(v);
      } catch {
        s = undefined;
      }
      if (s === undefined) return Array.isArray(v) ? "an array" : "an object";
      return s.length > 60 ? s.slice(0, 57) + "..." : s;
    }
    default:
      return String(v);
  }
}

function numberField(o: Record<string, unknown>, kind: string, field: string): number {
  const v = o[field];
  if (typeof v !== "number") {
    throw new TypeError(
      `Chunker params of kind "${kind}" need a number "${field}", got ${quote(v)}.`,
    );
  }
  return v;
}

/**
 * Checks an untrusted value (for example parsed from a config file) and
 * returns it as clean {@linkcode ChunkerParams} (a new object holding only the
 * known fields). Throws a `TypeError` for a wrong shape (not an object, a
 * missing or non-number field, an unknown field) and a `RangeError` for an
 * unknown kind or a value out of range; messages quote the bad value.
 *
 * @example
 * ```ts
 * const p = validateChunkerParams(JSON.parse('{"kind":"fixed","size":8388608}'));
 * ```
 */
export function validateChunkerParams(p: unknown): ChunkerParams {
  if (typeof p !== "object" || p === null || Array.isArray(p)) {
    throw new TypeError(
      `Chunker params must be an object such as {"kind":"fixed","size":8388608}, got ${quote(p)}.`,
    );
  }
  const o = p as Record<string, unknown>;
  const kind = o["kind"];
  if (typeof kind !== "string") {
    throw new TypeError(
      `Chunker params need a string "kind" ("fixed" or "fastcdc"), got ${quote(kind)}.`,
    );
  }
  if (kind !== "fixed" && kind !== "fastcdc") {
    throw new RangeError(`Chunker "kind" must be "fixed" or "fastcdc", got ${quote(kind)}.`);
  }
  const allowed: readonly string[] = kind === "fixed" ? FIXED_FIELDS : FASTCDC_FIELDS;
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) {
      throw new TypeError(
        `Chunker params of kind "${kind}" have an unknown field ${quote(key)}; allowed fields are ${
          allowed.join(", ")
        }.`,
      );
    }
  }
  if (kind === "fixed") {
    const size = numberField(o, kind, "size");
    checkFixedSize(size);
    return { kind, size };
  }
  const min = numberField(o, kind, "min");
  const avg = numberField(o, kind, "avg");
  const max = numberField(o, kind, "max");
  const out: FastCdcChunkerParams = { kind, min, avg, max };
  if (o["seed"] !== undefined) out.seed = numberField(o, kind, "seed");
  checkFastCdcOptions(out);
  return out;
}

/**
 * Creates a streaming chunker. `params` is checked with
 * {@linkcode validateChunkerParams} first, so bad values throw here.
 *
 * @example
 * ```ts
 * const chunker = createChunker(DEFAULT_FASTCDC);
 * for await (const bytes of stream) {
 *   for (const length of chunker.push(bytes)) emitBlock(length);
 * }
 * const last = chunker.finish();
 * if (last > 0) emitBlock(last);
 * ```
 */
export function createChunker(params: ChunkerParams): Chunker {
  const p = validateChunkerParams(params);
  return p.kind === "fixed" ? new FixedChunker(p.size) : new FastCdcChunker(p);
}

/**
 * Cuts a whole buffer in one call; returns the block lengths, which sum to
 * `data.length` (none for an empty buffer).
 *
 * @example
 * ```ts
 * splitAll({ kind: "fixed", size: 64 }, new Uint8Array(130)); // [64, 64, 2]
 * ```
 */
export function splitAll(params: ChunkerParams, data: Uint8Array): number[] {
  const chunker = createChunker(params);
  const lengths = chunker.push(data);
  const last = chunker.finish();
  if (last > 0) lengths.push(last);
  return lengths;
}
