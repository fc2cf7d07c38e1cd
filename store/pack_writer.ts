/**
 * Collects stored blocks into packs of about the target size and saves each
 * pack under the SHA-256 of its bytes. Blocks already in the repository, or
 * already pending in this writer, are dropped. Packs are written first; the
 * index that lists them is written by `writeIndex` afterwards (write order:
 * packs, index, manifest).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { BlobStore } from "./drivers/types.ts";
import { BlockIndex } from "./block_index.ts";
import { crashPoint } from "./crash_point.ts";
import {
  decodeIndexFile,
  encodeIndexFile,
  type IndexedPack,
  indexFileOfPack,
} from "../formats/index_file.ts";
import {
  type BlobKind,
  ENTRY_SIZE,
  PACK_HEADER_SIZE,
  PACK_VERSION_SEALED,
  packHeader,
  withFooter,
  writeEntry,
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

/** An index file that lists no pack: its header only. */
const EMPTY_INDEX = encodeIndexFile([]);

/**
 * The blocks of a pack not saved yet, in a few flat buffers whatever their
 * number (a pack of 32 MiB may hold 75,000 blocks of small files): the
 * pack's bytes so far (header, then blocks, copied in as they are added),
 * its trailer entries (48 bytes each, as the trailer and the index store
 * them) and a lookup table of its ids.
 */
class OpenPack {
  /** The pack's bytes: `size` are written, the rest is room (committed only when written). */
  #bytes: Uint8Array<ArrayBuffer>;
  size: number;
  #entries = new Uint8Array(64 * ENTRY_SIZE);
  count = 0;
  /** Its block ids (pack number 0: only membership is asked). */
  readonly ids = new BlockIndex(64);

  constructor(header: Uint8Array, capacity: number) {
    this.#bytes = uninitialized(Math.max(capacity, header.length));
    this.#bytes.set(header);
    this.size = header.length;
  }

