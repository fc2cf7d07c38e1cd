/**
 * Where a restore reads its blocks: one place that reads packs, bounded by
 * bytes. A pack of which the restore needs more than half is read whole
 * when it fits the budget, and kept until its last needed block is read;
 * a pack no block was read from for a while ({@linkcode IDLE_READS}) makes
 * room. Any other block is read alone, by a ranged read of just its bytes:
 * a pack that does not fit beside the packs in use (two readers, each in
 * its own pack) is read block by block rather than dropping one in use, so
 * the cache never reads a pack twice to hold more than its budget.
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

/**
 * A pack held whole that no block was read from in this many block reads
 * (of any pack) is dropped when room is needed: the blocks it still holds
 * were not read after all (files found unchanged, or left out).
 */
export const IDLE_READS = 256;

/** Options of a {@linkcode PackCache}. */
export interface PackCacheOptions {
  /** Bytes of whole packs held at most (default {@linkcode PACK_CACHE_BYTES}). */
  readonly budget?: number;
}

/** Reads the stored blocks of a restore, holding at most a budget of pack bytes. */
export class PackCache {
  readonly #repo: Repository;
  readonly #budget: number;
  /** What the restore needs of each pack (by index number): decides whole or ranged reads. */
  readonly #needed: ReadonlyMap<number, PackNeed>;
  /** Blocks still to be read from each pack, counted from `#needed`. */
  readonly #left = new Map<number, number>();
  /** Whole packs held, first read first. */
  readonly #packs = new Map<number, Promise<Uint8Array>>();
  readonly #sizes = new Map<number, number>();
  /** The block read (a count of reads) each held pack was last read at. */
  readonly #used = new Map<number, number>();
  #reads = 0;
  #held = 0;
  #peak = 0;

  /**
   * A cache over `repo` for a restore that needs `needed` of each pack
   * (see {@linkcode packNeeds}).
   */
  constructor(
    repo: Repository,
    needed: ReadonlyMap<number, PackNeed>,
    options: PackCacheOptions = {},
  ) {
    const budget = options.budget ?? PACK_CACHE_BYTES;
    if (!Number.isSafeInteger(budget) || budget < 0) {
      throw new RangeError(`pack cache budget ${budget} is not a byte count: give 0 or more`);
    }
    this.#repo = repo;
    this.#budget = budget;
    this.#needed = needed;
    for (const [p, n] of needed) this.#left.set(p, n.blocks);
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
   * keep or transfer it; in an encrypted repository still sealed). A pack that is missing or short is an
   * `IntegrityError` naming `what`.
   */
  async block(id: Uint8Array, loc: BlobLocation, what: string): Promise<StoredBlock> {
    const meta = { id, pack: toHex(loc.packId), codec: loc.codec, rawLength: loc.rawLength };
    const size = this.#repo.index.pack(loc.packIndex).size;
    const tick = ++this.#reads;
    const left = (this.#left.get(loc.packIndex) ?? 0) - 1;
    this.#left.set(loc.packIndex, left);
    let pack = this.#packs.get(loc.packIndex);
    const whole = pack !== undefined || (left > 0 &&
      ((this.#needed.get(loc.packIndex)?.bytes ?? 0) > size / 2 ||
        !this.#repo.store.capabilities.rangedRead) &&
      this.#roomFor(size, tick));
    if (!whole) {
      const data = await this.#repo.loadPackRange(loc.packId, loc.offset, loc.storedLength, what);
      return this.#withKey({ ...meta, data });
    }
    if (pack === undefined) {
      pack = this.#repo.loadPackRange(loc.packId, 0, size, what);
      this.#packs.set(loc.packIndex, pack);
      this.#sizes.set(loc.packIndex, size);
      this.#held += size;
      this.#peak = Math.max(this.#peak, this.#held);
      pack.catch(() => this.#drop(loc.packIndex));
    }
    this.#used.set(loc.packIndex, tick);
    if (left <= 0) this.#drop(loc.packIndex); // its last needed block: readers hold the bytes
    const bytes = await pack;
    return this.#withKey({
      ...meta,
      data: bytes.subarray(loc.offset, loc.offset + loc.storedLength),
    });
  }

  /**
   * In an encrypted repository, `b` with the master key: the output opens it
   * (stored_block.ts), on the writer threads when there are some.
   */
  #withKey(b: StoredBlock): StoredBlock {
    const crypto = this.#repo.crypto;
    return crypto ? { ...b, masterKey: crypto.key.raw } : b;
  }

  /**
   * True when `size` more bytes fit the budget, after dropping the idle
   * packs (first read first) if need be.
   */
  #roomFor(size: number, tick: number): boolean {
    if (size > this.#budget) return false;
    for (const p of [...this.#packs.keys()]) {
      if (this.#held + size <= this.#budget) break;
      if (tick - (this.#used.get(p) ?? 0) > IDLE_READS) this.#drop(p);
    }
    return this.#held + size <= this.#budget;
  }

  #drop(p: number): void {
    if (!this.#packs.delete(p)) return;
    this.#held -= this.#sizes.get(p) ?? 0;
    this.#sizes.delete(p);
    this.#used.delete(p);
  }
}

/** What a restore needs of one pack. */
export interface PackNeed {
  /** Stored bytes of the distinct blocks needed. */
  bytes: number;
  /** Blocks read from it, each time a file needs one. */
  blocks: number;
}

/** A file whose blocks a restore reads: its path (for messages) and its block ids. */
type BlockList = { readonly rel: string; readonly node: { readonly blocks: Uint8Array[] } };

/**
 * Adds what the blocks of `f` need of each pack (by index number) to
 * `needed`: the stored bytes of its distinct blocks (more than half of a
 * pack: it is read whole) and how many block reads (the pack is dropped
 * after the last). A block several files share is counted once per file,
 * so `needed` holds one entry per pack, however many files are counted: it
 * can only make a pack read whole sooner.
 */
export function addNeeds(needed: Map<number, PackNeed>, repo: Repository, f: BlockList): void {
  const counted = new Set<string>();
  for (const b of f.node.blocks) {
    const loc = repo.locate(b, f.rel);
    let need = needed.get(loc.packIndex);
    if (need === undefined) {
      need = { bytes: 0, blocks: 0 };
      needed.set(loc.packIndex, need);
    }
    need.blocks++;
    if (f.node.blocks.length > 1) {
      const hex = toHex(b);
      if (counted.has(hex)) continue;
      counted.add(hex);
    }
    need.bytes += loc.storedLength;
  }
}

/** What the blocks of `files` need of each pack (see {@linkcode addNeeds}). */
export function packNeeds(repo: Repository, files: Iterable<BlockList>): Map<number, PackNeed> {
  const needed = new Map<number, PackNeed>();
  for (const f of files) addNeeds(needed, repo, f);
  return needed;
}
