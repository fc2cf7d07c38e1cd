/**
 * Collects stored blocks into packs of about the target size and saves each
 * pack under the SHA-256 of its bytes. Blocks already in the repository, or
 * already pending in this writer, are dropped. Packs are written first; the
 * index that lists them is written by `writeIndex` afterwards (write order:
 * packs, index, manifest).
 *
 * @module
 */
import type { BlobStore } from "./drivers/types.ts";
import type { BlockIndex } from "./block_index.ts";
import { crashPoint } from "./crash_point.ts";
import { encodeIndexFile, type IndexedPack } from "../formats/index_file.ts";
import {
  type BlobKind,
  PACK_HEADER_SIZE,
  type PackEntry,
  packHeader,
  packTrailer,
} from "../formats/pack.ts";
import { sha256, toHex } from "../formats/hash.ts";

/** Counters of what a writer stored. */
export interface PackWriterStats {
  packs: number;
  blocks: number;
  /** Stored bytes of blocks (after compression). */
  storedBytes: number;
  /** Uncompressed bytes of blocks. */
  rawBytes: number;
  /** Bytes of pack files written (blocks plus headers and trailers). */
  packBytes: number;
}

/** Packs blocks and saves them. */
export class PackWriter {
  readonly #store: BlobStore;
  readonly #index: BlockIndex;
  readonly #target: number;
  #parts: Uint8Array[] = [];
  #entries: PackEntry[] = [];
  #size = PACK_HEADER_SIZE;
  #pending = new Set<string>();
  #written: IndexedPack[] = [];
  readonly stats: PackWriterStats = {
    packs: 0,
    blocks: 0,
    storedBytes: 0,
    rawBytes: 0,
    packBytes: 0,
  };

  constructor(store: BlobStore, index: BlockIndex, options: { targetSize: number }) {
    this.#store = store;
    this.#index = index;
    this.#target = options.targetSize;
  }

  /** True when the block is in the repository or waiting in this writer. */
  has(id: Uint8Array): boolean {
    return this.#index.has(id) || this.#pending.has(toHex(id));
  }

  /**
   * Adds a stored block unless it is known. Returns true when it was added.
   * Saves a pack when the target size is reached.
   */
  async add(
    id: Uint8Array,
    kind: BlobKind,
    block: { codec: number; data: Uint8Array; rawLength: number },
  ): Promise<boolean> {
    if (this.has(id)) return false;
    this.#pending.add(toHex(id));
    this.#entries.push({
      id: id.slice(),
      kind,
      codec: block.codec,
      offset: this.#size,
      storedLength: block.data.length,
      rawLength: block.rawLength,
    });
    this.#parts.push(block.data);
    this.#size += block.data.length;
    this.stats.blocks++;
    this.stats.storedBytes += block.data.length;
    this.stats.rawBytes += block.rawLength;
    if (this.#size >= this.#target) await this.flush();
    return true;
  }

  /** Saves the pending blocks as a pack (if any). */
  async flush(): Promise<void> {
    if (this.#entries.length === 0) return;
    const entries = this.#entries;
    const parts = [packHeader(), ...this.#parts, packTrailer(entries)];
    this.#entries = [];
    this.#parts = [];
    this.#size = PACK_HEADER_SIZE;
    let total = 0;
    for (const p of parts) total += p.length;
    const bytes = new Uint8Array(total);
    let pos = 0;
    for (const p of parts) {
      bytes.set(p, pos);
      pos += p.length;
    }
    const packId = sha256(bytes);
    await this.#store.save({ kind: "pack", name: toHex(packId) }, bytes);
    crashPoint("pack");
    const p = this.#index.addPack(packId, total);
    for (const e of entries) {
      this.#index.add(p, e);
      this.#pending.delete(toHex(e.id));
    }
    this.#written.push({ packId, packSize: total, entries });
    this.stats.packs++;
    this.stats.packBytes += total;
  }

  /** Packs saved so far that no index file lists yet. */
  get unindexed(): readonly IndexedPack[] {
    return this.#written;
  }

  /**
   * Flushes, then saves one index file listing every pack this writer
   * saved since the last call. Returns its name, or null when there was
   * nothing to index.
   */
  async writeIndex(): Promise<string | null> {
    await this.flush();
    if (this.#written.length === 0) return null;
    const bytes = encodeIndexFile(this.#written);
    const name = toHex(sha256(bytes));
    await this.#store.save({ kind: "index", name }, bytes);
    crashPoint("index");
    this.#written = [];
    return name;
  }
}