  /** Appends a block (its bytes are copied). */
  add(id: Uint8Array, kind: BlobKind, codec: number, data: Uint8Array, rawLength: number): void {
    const entry = { id, kind, codec, offset: this.size, storedLength: data.length, rawLength };
    this.ids.add(0, entry);
    if (this.#entries.length < (this.count + 1) * ENTRY_SIZE) {
      this.#entries = grown(this.#entries, this.count * ENTRY_SIZE, (this.count + 1) * ENTRY_SIZE);
    }
    writeEntry(this.#entries, this.count * ENTRY_SIZE, entry);
    this.count++;
    this.#write(data);
  }

  /** The trailer entries, 48 bytes each. */
  get entries(): Uint8Array {
    return this.#entries.subarray(0, this.count * ENTRY_SIZE);
  }

  /** Appends `tail` (the trailer and footer) and returns the whole pack (a view). */
  finish(tail: Uint8Array): Uint8Array {
    this.#write(tail);
    return this.#bytes.subarray(0, this.size);
  }

  #write(data: Uint8Array): void {
    const need = this.size + data.length;
    if (need > this.#bytes.length) this.#bytes = grown(this.#bytes, this.size, need);
    this.#bytes.set(data, this.size);
    this.size = need;
  }
}

/** A copy of the first `used` bytes of `buf` with room for `need` bytes (at least 1.5 times). */
function grown(buf: Uint8Array, used: number, need: number): Uint8Array<ArrayBuffer> {
  const out = uninitialized(Math.max(need, Math.ceil(buf.length * 1.5)));
  out.set(buf.subarray(0, used));
  return out;
}

/**
 * A buffer of `length` bytes whose content is undefined: only what is
 * written to it is ever read (the pack's `size` first bytes, the `count`
 * first entries). bun zero-fills a new `Uint8Array` at once (5.8 ms for a
 * pack's 36 MiB, once per WAL push; 0.5 ms uninitialized), where Deno's
 * pages are zeroed as they are touched.
 */
function uninitialized(length: number): Uint8Array<ArrayBuffer> {
  const b = Buffer.allocUnsafeSlow(length);
  return new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, length);
}

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
  /** The first save that failed (the writer is then unusable). */
  #failure: { readonly error: unknown } | null = null;
  /** The packs not saved yet (open or being saved): their blocks are pending. */
  readonly #unsaved = new Set<OpenPack>();
  /** Hex ids of blocks being sealed before they are added (pending too). */
  readonly #sealing = new Set<string>();
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
    if (this.#index.has(id)) return true;
    if (this.#sealing.size > 0 && this.#sealing.has(toHex(id))) return true;
    for (const pack of this.#unsaved) if (pack.ids.has(id)) return true;
    return false;
  }

  /**
   * Adds a stored block unless it is known. Returns true when it was added
   * (its bytes are copied: the caller may reuse `block.data`). Saves a pack
   * when the target size is reached. In an encrypted repository the writer
   * seals `data` unless it is `sealed` already (the reader threads seal
   * what they cut).
   */
  async add(
    id: Uint8Array,
    kind: BlobKind,
    block: { codec: number; data: Uint8Array; rawLength: number; sealed?: boolean },
  ): Promise<boolean> {
    this.#throwIfFailed();
    if (this.has(id)) return false;
    let data = block.data;
    if (this.#crypto && !block.sealed) {
      // The id is pending meanwhile: an add of the same block while this one seals is dropped.
      const hex = toHex(id);
      this.#sealing.add(hex);
      try {
        data = await this.#crypto.sealBlock(id, data);
      } finally {
        this.#sealing.delete(hex);
      }
    }
    const key = this.#separate ? kind : -1;
    let pack = this.#open.get(key);
    if (!pack) {
      const header = this.#crypto ? packHeader(PACK_VERSION_SEALED) : packHeader();
      // Room for the blocks up to the target and a trailer of small blocks: pages of memory
      // are committed as they are written, so a pack of a few blocks costs a few pages.
      pack = new OpenPack(header, PACK_HEADER_SIZE + this.#target + (this.#target >> 3));
      this.#open.set(key, pack);
      this.#unsaved.add(pack);
    }
    pack.add(id, kind, block.codec, data, block.rawLength);
    this.stats.blocks++;
    this.stats.storedBytes += data.length;
    this.stats.rawBytes += block.rawLength;
    if (pack.size >= this.#target) await this.#flushPack(key, "previous");
    return true;
  }

  /** Saves the pending blocks as packs (if any): data blocks first, then trees. */
  async flush(): Promise<void> {
    this.#throwIfFailed();
    for (const key of [...this.#open.keys()].sort((a, b) => a - b)) {
      await this.#flushPack(key, "this");
    }
    await this.#saving;
    this.#throwIfFailed();
  }

  /**
   * Saves the open pack of `key` after the saves already begun, and waits
   * for `this` save, or only for the `previous` one: an add that fills a pack
   * goes on filling the next while this one is written (one save in flight,
   * two packs in memory at most).
   */
  async #flushPack(key: number, wait: "this" | "previous"): Promise<void> {
    const pack = this.#open.get(key);
    if (!pack || pack.count === 0) return;
    this.#open.delete(key);
    const previous = this.#saving;
    const turn = previous.then(() => this.#save(pack));
    this.#saving = turn.catch((e) => {
      this.#failure ??= { error: e };
    });
    if (wait === "this") await turn;
    else await previous;
    this.#throwIfFailed();
  }

  /** Throws the first failed save's error: nothing is added or indexed after it. */
  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure.error;
  }

  async #save(pack: OpenPack): Promise<void> {
    const entries = pack.entries;
    const stored = this.#crypto ? await this.#crypto.sealTrailer(entries) : entries;
    const bytes = pack.finish(withFooter(stored, pack.count));
    const total = bytes.length;
    const packId = sha256(bytes);
    await this.#store.save({ kind: "pack", name: toHex(packId) }, bytes);
    crashPoint("pack");
    const record = indexFileOfPack(packId, total, entries);
    this.#index.loadIndexFile(record);
    this.#unsaved.delete(pack);
    this.#append(record.subarray(EMPTY_INDEX.length));
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
    // A view, not a copy (an index file of a million small blocks is 48 MB), taken before
    // the first await: a pack saved meanwhile (another caller's add) goes to the next one.
    const plain = this.#written.subarray(0, this.#writtenLength);
    this.#written = EMPTY_INDEX.slice();
    this.#writtenLength = EMPTY_INDEX.length;
    const bytes = this.#crypto ? await this.#crypto.sealIndexFile(plain) : plain;
    const name = toHex(sha256(bytes));
    await this.#store.save({ kind: "index", name }, bytes);
    crashPoint("index");
    return name;
  }
}
