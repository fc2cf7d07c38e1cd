/**
 * The fixed-size chunker: every block is exactly `size` bytes except the
 * last one of a stream, which holds the remainder (1 to `size` bytes). An
 * empty stream has no blocks.
 *
 * @module
 */

import type { Chunker } from "./chunker.ts";

/** Smallest accepted fixed block size in bytes (64 B). */
export const FIXED_MIN_SIZE = 64;

/** Largest accepted fixed block size in bytes (1 GiB). */
export const FIXED_MAX_SIZE = 1024 * 1024 * 1024;

/**
 * Throws a `RangeError` unless `size` is an integer block size in
 * [{@linkcode FIXED_MIN_SIZE}, {@linkcode FIXED_MAX_SIZE}].
 *
 * @example
 * ```ts
 * checkFixedSize(8 * 1024 * 1024); // ok
 * ```
 */
export function checkFixedSize(size: number): void {
  if (!Number.isInteger(size) || size < FIXED_MIN_SIZE || size > FIXED_MAX_SIZE) {
    throw new RangeError(
      `Fixed chunker "size" must be an integer from ${FIXED_MIN_SIZE} to ${FIXED_MAX_SIZE} bytes, got ${
        String(size)
      }; use for example 8388608 (8 MiB).`,
    );
  }
}

/**
 * Streaming fixed-size chunker. Prefer `createChunker({ kind: "fixed", size })`
 * from `chunker.ts`; this class is the implementation behind it.
 *
 * After {@linkcode FixedChunker.finish} the chunker is reset and can chunk the
 * next stream.
 *
 * @example
 * ```ts
 * const c = new FixedChunker(4);
 * c.push(new Uint8Array(10)); // [4, 4]
 * c.finish(); // 2
 * ```
 */
export class FixedChunker implements Chunker {
  readonly #size: number;
  /** Bytes of the current, not yet complete, block. */
  #pending = 0;

  /** Creates a chunker cutting every `size` bytes; throws a `RangeError` for a bad size. */
  constructor(size: number) {
    checkFixedSize(size);
    this.#size = size;
  }

  /** Pushes the next bytes; returns the lengths of the blocks completed by them. */
  push(data: Uint8Array): number[] {
    const size = this.#size;
    let pending = this.#pending + data.length;
    const cuts: number[] = [];
    while (pending >= size) {
      cuts.push(size);
      pending -= size;
    }
    this.#pending = pending;
    return cuts;
  }

  /** Ends the stream: returns the length of the final block (0 if none) and resets. */
  finish(): number {
    const last = this.#pending;
    this.#pending = 0;
    return last;
  }
}
