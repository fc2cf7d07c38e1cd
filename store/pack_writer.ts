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
import { decodeIndexFile, encodeIndexFile, type IndexedPack } from "../formats/index_file.ts";
import {
  type BlobKind,
  PACK_HEADER_SIZE,
  PACK_VERSION_SEALED,
  type PackEntry,
  packHeader,
  packTrailer,
  trailerEntries,
  withFooter,
} from "../formats/pack.ts";
import type { RepoCrypto } from "./repo_crypto.ts";
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

/** The blocks of a pack not saved yet. */
interface OpenPack {
  parts: Uint8Array[];
  entries: PackEntry[];
  size: number;
}

/** An index file that lists no pack: its header only. */
const EMPTY_INDEX = encodeIndexFile([]);

const openPack = (): OpenPack => ({ parts: [], entries: [], size: PACK_HEADER_SIZE });

/**
 * Packs blocks and saves them, one pack after the other (a save completes
 * before the next begins, whoever calls). With `separateTrees`, tree blocks
 * go to packs of their own, so directory listings can be read, cached or
 * staged from tape without the file data.
 */
export class PackWriter {
  readonly #store: BlobStore;
  readonly #index: BlockIndex;
  readonly #target: number;
  readonly #separate: boolean;
  readonly #crypto: RepoCrypto | null;
  /** The open pack of each kind (or of every kind, key -1, without separateTrees). */
  readonly #open = new Map<number, OpenPack>();
  /** The saves, one after the other. */
  #saving: Promise<void> = Promise.resolve();
  #pending = new Set<string>();
  /**
   * The index file of the packs saved since the last `writeIndex`, as its
   * bytes (header, then one record per pack: 44 + 48 bytes per block), in a
   * buffer that grows by doubling: a few objects however many blocks.
   */
  #written: Uint8Array = EMPTY_INDEX.slice();
  #writtenLength = EMPTY_INDEX.length;
  readonly stats: PackWriterStats = {
    packs: 0,
    blocks: 0,
    storedBytes: 0,
    rawBytes: 0,
    packBytes: 0,
  };

  constructor(
    store: BlobStore,
    index: BlockIndex,
    options: { targetSize: number; separateTrees?: boolean; crypto?: RepoCrypto | null },
  ) {
    this.#store = store;
    this.#index = index;
    this.#target = options.targetSize;
    this.#separate = options.separateTrees ?? false;
    this.#crypto = options.crypto ?? null;
  }

  /** True when the block is in the repository or waiting in this writer. */
  has(id: Uint8Array): boolean {
    return this.#index.has(id) || this.#pending.has(toHex(id));
  }

  /**
   * Adds a stored block unless it is known. Returns true when it was added.
   * Saves a pack when the target size is reached. In an encrypted
   * repository the writer seals `data` unless it is `sealed` already (the
   * reader threads seal what they cut).
   */
  async add(
    id: Uint8Array,
    kind: BlobKind,
    block: { codec: number; data: Uint8Array; rawLength: number; sealed?: boolean },
  ): Promise<boolean> {
    if (this.has(id)) return false;
    this.#pending.add(toHex(id));
    if (this.#crypto && !block.sealed) {
      block = { ...block, data: await this.#crypto.sealBlock(id, block.data) };
    }
    const key = this.#separate ? kind : -1;
    let pack = this.#open.get(key);
    if (!pack) this.#open.set(key, pack = openPack());
    pack.entries.push({
      id: id.slice(),
      kind,
      codec: block.codec,
      offset: pack.size,
      storedLength: block.data.length,
      rawLength: block.rawLength,
    });
    pack.parts.push(block.data);
    pack.size += block.data.length;
    this.stats.blocks++;
    this.stats.storedBytes += block.data.length;
    this.stats.rawBytes += block.rawLength;
    if (pack.size >= this.#target) await this.#flushPack(key);
    return true;
  }

  /** Saves the pending blocks as packs (if any): data blocks first, then trees. */
  async flush(): Promise<void> {
    for (const key of [...this.#open.keys()].sort((a, b) => a - b)) await this.#flushPack(key);
    await this.#saving;
  }

  /** Saves the open pack of `key` after the saves already begun. */
  async #flushPack(key: number): Promise<void> {
    const pack = this.#open.get(key);
    if (!pack || pack.entries.length === 0) return;
    this.#open.delete(key);
    const turn = this.#saving.then(() => this.#save(pack));
    this.#saving = turn.catch(() => {});
    await turn;
  }

  async #save(pack: OpenPack): Promise<void> {
    const entries = pack.entries;
    const parts = this.#crypto
      ? [
        packHeader(PACK_VERSION_SEALED),
        ...pack.parts,
        withFooter(await this.#crypto.sealTrailer(trailerEntries(entries)), entries.length),
      ]
      : [packHeader(), ...pack.parts, packTrailer(entries)];
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
    this.#append(
      encodeIndexFile([{ packId, packSize: total, entries }]).subarray(EMPTY_INDEX.length),
    );
    this.stats.packs++;
    this.stats.packBytes += total;
  }

  /** Appends the index record of a saved pack. */
  #append(record: Uint8Array): void {
    const need = this.#writtenLength + record.length;
    if (need > this.#written.length) {
      const grown = new Uint8Array(Math.max(need, this.#written.length * 2));
      grown.set(this.#written.subarray(0, this.#writtenLength));
      this.#written = grown;
    }
    this.#written.set(record, this.#writtenLength);
    this.#writtenLength = need;
  }

  /** Packs saved so far that no index file lists yet (decoded anew on each call). */
  get unindexed(): readonly IndexedPack[] {
    return decodeIndexFile(this.#written.subarray(0, this.#writtenLength));
  }

  /**
   * Flushes, then saves one index file listing every pack this writer
   * saved since the last call. Returns its name, or null when there was
   * nothing to index.
   */
  async writeIndex(): Promise<string | null> {
    await this.flush();
    if (this.#writtenLength === EMPTY_INDEX.length) return null;
    const plain = this.#written.slice(0, this.#writtenLength);
    const bytes = this.#crypto ? await this.#crypto.sealIndexFile(plain) : plain;
    const name = toHex(sha256(bytes));
    await this.#store.save({ kind: "index", name }, bytes);
    crashPoint("index");
    this.#written = EMPTY_INDEX.slice();
    this.#writtenLength = EMPTY_INDEX.length;
    return name;
  }
}
