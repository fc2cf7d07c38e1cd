/**
 * Where a restore reads its blocks: one place that reads packs, bounded by
 * bytes. A pack of which the restore needs more than half is read whole
 * once and kept while it fits the budget (the least recently used pack is
 * dropped first); any other block is read alone, by a ranged read of just
 * its bytes. A pack larger than the budget is never held whole.
 *
 * @module
 */
import type { BlobLocation } from "../block_index.ts";
import type { Repository } from "../repository.ts";
import { toHex } from "../../formats/hash.ts";
import type { StoredBlock } from "./stored_block.ts";

const MiB = 1024 * 1024;

/** Bytes of whole packs a {@linkcode PackCache} holds, at most, by default (two default packs). */
export const PACK_CACHE_BYTES = 64 * MiB;

/** Options of a {@linkcode PackCache}. */
export interface PackCacheOptions {
  /** Bytes of whole packs held at most (default {@linkcode PACK_CACHE_BYTES}). */
  readonly budget?: number;
}

/** Reads the stored blocks of a restore, holding at most a budget of pack bytes. */
export class PackCache {
  readonly #repo: Repository;
  readonly #budget: number;
  /** Bytes the restore needs of each pack (by index number): decides whole or ranged reads. */
  readonly #needed: ReadonlyMap<number, number>;
  /** Whole packs held, least recently used first. */
  readonly #packs = new Map<number, Promise<Uint8Array>>();
  readonly #sizes = new Map<number, number>();
  #held = 0;
  #peak = 0;

  /**
   * A cache over `repo` for a restore that needs `needed` bytes of each
   * pack (see {@linkcode neededBytes}).
   */
  constructor(
    repo: Repository,
    needed: ReadonlyMap<number, number>,
    options: PackCacheOptions = {},
  ) {
    const budget = options.budget ?? PACK_CACHE_BYTES;
    if (!Number.isSafeInteger(budget) || budget < 0) {
      throw new RangeError(`pack cache budget ${budget} is not a byte count: give 0 or more`);
    }
    this.#repo = repo;
    this.#budget = budget;
    this.#needed = needed;
  }

  /** Bytes of whole packs held now. */
  get held(): number {
    return this.#held;
  }

  /** The most bytes of whole packs held at once. */
  get peak(): number {
    return this.#peak;
  }

  /**
   * Block `id` (at `loc`) of `what`, its stored bytes (a view: copy it to
   * keep or transfer it). A pack that is missing or short is an
   * `IntegrityError` naming `what`.
   */
  async block(id: Uint8Array, loc: BlobLocation, what: string): Promise<StoredBlock> {
    const meta = { id, pack: toHex(loc.packId), codec: loc.codec, rawLength: loc.rawLength };
    const size = this.#repo.index.pack(loc.packIndex).size;
    const whole = size <= this.#budget &&
      ((this.#needed.get(loc.packIndex) ?? 0) > size / 2 ||
        !this.#repo.store.capabilities.rangedRead);
    if (!whole) {
      const data = await this.#repo.loadPackRange(loc.packId, loc.offset, loc.storedLength, what);
      return { ...meta, data };
    }
    let pack = this.#packs.get(loc.packIndex);
    if (pack === undefined) {
      this.#evictFor(size);
      pack = this.#repo.loadPackRange(loc.packId, 0, size, what);
      this.#packs.set(loc.packIndex, pack);
      this.#sizes.set(loc.packIndex, size);
      this.#held += size;
      this.#peak = Math.max(this.#peak, this.#held);
      pack.catch(() => this.#drop(loc.packIndex));
    } else {
      // most recently used last
      this.#packs.delete(loc.packIndex);
      this.#packs.set(loc.packIndex, pack);
    }
    const bytes = await pack;
    return { ...meta, data: bytes.subarray(loc.offset, loc.offset + loc.storedLength) };
  }

  /** Drops least recently used packs until `size` more bytes fit the budget. */
  #evictFor(size: number): void {
    for (const p of this.#packs.keys()) {
      if (this.#held + size <= this.#budget) break;
      this.#drop(p);
    }
  }

  #drop(p: number): void {
    if (!this.#packs.delete(p)) return;
    this.#held -= this.#sizes.get(p) ?? 0;
    this.#sizes.delete(p);
  }
}

/**
 * Bytes of each pack (by index number) that the blocks of `files` take,
 * each block counted once: what a {@linkcode PackCache} decides whole
 * reads by.
 */
export function neededBytes(
  repo: Repository,
  files: Iterable<{ readonly rel: string; readonly node: { readonly blocks: Uint8Array[] } }>,
): Map<number, number> {
  const needed = new Map<number, number>();
  const counted = new Set<string>();
  for (const f of files) {
    for (const b of f.node.blocks) {
      const hex = toHex(b);
      if (counted.has(hex)) continue;
      counted.add(hex);
      const loc = repo.locate(b, f.rel);
      needed.set(loc.packIndex, (needed.get(loc.packIndex) ?? 0) + loc.storedLength);
    }
  }
  return needed;
}
