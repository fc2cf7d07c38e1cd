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
/**
 * Pack format version of encrypted repositories (FORMAT.md section 21):
 * every block sealed, the trailer sealed as one object, the footer's
 * CRC-32C over the sealed trailer.
 */
export const PACK_VERSION_SEALED = 2;
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

/** The 8-byte header every pack starts with (`version` 2 for a sealed pack). */
export function packHeader(version: number = PACK_VERSION): Uint8Array {
  return new Uint8Array([...HEADER_MAGIC, version, 0, 0, 0]);
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
  return withFooter(trailerEntries(entries), entries.length);
}

/** The 48-byte entries of a trailer, without the footer (sealed packs seal these). */
export function trailerEntries(entries: readonly PackEntry[]): Uint8Array {
  const out = new Uint8Array(entries.length * ENTRY_SIZE);
  entries.forEach((e, i) => writeEntry(out, i * ENTRY_SIZE, e));
  return out;
}

/**
 * `stored` (the trailer as stored: plain entries, or sealed ones) followed
 * by the footer: `count`, the CRC-32C of `stored`, "BSPKTAIL".
 */
export function withFooter(stored: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(stored.length + PACK_FOOTER_SIZE);
  out.set(stored, 0);
  const dv = new DataView(out.buffer, out.byteOffset + stored.length, 8);
  dv.setUint32(0, count, true);
  dv.setUint32(4, crc32c(stored), true);
  out.set(FOOTER_MAGIC, stored.length + 8);
  return out;
}

/** Bytes the trailer of `count` entries takes in a pack (`sealed`: 28 more). */
export function storedTrailerLength(count: number, sealed: boolean): number {
  return count * ENTRY_SIZE + (sealed ? SEALED_TRAILER_OVERHEAD : 0);
}

/** Nonce and tag of a sealed trailer (formats/seal.ts). */
const SEALED_TRAILER_OVERHEAD = 28;

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
  /** A sealed pack's trailer as stored (`trailer` is then its opened entries). */
  sealed?: Uint8Array,
): PackEntry[] {
  if (trailer.length !== footer.count * ENTRY_SIZE) {
    throw new SyntaxError(`pack trailer has ${trailer.length} bytes for ${footer.count} entries`);
  }
  if (crc32c(sealed ?? trailer) !== footer.crc) {
    throw new SyntaxError("pack trailer checksum mismatch");
  }
  const blocksEnd = packSize - PACK_FOOTER_SIZE - (sealed ?? trailer).length;
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

/** Checks the 8-byte pack header; `sealed` says which of the two versions it must be. */
export function checkHeader(header: Uint8Array, sealed = false): void {
  if (header.length < PACK_HEADER_SIZE || HEADER_MAGIC.some((b, i) => header[i] !== b)) {
    throw new SyntaxError("not a bendsave pack (no BSPK header)");
  }
  const want = sealed ? PACK_VERSION_SEALED : PACK_VERSION;
  if (header[4] !== want) {
    throw new SyntaxError(
      `pack format version ${
        header[4]
      } is not supported here (this repository's packs are ${want})`,
    );
  }
}

/**
 * The footer, the trailer as stored and its block area bounds of a pack
 * held in memory, header checked; for sealed packs the trailer is still
 * sealed (open it, then call `parseTrailer` with it as `sealed`).
 */
export function splitPack(
  pack: Uint8Array,
  sealed: boolean,
): { footer: { count: number; crc: number }; stored: Uint8Array } {
  if (pack.length < PACK_HEADER_SIZE + PACK_FOOTER_SIZE) {
    throw new SyntaxError(`pack of ${pack.length} bytes is too short`);
  }
  checkHeader(pack.subarray(0, PACK_HEADER_SIZE), sealed);
  const footer = parseFooter(pack.subarray(pack.length - PACK_FOOTER_SIZE));
  const tStart = pack.length - PACK_FOOTER_SIZE - storedTrailerLength(footer.count, sealed);
  if (tStart < PACK_HEADER_SIZE) throw new SyntaxError("pack trailer is longer than the pack");
  return { footer, stored: pack.subarray(tStart, pack.length - PACK_FOOTER_SIZE) };
}

/** Parses every entry of a whole pack held in memory (header, trailer and footer checked). */
export function parsePack(pack: Uint8Array): PackEntry[] {
  const { footer, stored } = splitPack(pack, false);
  return parseTrailer(stored, footer, pack.length);
}
