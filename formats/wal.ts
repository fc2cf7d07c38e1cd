/**
 * The PostgreSQL WAL archive's byte formats (FORMAT.md, "WAL archive"):
 * WAL file names, the first page's long header of a segment, the first
 * bytes of `global/pg_control`, and the archive record (`WalFile` in an
 * envelope). Pure: no I/O.
 *
 * The PostgreSQL layouts (little-endian on the machines PostgreSQL writes
 * them on, as every platform bendsave runs on is):
 *
 * ```
 * XLogLongPageHeaderData (first page of a segment)    ControlFileData (pg_control)
 *   0  u16 xlp_magic   (0xD110 in PostgreSQL 15)        0  u64 system_identifier
 *   2  u16 xlp_info    (XLP_LONG_HEADER = 0x0002)
 *   4  u32 xlp_tli
 *   8  u64 xlp_pageaddr (the segment's start LSN)
 *  16  u32 xlp_rem_len
 *  20  4 bytes padding
 *  24  u64 xlp_sysid
 *  32  u32 xlp_seg_size
 *  36  u32 xlp_xlog_blcksz
 * ```
 *
 * @module
 */
import { toNumber, WalFileType } from "../proto/mod.ts";
import { ENCRYPTED_FORMAT_VERSION, FORMAT_VERSION, NEWEST_READABLE_FORMAT } from "./version.ts";
import { sha256 } from "./hash.ts";

export {
  checkSegmentSize,
  controlFileSystemId,
  isSystemId,
  isWalName,
  parseWalKey,
  parseWalName,
  segmentStartLsn,
  type WalFileKind,
  type WalName,
  walSegmentName,
} from "./wal_name.ts";

/** An LSN as PostgreSQL prints it: `X/Y`, upper-case hex (see formats/pg_target.ts). */
export { formatLsn } from "./pg_target.ts";

/** `xlp_info` flag of a long page header (the first page of a segment). */
export const XLP_LONG_HEADER = 0x0002;
/** Size of XLogLongPageHeaderData. */
export const LONG_HEADER_SIZE = 40;

/** The fields of a segment's first page header that bendsave checks. */
export interface WalSegmentHeader {
  readonly magic: number;
  readonly info: number;
  readonly timeline: number;
  readonly pageAddress: bigint;
  readonly systemId: string;
  readonly segmentSize: number;
  readonly blockSize: number;
}

/**
 * Parses the long page header at the start of a segment. Throws SyntaxError
 * when the bytes are too short or the page has no long header (not the
 * first page of a WAL segment).
 */
export function parseSegmentHeader(bytes: Uint8Array): WalSegmentHeader {
  if (bytes.length < LONG_HEADER_SIZE) {
    throw new SyntaxError(
      `${bytes.length} bytes are too short for a WAL page header (${LONG_HEADER_SIZE})`,
    );
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, LONG_HEADER_SIZE);
  const info = dv.getUint16(2, true);
  if ((info & XLP_LONG_HEADER) === 0) {
    throw new SyntaxError("its first page has no long header: it is not a WAL segment");
  }
  return {
    magic: dv.getUint16(0, true),
    info,
    timeline: dv.getUint32(4, true),
    pageAddress: dv.getBigUint64(8, true),
    systemId: dv.getBigUint64(24, true).toString(),
    segmentSize: dv.getUint32(32, true),
    blockSize: dv.getUint32(36, true),
  };
}

/** A WAL archive record (the `WalFile` message). */
export interface WalRecord {
  readonly name: string;
  /** In decimal (a uint64). */
  readonly systemId: string;
  readonly size: number;
  /**
   * The id of the whole file: its SHA-256, in an encrypted repository its
   * keyed id (HMAC-SHA-256 under the id key, as a block's).
   */
  readonly sha256: Uint8Array;
  /** Data block ids, in file order. */
  readonly blocks: readonly Uint8Array[];
  readonly pushTimeMs: number;
  readonly timeline: number;
  readonly startLsn: bigint;
  /** Segments: the segment size of the header; otherwise 0. */
  readonly segmentSize: number;
  readonly toolVersion: string;
  readonly host: string;
}

const WAL_MAGIC = [0x42, 0x53, 0x57, 0x4c]; // "BSWL"
const ENVELOPE_HEADER = 8;
const ENVELOPE_CHECKSUM = 32;
/** Envelope version of a record of an encrypted repository: the body is the sealed `WalFile`. */
export const WAL_RECORD_SEALED = ENCRYPTED_FORMAT_VERSION;

/** The protobuf `WalFile` message of a record, unsealed. */
export function encodeWalBody(r: WalRecord): Uint8Array {
  return WalFileType.encode(WalFileType.fromObject({
    name: r.name,
    systemIdentifier: r.systemId,
    size: r.size,
    sha256: r.sha256,
    blocks: [...r.blocks],
    pushTimeMs: r.pushTimeMs,
    timeline: r.timeline,
    startLsn: r.startLsn.toString(),
    segmentSize: r.segmentSize,
    toolVersion: r.toolVersion,
    host: r.host,
  })).finish();
}

