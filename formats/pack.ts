/**
 * The packfile layout (FORMAT.md, "Packs"): a header, the stored blocks back
 * to back, a trailer that lists them, and a fixed-size footer. A pack's name
 * is the SHA-256 of all its bytes.
 *
 * ```
 * offset 0   "BSPK" 01 00 00 00                      header, 8 bytes
 * offset 8   block 0 stored bytes, block 1, ...     blocks
 *            entry 0 .. entry N-1 (48 bytes each)    trailer
 *            N u32le, crc32c(trailer) u32le, "BSPKTAIL"  footer, 16 bytes
 * ```
 *
 * @module
 */
import { crc32c } from "./crc32c.ts";
import { ID_LENGTH } from "./hash.ts";

/** What a stored block holds. Never renumber. */
export const BlobKind = { data: 0, tree: 1 } as const;
/** A blob kind number. */
export type BlobKind = typeof BlobKind[keyof typeof BlobKind];

/** One block in a pack, as its trailer and the index describe it. */
export interface PackEntry {
  /** SHA-256 of the uncompressed bytes. */
  readonly id: Uint8Array;
  readonly kind: BlobKind;
  /** Codec number (see codec.ts). */
  readonly codec: number;
  /** Byte offset of the stored bytes from the start of the pack. */
  readonly offset: number;
  /** Stored (compressed) length. */
  readonly storedLength: number;
  /** Uncompressed length. */
  readonly rawLength: number;
}

/** Pack format version written by this code. */
export const PACK_VERSION = 1;
/** Size of the pack header. */
export const PACK_HEADER_SIZE = 8;
/** Size of one trailer (and index) entry. */
export const ENTRY_SIZE = 48;
/** Size of the pack footer. */
export const PACK_FOOTER_SIZE = 16;
/** Largest pack this format can address (offsets are 32-bit). */
export const MAX_PACK_SIZE = 0xffff_ffff;

const HEADER_MAGIC = [0x42, 0x53, 0x50, 0x4b]; // "BSPK"
const FOOTER_MAGIC = new TextEncoder().encode("BSPKTAIL");

/** The 8-byte header every pack starts with. */
export function packHeader(): Uint8Array {
  return new Uint8Array([...HEADER_MAGIC, PACK_VERSION, 0, 0, 0]);
}

/** Writes one 48-byte entry at `pos` of `out`. */
export function writeEntry(out: Uint8Array, pos: number, e: PackEntry): void {
  if (e.id.length !== ID_LENGTH) throw new RangeError(`block id must be ${ID_LENGTH} bytes`);
  out.set(e.id, pos);
  const dv = new DataView(out.buffer, out.byteOffset + pos + ID_LENGTH, 16);
  dv.setUint32(0, e.offset, true);
  dv.setUint32(4, e.storedLength, true);
  dv.setUint32(8, e.rawLength, true);
  dv.setUint8(12, e.kind);
  dv.setUint8(13, e.codec);
  dv.setUint16(14, 0, true);
}

/** Reads one 48-byte entry at `pos` of `buf` (the id is copied). */
export function readEntry(buf: Uint8Array, pos: number): PackEntry {
  const dv = new DataView(buf.buffer, buf.byteOffset + pos + ID_LENGTH, 16);
  return {
    id: buf.slice(pos, pos + ID_LENGTH),
    offset: dv.getUint32(0, true),
    storedLength: dv.getUint32(4, true),
    rawLength: dv.getUint32(8, true),
    kind: dv.getUint8(12) as BlobKind,
    codec: dv.getUint8(13),
  };
}

/** Trailer and footer bytes for `entries` (appended after the last block). */
export function packTrailer(entries: readonly PackEntry[]): Uint8Array {
  const out = new Uint8Array(entries.length * ENTRY_SIZE + PACK_FOOTER_SIZE);
  entries.forEach((e, i) => writeEntry(out, i * ENTRY_SIZE, e));
  const trailer = out.subarray(0, entries.length * ENTRY_SIZE);
  const dv = new DataView(out.buffer, out.byteOffset + trailer.length, 8);
  dv.setUint32(0, entries.length, true);
  dv.setUint32(4, crc32c(trailer), true);
  out.set(FOOTER_MAGIC, trailer.length + 8);
  return out;
}

/** Parses a pack footer (its last 16 bytes): the number of entries and the trailer checksum. */
export function parseFooter(footer: Uint8Array): { count: number; crc: number } {
  if (footer.length !== PACK_FOOTER_SIZE) {
    throw new SyntaxError(`pack footer must be ${PACK_FOOTER_SIZE} bytes, got ${footer.length}`);
  }
  for (let i = 0; i < 8; i++) {
    if (footer[8 + i] !== FOOTER_MAGIC[i]) {
      throw new SyntaxError("pack does not end with the BSPKTAIL footer (truncated or not a pack)");
    }
  }
  const dv = new DataView(footer.buffer, footer.byteOffset, 8);
  return { count: dv.getUint32(0, true), crc: dv.getUint32(4, true) };
}

/**
 * Parses and checks a trailer: its checksum, and that every entry lies
 * inside the block area of a pack of `packSize` bytes without overlap.
 */
export function parseTrailer(
  trailer: Uint8Array,
  footer: { count: number; crc: number },
  packSize: number,
): PackEntry[] {
  if (trailer.length !== footer.count * ENTRY_SIZE) {
    throw new SyntaxError(`pack trailer has ${trailer.length} bytes for ${footer.count} entries`);
  }
  if (crc32c(trailer) !== footer.crc) throw new SyntaxError("pack trailer checksum mismatch");
  const blocksEnd = packSize - PACK_FOOTER_SIZE - trailer.length;
  const entries: PackEntry[] = [];
  let next = PACK_HEADER_SIZE;
  for (let i = 0; i < footer.count; i++) {
    const e = readEntry(trailer, i * ENTRY_SIZE);
    if (e.offset < next || e.offset + e.storedLength > blocksEnd) {
      throw new SyntaxError(`pack trailer entry ${i} points outside the block area`);
    }
    next = e.offset + e.storedLength;
    entries.push(e);
  }
  return entries;
}

/** Checks the 8-byte pack header. */
export function checkHeader(header: Uint8Array): void {
  if (header.length < PACK_HEADER_SIZE || HEADER_MAGIC.some((b, i) => header[i] !== b)) {
    throw new SyntaxError("not a bendsave pack (no BSPK header)");
  }
  if (header[4] !== PACK_VERSION) {
    throw new SyntaxError(
      `pack format version ${header[4]} is not supported (this reads ${PACK_VERSION})`,
    );
  }
}

/** Parses every entry of a whole pack held in memory (header, trailer and footer checked). */
export function parsePack(pack: Uint8Array): PackEntry[] {
  if (pack.length < PACK_HEADER_SIZE + PACK_FOOTER_SIZE) {
    throw new SyntaxError(`pack of ${pack.length} bytes is too short`);
  }
  checkHeader(pack.subarray(0, PACK_HEADER_SIZE));
  const footer = parseFooter(pack.subarray(pack.length - PACK_FOOTER_SIZE));
  const tStart = pack.length - PACK_FOOTER_SIZE - footer.count * ENTRY_SIZE;
  if (tStart < PACK_HEADER_SIZE) throw new SyntaxError("pack trailer is longer than the pack");
  return parseTrailer(pack.subarray(tStart, pack.length - PACK_FOOTER_SIZE), footer, pack.length);
}
