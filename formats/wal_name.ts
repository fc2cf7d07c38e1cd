/**
 * PostgreSQL WAL file names (segments, partial segments, timeline and backup
 * history files), segment numbering, and the system identifier at the start
 * of `global/pg_control`. Pure and small: the asynchronous `wal-push` and
 * the prefetching `wal-fetch` foregrounds use it without loading protobuf
 * (formats/wal.ts re-exports it with the archive record's codec).
 *
 * @module
 */

/** What a WAL file name names. */
export type WalFileKind = "segment" | "partial" | "history" | "backup";

/** A parsed WAL file name. */
export interface WalName {
  readonly name: string;
  readonly type: WalFileKind;
  /** The timeline (first 8 hex digits). */
  readonly timeline: number;
  /** Segments, partial segments and backup files: the 16 hex digits of log and segment number. */
  readonly log: number;
  readonly seg: number;
  /** Backup history files: the offset of the backup's start in its segment. */
  readonly offset: number;
}

const SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
const PARTIAL = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})\.partial$/;
const HISTORY = /^([0-9A-F]{8})\.history$/;
const BACKUP = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})\.([0-9A-F]{8})\.backup$/;
const SYSTEM_ID = /^[1-9][0-9]{0,19}$/;
const U64_MAX = (1n << 64n) - 1n;

/**
 * Parses a WAL file name as PostgreSQL writes them (upper-case hex): a
 * segment (24 hex digits), a partial segment (`<segment>.partial`), a
 * timeline history file (`<8 hex>.history`) or a backup history file
 * (`<segment>.<8 hex>.backup`). Returns null for anything else.
 *
 * @example
 * ```ts
 * import { parseWalName } from "./wal_name.ts";
 * parseWalName("000000010000000000000002")?.type; // "segment"
 * parseWalName("00000002.history")?.timeline; // 2
 * parseWalName("RECOVERYXLOG"); // null
 * ```
 */
export function parseWalName(name: string): WalName | null {
  if (typeof name !== "string") return null;
  let m = SEGMENT.exec(name);
  if (m) return segmentName(name, "segment", m, 0);
  m = PARTIAL.exec(name);
  if (m) return segmentName(name, "partial", m, 0);
  m = BACKUP.exec(name);
  if (m) return segmentName(name, "backup", m, parseInt(m[4]!, 16));
  m = HISTORY.exec(name);
  if (m) return { name, type: "history", timeline: parseInt(m[1]!, 16), log: 0, seg: 0, offset: 0 };
  return null;
}

function segmentName(name: string, type: WalFileKind, m: RegExpExecArray, offset: number): WalName {
  return {
    name,
    type,
    timeline: parseInt(m[1]!, 16),
    log: parseInt(m[2]!, 16),
    seg: parseInt(m[3]!, 16),
    offset,
  };
}

/** True when `name` is a WAL file name ({@linkcode parseWalName}). */
export function isWalName(name: string): boolean {
  return parseWalName(name) !== null;
}

/** True when `s` is a system identifier in decimal: 1 to 2^64-1, no leading zero. */
export function isSystemId(s: string): boolean {
  return typeof s === "string" && SYSTEM_ID.test(s) && BigInt(s) <= U64_MAX;
}

/**
 * The name of a WAL archive record within its driver kind:
 * `<system identifier>/<WAL file name>`, or null when either part is invalid.
 */
export function parseWalKey(key: string): { systemId: string; name: WalName } | null {
  if (typeof key !== "string") return null;
  const slash = key.indexOf("/");
  if (slash < 0) return null;
  const systemId = key.slice(0, slash);
  const name = parseWalName(key.slice(slash + 1));
  return isSystemId(systemId) && name ? { systemId, name } : null;
}

/**
 * The LSN of a segment's first byte: the segment number
 * (`log * (2^32 / segmentSize) + seg`) times the segment size. Throws
 * RangeError when `seg` does not fit the segment size.
 */
export function segmentStartLsn(name: WalName, segmentSize: number): bigint {
  checkSegmentSize(segmentSize);
  const perLog = 0x1_0000_0000 / segmentSize;
  if (name.seg >= perLog) {
    throw new RangeError(
      `WAL file "${name.name}" has segment number ${name.seg}, beyond the ${perLog} of a ${segmentSize}-byte segment size`,
    );
  }
  return (BigInt(name.log) * BigInt(perLog) + BigInt(name.seg)) * BigInt(segmentSize);
}

/**
 * The file name of WAL segment number `segno` on `timeline`, as
 * PostgreSQL's `XLogFileName` makes it (`TTTTTTTTLLLLLLLLSSSSSSSS`).
 *
 * @example
 * ```ts
 * import { walSegmentName } from "./wal_name.ts";
 * walSegmentName(2, 0x105n, 16 * 1024 * 1024); // "000000020000000100000005"
 * ```
 */
export function walSegmentName(timeline: number, segno: bigint, segmentSize: number): string {
  checkSegmentSize(segmentSize);
  const perLog = BigInt(0x1_0000_0000 / segmentSize);
  const hex = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, "0");
  return `${hex(timeline)}${hex(segno / perLog)}${hex(segno % perLog)}`;
}

/** Throws RangeError unless `size` is a power of two from 1 MiB to 1 GiB (PostgreSQL's range). */
export function checkSegmentSize(size: number): void {
  if (!Number.isInteger(size) || size < 1 << 20 || size > 1 << 30 || (size & (size - 1)) !== 0) {
    throw new RangeError(
      `WAL segment size ${size} is not a power of two from 1 MiB to 1 GiB`,
    );
  }
}

/** The system identifier in the first 8 bytes of `global/pg_control`, in decimal. */
export function controlFileSystemId(bytes: Uint8Array): string {
  if (bytes.length < 8) {
    throw new SyntaxError(`pg_control has ${bytes.length} bytes, fewer than its first field`);
  }
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true).toString();
}