/**
 * The envelope of a record file around `body`: `"BSWL"`, the major format
 * version, three zero bytes, the body, and the SHA-256 of everything before
 * it (the manifest envelope with another magic). Version 1 holds the
 * `WalFile` message; version 2 (an encrypted repository) the sealed message,
 * and the checksum covers the bytes as stored, so it is checked without the key.
 */
export function walRecordEnvelope(version: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(ENVELOPE_HEADER + body.length + ENVELOPE_CHECKSUM);
  out.set([...WAL_MAGIC, version, 0, 0, 0]);
  out.set(body, ENVELOPE_HEADER);
  out.set(sha256(out.subarray(0, ENVELOPE_HEADER + body.length)), ENVELOPE_HEADER + body.length);
  return out;
}

/** The bytes of a record file of an unencrypted repository (envelope version 1). */
export function encodeWalRecord(r: WalRecord): Uint8Array {
  return walRecordEnvelope(FORMAT_VERSION, encodeWalBody(r));
}

/** True when `bytes` start with the record magic `"BSWL"`. */
export function hasWalMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && WAL_MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * Checks a record file's envelope (magic, version, checksum over the stored
 * bytes), which needs no key, and returns its version and body. Throws
 * SyntaxError when it is truncated or garbled, or of a newer major version
 * than this bendsave reads (checked before the checksum).
 */
export function openWalRecordFile(bytes: Uint8Array): { version: number; body: Uint8Array } {
  if (bytes.length < ENVELOPE_HEADER || !hasWalMagic(bytes)) {
    throw new SyntaxError("not a bendsave WAL record (no BSWL header, or truncated)");
  }
  if (bytes[4]! > NEWEST_READABLE_FORMAT) {
    throw new SyntaxError(
      `WAL record format version ${
        bytes[4]
      } is newer than this bendsave reads (${NEWEST_READABLE_FORMAT}): use a newer bendsave`,
    );
  }
  if (bytes.length < ENVELOPE_HEADER + ENVELOPE_CHECKSUM) {
    throw new SyntaxError("WAL record is truncated");
  }
  const end = bytes.length - ENVELOPE_CHECKSUM;
  const sum = sha256(bytes.subarray(0, end));
  for (let i = 0; i < ENVELOPE_CHECKSUM; i++) {
    if (sum[i] !== bytes[end + i]) {
      throw new SyntaxError("WAL record checksum mismatch (truncated or garbled)");
    }
  }
  return { version: bytes[4]!, body: bytes.subarray(ENVELOPE_HEADER, end) };
}

/**
 * Decodes a record file of an unencrypted repository. Throws SyntaxError
 * when its envelope fails ({@linkcode openWalRecordFile}), when it is a
 * sealed record (version 2: it needs the repository's key), or when the
 * body lacks its name, hash or system identifier, or has a block id that
 * is not 32 bytes.
 */
export function decodeWalRecord(bytes: Uint8Array): WalRecord {
  const env = openWalRecordFile(bytes);
  if (env.version !== FORMAT_VERSION) {
    throw new SyntaxError(
      `WAL record has envelope version ${env.version}, a sealed record of an encrypted repository, not a plain one`,
    );
  }
  return decodeWalBody(env.body);
}

/** Decodes and checks the `WalFile` message of a record (opened, when it was sealed). */
export function decodeWalBody(body: Uint8Array): WalRecord {
  // deno-lint-ignore no-explicit-any
  let r: any;
  try {
    r = WalFileType.toObject(WalFileType.decode(body), {
      defaults: false,
      arrays: true,
      longs: String,
    });
  } catch (e) {
    throw new SyntaxError(`WAL record does not decode (${(e as Error).message})`);
  }
  const hash = r.sha256 instanceof Uint8Array ? new Uint8Array(r.sha256) : new Uint8Array(0);
  if (!r.name || !r.systemIdentifier || hash.length !== 32) {
    throw new SyntaxError("WAL record lacks its name, system identifier or SHA-256");
  }
  const blocks: Uint8Array[] = (r.blocks ?? []).map((b: Uint8Array) => new Uint8Array(b));
  if (blocks.some((b) => b.length !== 32)) {
    throw new SyntaxError("WAL record has a block id that is not 32 bytes");
  }
  return {
    name: r.name,
    systemId: String(r.systemIdentifier),
    size: toNumber(r.size),
    sha256: hash,
    blocks,
    pushTimeMs: toNumber(r.pushTimeMs),
    timeline: r.timeline ?? 0,
    startLsn: BigInt(r.startLsn ?? 0),
    segmentSize: r.segmentSize ?? 0,
    toolVersion: r.toolVersion ?? "",
    host: r.host ?? "",
  };
}
