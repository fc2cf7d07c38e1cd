/**
 * Reads Databend table snapshot files (`<prefix>/_ss/*`) of every format
 * version a cluster may hold, for the fields a backup and a table restore
 * need: id, timestamp, previous snapshot, row count and the segments listed.
 *
 * The layouts (from `databendlabs/databend`
 * `src/query/storages/common/table_meta/src/meta/`):
 *
 * - **v0, v1, v2**: JSON (serde): `format_version` (absent in v0),
 *   `snapshot_id` (hyphenated UUID), `timestamp` (RFC 3339 or null; absent in
 *   v0), `prev_snapshot_id` (v0: an id or null; later `[id, version]` or
 *   null), `summary.row_count`, `segments` (v0: locations; later
 *   `[location, version]` pairs).
 * - **v3, v4, v5** (`TableSnapshot::to_bytes`): a header of the format version
 *   (u64 LE), the encoding (u8: 1 bincode, 2 MessagePack, 3 JSON), the
 *   compression (u8: 0 none, 1 zstd, 2 snappy) and the body length (u64 LE),
 *   then the body. v4 and v5 write MessagePack with field names (rmp-serde
 *   `to_vec_named`: uuids as 16-byte bin, timestamps as RFC 3339 strings,
 *   tuples as arrays), zstd-compressed; v3 wrote bincode, of which only the
 *   leading fields (version, id, timestamp, previous id) are read here.
 *
 * @module
 */
import { decode as decodeMsgpack } from "@msgpack/msgpack";
import { zstdDecompressSync } from "node:zlib";

