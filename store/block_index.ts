/**
 * The in-memory block index: block id -> pack and location, in flat typed
 * arrays (about 55-60 bytes per block, where a JS Map of hex strings costs
 * several hundred). Open addressing with linear probing over the first four
 * bytes of the id (SHA-256 is uniform, so they hash well).
 *
 * @module
 */
import { ID_LENGTH, toHex } from "../formats/hash.ts";
import { type BlobKind, ENTRY_SIZE, type PackEntry } from "../formats/pack.ts";
import { scanIndexFile } from "../formats/index_file.ts";

/** Where a block is stored. */
export interface BlobLocation {
  readonly packId: Uint8Array;
  readonly packIndex: number;
  readonly kind: BlobKind;
  readonly codec: number;
  readonly offset: number;
  readonly storedLength: number;
  readonly rawLength: number;
}

const EMPTY = -1;

function nextPow2(n: number): number {
  let p = 16;
  while (p < n) p *= 2;
  return p;
}

/** The in-memory index of every block in a repository. */
export class BlockIndex {
  #count = 0;
  #cap = 0;
  #ids = new Uint8Array(0);
  #pack = new Uint32Array(0);
  #offset = new Uint32Array(0);
  #stored = new Uint32Array(0);
  #raw = new Uint32Array(0);
  #meta = new Uint8Array(0);
  #table = new Int32Array(0);
  #mask = 0;
  #packIds: Uint8Array[] = [];
  #packSizes: number[] = [];
  #packByHex = new Map<string, number>();

  constructor(capacity = 1024) {
    this.#grow(capacity);
  }

  /** Number of blocks. */
  get size(): number {
    return this.#count;
  }

  /** Number of packs. */
  get packCount(): number {
    return this.#packIds.length;
  }

  /** Bytes of memory held by the block arrays and the hash table. */
  memoryBytes(): number {
    return this.#ids.byteLength + this.#pack.byteLength + this.#offset.byteLength +
      this.#stored.byteLength + this.#raw.byteLength + this.#meta.byteLength +
      this.#table.byteLength +
      this.#packIds.length * (ID_LENGTH + 64);
  }

  /** Makes room for `n` more blocks without further reallocation. */
  reserve(n: number): void {
    if (this.#count + n > this.#cap) {
      this.#grow(Math.max(this.#count + n, Math.floor(this.#cap * 1.25)));
    }
  }

  #grow(min: number): void {
    const cap = Math.max(min, 16);
    const copy = <T extends Uint8Array | Uint32Array>(old: T, make: (n: number) => T, w = 1): T => {
      const a = make(cap * w);
      a.set(old.subarray(0, this.#count * w));
      return a;
    };
    this.#ids = copy(this.#ids, (n) => new Uint8Array(n), ID_LENGTH);
    this.#pack = copy(this.#pack, (n) => new Uint32Array(n));
    this.#offset = copy(this.#offset, (n) => new Uint32Array(n));
    this.#stored = copy(this.#stored, (n) => new Uint32Array(n));
    this.#raw = copy(this.#raw, (n) => new Uint32Array(n));
    this.#meta = copy(this.#meta, (n) => new Uint8Array(n));
    this.#cap = cap;
    const tsize = nextPow2(Math.ceil(cap * 1.34));
    if (tsize !== this.#table.length) {
      this.#table = new Int32Array(tsize).fill(EMPTY);
      this.#mask = tsize - 1;
      for (let i = 0; i < this.#count; i++) this.#insertSlot(this.#ids, i * ID_LENGTH, i);
    }
  }

  #hash(ids: Uint8Array, pos: number): number {
    return ((ids[pos]! << 24) | (ids[pos + 1]! << 16) | (ids[pos + 2]! << 8) | ids[pos + 3]!) &
      this.#mask;
  }

  #insertSlot(ids: Uint8Array, pos: number, index: number): void {
    let s = this.#hash(ids, pos);
    while (this.#table[s] !== EMPTY) s = (s + 1) & this.#mask;
    this.#table[s] = index;
  }

  #find(id: Uint8Array, pos = 0): number {
    let s = this.#hash(id, pos);
    const ids = this.#ids;
    for (;;) {
      const i = this.#table[s]!;
      if (i === EMPTY) return -1;
      const base = i * ID_LENGTH;
      let eq = true;
      for (let k = 0; k < ID_LENGTH; k++) {
        if (ids[base + k] !== id[pos + k]) {
          eq = false;
          break;
        }
      }
      if (eq) return i;
      s = (s + 1) & this.#mask;
    }
  }

  /** Registers a pack (or finds it) and returns its number. */
  addPack(packId: Uint8Array, packSize: number): number {
    const hex = toHex(packId);
    const known = this.#packByHex.get(hex);
    if (known !== undefined) return known;
    this.#packIds.push(packId.slice());
    this.#packSizes.push(packSize);
    this.#packByHex.set(hex, this.#packIds.length - 1);
    return this.#packIds.length - 1;
  }

