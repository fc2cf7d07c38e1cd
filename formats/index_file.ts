/**
 * Index files (FORMAT.md, "Index files"): which pack holds each block, so a
 * reader does not have to open every pack. Binary, so that loading is fast:
 *
 * ```
 * "BSIX" 01 00 00 00                         header, 8 bytes
 * per pack:  pack id (32) | pack size u64le | entry count u32le | entries (48 bytes each, as in pack trailers)
 * ```
 * The file's name is the SHA-256 of its bytes.
 *
 * @module
 */
import { ID_LENGTH } from "./hash.ts";
import { ENTRY_SIZE, type PackEntry, readEntry, writeEntry } from "./pack.ts";

/** Index file format version written by this code. */
export const INDEX_VERSION = 1;
const MAGIC = [0x42, 0x53, 0x49, 0x58]; // "BSIX"
const PACK_RECORD_HEADER = ID_LENGTH + 8 + 4;

/** One pack and its entries, as an index file lists it. */
export interface IndexedPack {
  readonly packId: Uint8Array;
  readonly packSize: number;
  readonly entries: readonly PackEntry[];
}

/** Encodes an index file. */
export function encodeIndexFile(packs: readonly IndexedPack[]): Uint8Array {
  let size = 8;
  for (const p of packs) size += PACK_RECORD_HEADER + p.entries.length * ENTRY_SIZE;
  const out = new Uint8Array(size);
  out.set([...MAGIC, INDEX_VERSION, 0, 0, 0]);
  let pos = 8;
  for (const p of packs) {
    writeRecordHeader(out, pos, p.packId, p.packSize, p.entries.length);
    pos += PACK_RECORD_HEADER;
    for (const e of p.entries) {
      writeEntry(out, pos, e);
      pos += ENTRY_SIZE;
    }
  }
  return out;
}

/**
 * The index file listing one pack whose entries are given as its trailer
 * stores them (`entries`: 48 bytes each): the bytes {@linkcode encodeIndexFile}
 * makes of that pack, without an object per entry.
 */
export function indexFileOfPack(
  packId: Uint8Array,
  packSize: number,
  entries: Uint8Array,
): Uint8Array {
  if (entries.length % ENTRY_SIZE !== 0) {
    throw new RangeError(`pack entries must be ${ENTRY_SIZE} bytes each`);
  }
  const out = new Uint8Array(8 + PACK_RECORD_HEADER + entries.length);
  out.set([...MAGIC, INDEX_VERSION, 0, 0, 0]);
  writeRecordHeader(out, 8, packId, packSize, entries.length / ENTRY_SIZE);
  out.set(entries, 8 + PACK_RECORD_HEADER);
  return out;
}

/** Writes the header of one pack's record (id, size, entry count) at `pos` of `out`. */
function writeRecordHeader(
  out: Uint8Array,
  pos: number,
  packId: Uint8Array,
  packSize: number,
  count: number,
): void {
  const dv = new DataView(out.buffer, out.byteOffset + pos, PACK_RECORD_HEADER);
  out.set(packId, pos);
  dv.setBigUint64(ID_LENGTH, BigInt(packSize), true);
  dv.setUint32(ID_LENGTH + 8, count, true);
}

/**
 * Calls `onPack` for every pack record of an index file without building
 * entry objects (the fast path for loading); `entries` is a view of the
 * raw 48-byte entries. Throws SyntaxError on a malformed file.
 */
export function scanIndexFile(
  buf: Uint8Array,
  onPack: (packId: Uint8Array, packSize: number, count: number, entries: Uint8Array) => void,
): void {
  if (buf.length < 8 || MAGIC.some((b, i) => buf[i] !== b)) {
    throw new SyntaxError("not a bendsave index file (no BSIX header)");
  }
  if (buf[4] !== INDEX_VERSION) {
    throw new SyntaxError(
      `index format version ${buf[4]} is not supported (this reads ${INDEX_VERSION})`,
    );
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 8;
  while (pos < buf.length) {
    if (pos + PACK_RECORD_HEADER > buf.length) throw new SyntaxError("index file is truncated");
    const packId = buf.subarray(pos, pos + ID_LENGTH);
    const packSize = Number(dv.getBigUint64(pos + ID_LENGTH, true));
    const count = dv.getUint32(pos + ID_LENGTH + 8, true);
    pos += PACK_RECORD_HEADER;
    const end = pos + count * ENTRY_SIZE;
    if (end > buf.length) throw new SyntaxError("index file is truncated");
    onPack(packId, packSize, count, buf.subarray(pos, end));
    pos = end;
  }
}

/** Decodes a whole index file into objects (for tools and tests; loading uses scanIndexFile). */
export function decodeIndexFile(buf: Uint8Array): IndexedPack[] {
  const packs: IndexedPack[] = [];
  scanIndexFile(buf, (packId, packSize, count, raw) => {
    const entries: PackEntry[] = [];
    for (let i = 0; i < count; i++) entries.push(readEntry(raw, i * ENTRY_SIZE));
    packs.push({ packId: packId.slice(), packSize, entries });
  });
  return packs;
}