/** What bendsave reads from a table snapshot. */
export interface TableSnapshotInfo {
  /** The snapshot's format version (0 to 5). */
  readonly formatVersion: number;
  /** The snapshot id, a hyphenated lowercase UUID. */
  readonly id: string;
  /** The timestamp as written, null when the snapshot has none (v0, some v1). */
  readonly timestamp: string | null;
  /** The timestamp in microseconds since the epoch, null when it has none. */
  readonly timestampUs: number | null;
  /** The previous snapshot's id and format version, null for the first. */
  readonly prev: { readonly id: string; readonly formatVersion: number } | null;
  /** `summary.row_count`; null when not readable (v3). */
  readonly rowCount: number | null;
  /** The segment locations listed (relative to the storage root); null when not readable (v3). */
  readonly segments: readonly string[] | null;
  /** `table_statistics_location`, when set. */
  readonly tableStatisticsLocation: string | null;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function hyphenated(u: Uint8Array): string {
  let h = "";
  for (const b of u) h += HEX[b];
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

function uuidOf(v: unknown, what: string): string {
  if (v instanceof Uint8Array && v.length === 16) return hyphenated(v);
  if (Array.isArray(v) && v.length === 16 && v.every((b) => Number.isInteger(b))) {
    return hyphenated(new Uint8Array(v as number[]));
  }
  if (typeof v === "string" && UUID_RE.test(v)) {
    const h = v.replaceAll("-", "").toLowerCase();
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${
      h.slice(20)
    }`;
  }
  throw new SyntaxError(`${what} is not a UUID`);
}

/**
 * Parses an RFC 3339 timestamp (`2025-03-10T08:00:00.123456Z`, any offset,
 * up to nanoseconds) into microseconds since the epoch.
 *
 * @throws {SyntaxError} when the text is not such a timestamp.
 */
export function parseTimestampUs(text: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i.exec(
    text.trim().replace(" ", "T"),
  );
  if (m === null) throw new SyntaxError(`the timestamp "${text}" is not RFC 3339`);
  const secondsMs = Date.parse(`${m[1]}${m[3]!.toUpperCase() === "Z" ? "Z" : m[3]}`);
  if (!Number.isFinite(secondsMs)) throw new SyntaxError(`the timestamp "${text}" is not valid`);
  const us = Number((m[2] ?? "").padEnd(6, "0").slice(0, 6));
  return secondsMs * 1000 + us;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function num(v: unknown): number | null {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "bigint") return Number(v);
  return null;
}

/** Reads the fields from a decoded (JSON or MessagePack) snapshot object. */
function fromObject(o: unknown, headerVersion: number | null): TableSnapshotInfo {
  if (!isObject(o)) throw new SyntaxError("the snapshot body is not a map");
  const formatVersion = num(o["format_version"]) ?? headerVersion ?? 0;
  const id = uuidOf(o["snapshot_id"], "snapshot_id");
  const ts = o["timestamp"];
  const timestamp = typeof ts === "string" ? ts : null;
  const p = o["prev_snapshot_id"];
  let prev: TableSnapshotInfo["prev"] = null;
  if (Array.isArray(p) && p.length === 2) {
    prev = { id: uuidOf(p[0], "prev_snapshot_id"), formatVersion: num(p[1]) ?? 0 };
  } else if (p !== null && p !== undefined) {
    prev = { id: uuidOf(p, "prev_snapshot_id"), formatVersion: 0 };
  }
  const summary = o["summary"];
  const rowCount = isObject(summary) ? num(summary["row_count"]) : null;
  const segs = o["segments"];
  if (!Array.isArray(segs)) throw new SyntaxError("the snapshot has no segment list");
  const segments = segs.map((s) => {
    const loc = Array.isArray(s) ? s[0] : s;
    if (typeof loc !== "string") throw new SyntaxError("a segment location is not a string");
    return loc;
  });
  const tsl = o["table_statistics_location"];
  return {
    formatVersion,
    id,
    timestamp,
    timestampUs: timestamp === null ? null : parseTimestampUs(timestamp),
    prev,
    rowCount,
    segments,
    tableStatisticsLocation: typeof tsl === "string" ? tsl : null,
  };
}

/** A little-endian reader for the binary header and bincode. */
class Bytes {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  u8(): number {
    const b = this.buf[this.pos];
    if (b === undefined) throw new RangeError("the snapshot is truncated");
    this.pos += 1;
    return b;
  }

  u64(): number {
    if (this.pos + 8 > this.buf.length) throw new RangeError("the snapshot is truncated");
    const dv = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8);
    this.pos += 8;
    const v = dv.getBigUint64(0, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError("a length is too large");
    return Number(v);
  }

  take(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw new RangeError("the snapshot is truncated");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The leading fields of a v3 (bincode) snapshot; the rest is not read. */
function fromBincode(body: Uint8Array): TableSnapshotInfo {
  const r = new Bytes(body);
  const formatVersion = r.u64();
  const id = uuidOf(r.take(r.u64()), "snapshot_id");
  let timestamp: string | null = null;
  if (r.u8() === 1) timestamp = utf8.decode(r.take(r.u64()));
  let prev: TableSnapshotInfo["prev"] = null;
  if (r.u8() === 1) {
    const pid = uuidOf(r.take(r.u64()), "prev_snapshot_id");
    prev = { id: pid, formatVersion: r.u64() };
  }
  return {
    formatVersion,
    id,
    timestamp,
    timestampUs: timestamp === null ? null : parseTimestampUs(timestamp),
    prev,
    rowCount: null,
    segments: null,
    tableStatisticsLocation: null,
  };
}

/**
 * Decodes a table snapshot file.
 *
 * @throws {SyntaxError} or {RangeError} when the bytes are not a snapshot of a known
 * version, encoding and compression (the message says what is wrong).
 *
 * @example
 * ```ts ignore
 * import { decodeTableSnapshot } from "./table_snapshot.ts";
 * const info = decodeTableSnapshot(await Deno.readFile("8/32/_ss/h…_v4.mpk"));
 * info.id; info.timestampUs; info.segments;
 * ```
 */
export function decodeTableSnapshot(bytes: Uint8Array): TableSnapshotInfo {
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  if (bytes[i] === 0x7b) { // "{": a JSON snapshot (v0 to v2)
    let json: unknown;
    try {
      json = JSON.parse(utf8.decode(bytes));
    } catch {
      throw new SyntaxError("the snapshot is neither valid JSON nor a binary snapshot");
    }
    return fromObject(json, null);
  }
  const r = new Bytes(bytes);
  const version = r.u64();
  if (version < 3 || version > 5) {
    throw new RangeError(`unknown snapshot format version ${version} (known: 0 to 5)`);
  }
  const encoding = r.u8();
  const compression = r.u8();
  const size = r.u64();
  let body = r.take(size);
  if (compression === 1) {
    try {
      body = new Uint8Array(zstdDecompressSync(body));
    } catch {
      throw new SyntaxError("the snapshot body does not decompress (zstd)");
    }
  } else if (compression === 2) {
    throw new RangeError("the snapshot is snappy-compressed, which bendsave does not read");
  } else if (compression !== 0) {
    throw new RangeError(`unknown snapshot compression ${compression}`);
  }
  switch (encoding) {
    case 1:
      return fromBincode(body);
    case 2: {
      let o: unknown;
      try {
        o = decodeMsgpack(body);
      } catch {
        throw new SyntaxError("the snapshot body is not valid MessagePack");
      }
      return fromObject(o, version);
    }
    case 3:
      try {
        return fromObject(JSON.parse(utf8.decode(body)), version);
      } catch (e) {
        if (e instanceof SyntaxError && /snapshot|segment|UUID|timestamp/.test(e.message)) throw e;
        throw new SyntaxError("the snapshot body is not valid JSON");
      }
    default:
      throw new RangeError(`unknown snapshot encoding ${encoding}`);
  }
}