  /** Pack id and size of pack number `i`. */
  pack(i: number): { id: Uint8Array; size: number } {
    const id = this.#packIds[i];
    if (!id) throw new RangeError(`no pack number ${i}`);
    return { id, size: this.#packSizes[i]! };
  }

  /** Every pack as id and size. */
  *packs(): Iterable<{ id: Uint8Array; size: number; index: number }> {
    for (let i = 0; i < this.#packIds.length; i++) {
      yield { id: this.#packIds[i]!, size: this.#packSizes[i]!, index: i };
    }
  }

  #addRaw(src: Uint8Array, pos: number, packIndex: number, e: Omit<PackEntry, "id">): boolean {
    if (this.#find(src, pos) >= 0) return false;
    if (this.#count === this.#cap) this.#grow(Math.floor(this.#cap * 1.25) + 16);
    const i = this.#count++;
    this.#ids.set(src.subarray(pos, pos + ID_LENGTH), i * ID_LENGTH);
    this.#pack[i] = packIndex;
    this.#offset[i] = e.offset;
    this.#stored[i] = e.storedLength;
    this.#raw[i] = e.rawLength;
    this.#meta[i] = (e.kind & 0x0f) | ((e.codec & 0x0f) << 4);
    this.#insertSlot(this.#ids, i * ID_LENGTH, i);
    return true;
  }

  /** Adds a block; returns false (and changes nothing) when the id is already indexed. */
  add(packIndex: number, e: PackEntry): boolean {
    if (e.id.length !== ID_LENGTH) throw new RangeError("block id must be 32 bytes");
    return this.#addRaw(e.id, 0, packIndex, e);
  }

  /** True when the block is indexed. */
  has(id: Uint8Array): boolean {
    return this.#find(id) >= 0;
  }

  /**
   * The number of block `id` in this index (0 to size - 1, the order blocks
   * were added), or -1 when it is not indexed: a key for tables of blocks
   * that need no id strings.
   */
  position(id: Uint8Array): number {
    return this.#find(id);
  }

  /** The pack number of the block at `position`. */
  packOfPosition(position: number): number {
    if (position < 0 || position >= this.#count) {
      throw new RangeError(`no block number ${position}`);
    }
    return this.#pack[position]!;
  }

  /** Where a block is stored, or undefined. */
  lookup(id: Uint8Array): BlobLocation | undefined {
    const i = this.#find(id);
    if (i < 0) return undefined;
    const m = this.#meta[i]!;
    const p = this.#pack[i]!;
    return {
      packId: this.#packIds[p]!,
      packIndex: p,
      kind: (m & 0x0f) as BlobKind,
      codec: m >> 4,
      offset: this.#offset[i]!,
      storedLength: this.#stored[i]!,
      rawLength: this.#raw[i]!,
    };
  }

  /** Every block id with its pack number. */
  *entries(): Iterable<
    { id: Uint8Array; packIndex: number; kind: BlobKind; storedLength: number }
  > {
    for (let i = 0; i < this.#count; i++) {
      yield {
        id: this.#ids.subarray(i * ID_LENGTH, (i + 1) * ID_LENGTH),
        packIndex: this.#pack[i]!,
        kind: (this.#meta[i]! & 0x0f) as BlobKind,
        storedLength: this.#stored[i]!,
      };
    }
  }

  /** Every block grouped by pack number, as full entries in offset order. */
  packEntries(): Map<number, PackEntry[]> {
    const out = new Map<number, PackEntry[]>();
    for (let i = 0; i < this.#count; i++) {
      const p = this.#pack[i]!;
      const l = out.get(p) ?? [];
      const m = this.#meta[i]!;
      l.push({
        id: this.#ids.slice(i * ID_LENGTH, (i + 1) * ID_LENGTH),
        kind: (m & 0x0f) as BlobKind,
        codec: m >> 4,
        offset: this.#offset[i]!,
        storedLength: this.#stored[i]!,
        rawLength: this.#raw[i]!,
      });
      out.set(p, l);
    }
    for (const l of out.values()) l.sort((a, b) => a.offset - b.offset);
    return out;
  }

  /**
   * Adds every block of an index file (throws SyntaxError when malformed).
   * Returns the number of blocks in the file.
   */
  loadIndexFile(buf: Uint8Array): number {
    let total = 0;
    scanIndexFile(buf, (_id, _size, count) => (total += count));
    this.reserve(total);
    scanIndexFile(buf, (packId, packSize, count, raw) => {
      const p = this.addPack(packId, packSize);
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      for (let k = 0; k < count; k++) {
        const pos = k * ENTRY_SIZE;
        this.#addRaw(raw, pos, p, {
          offset: dv.getUint32(pos + ID_LENGTH, true),
          storedLength: dv.getUint32(pos + ID_LENGTH + 4, true),
          rawLength: dv.getUint32(pos + ID_LENGTH + 8, true),
          kind: dv.getUint8(pos + ID_LENGTH + 12) as BlobKind,
          codec: dv.getUint8(pos + ID_LENGTH + 13),
        });
      }
    });
    return total;
  }
}
