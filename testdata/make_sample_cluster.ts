/**
 * Deterministic generator of `testdata/sample-cluster/`: a small, synthetic
 * Databend cluster (a query node config, a meta service config, a meta export
 * in the `databend-metactl export` line format, and a storage root in the Fuse
 * table layout) that bendsave's tests and demo back up and restore.
 *
 * Everything is synthetic: ids, names, timestamps and bytes come from a seeded
 * PRNG and a fixed timeline, never from a real cluster. Re-running the
 * generator gives a byte-identical tree (file modification times included).
 * See `testdata/README.md` for the facts this follows and their sources.
 *
 * ```sh
 * deno run --allow-read --allow-write testdata/make_sample_cluster.ts [target-dir]
 * ```
 *
 * @module
 */
import { encode as msgpackEncode } from "@msgpack/msgpack";
import { zstdCompressSync } from "node:zlib";

/** Tenant of the sample cluster (`[query] tenant_id`). */
export const SAMPLE_TENANT = "sample_tenant";
/** Cluster id of the sample cluster (`[query] cluster_id`). */
export const SAMPLE_CLUSTER = "sample_cluster";
/** Password of the meta service user in `query-node.toml` (a fake, public value). */
export const SAMPLE_META_PASSWORD = "sample-meta-password";
/** The `[storage.fs] data_path` of `query-node.toml`, relative to the file's directory. */
export const SAMPLE_DATA_PATH = "./storage";
/**
 * The directory the generator pretends the cluster ran in. Databend writes the
 * operator root (this directory joined with `data_path`) into each
 * `last_snapshot_location_hint_v2`, so the hints carry this absolute prefix.
 */
export const SAMPLE_DEPLOY_DIR = "/var/lib/databend/sample-cluster";
/** The operator root that prefixes `snapshot_full_path` in the hint files. */
export const SAMPLE_OPERATOR_ROOT = `${SAMPLE_DEPLOY_DIR}/storage/`;

/** Seed of the PRNG; change it and every id, name and byte changes. */
const SEED = 0x5eed_bd01;

/** Message version written into every protobuf value (`VER` of proto-conv). */
const PB_VER = 121;
/** Minimal reader version written into every protobuf value. */
const PB_MIN_READER_VER = 24;

const MS_PER_SECOND = 1000;
const MS_PER_MINUTE = 60 * MS_PER_SECOND;
const MS_PER_HOUR = 60 * MS_PER_MINUTE;
const MS_PER_DAY = 24 * MS_PER_HOUR;

/** Cluster bootstrap: the first meta write. */
const T_BOOTSTRAP = Date.UTC(2025, 2, 10, 8, 0, 0);
/**
 * The day the sample cluster was upgraded to a meta service that records
 * `proposed_at_ms` in every value's meta; writes before keep the older shape.
 */
const T_UPGRADE = Date.UTC(2025, 10, 4, 9, 0, 0);
/** Time-to-live of a query node's registration in meta, in seconds. */
const NODE_TTL_SECONDS = 60;

// ---------------------------------------------------------------------------
// Deterministic randomness

/** A small seeded PRNG (sfc32); deterministic across platforms. */
export class SeededRandom {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** Creates a generator from a 32-bit seed. */
  constructor(seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.nextU32();
  }

  /** The next unsigned 32-bit integer. */
  nextU32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** An integer in `[min, max]`. */
  int(min: number, max: number): number {
    return min + (this.nextU32() % (max - min + 1));
  }

  /** `n` pseudo-random bytes (incompressible, like already-compressed data). */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const v = this.nextU32();
      out[i] = v & 0xff;
      out[i + 1] = (v >>> 8) & 0xff;
      out[i + 2] = (v >>> 16) & 0xff;
      out[i + 3] = v >>> 24;
    }
    for (; i < n; i++) out[i] = this.nextU32() & 0xff;
    return out;
  }

  /** `n` characters from `alphabet`. */
  chars(n: number, alphabet: string): string {
    let s = "";
    for (let i = 0; i < n; i++) s += alphabet[this.nextU32() % alphabet.length];
    return s;
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += HEX[b];
  return s;
}

/** A version-7 UUID (48-bit millisecond timestamp, then random bits) as 16 bytes. */
function uuidV7(ms: number, rng: SeededRandom): Uint8Array {
  const u = rng.bytes(16);
  let t = ms;
  for (let i = 5; i >= 0; i--) {
    u[i] = t % 256;
    t = Math.floor(t / 256);
  }
  u[6] = 0x70 | (u[6]! & 0x0f);
  u[8] = 0x80 | (u[8]! & 0x3f);
  return u;
}

/** `Uuid::simple()`: 32 lowercase hex digits. */
function uuidSimple(u: Uint8Array): string {
  return toHex(u);
}

/** `Uuid` hyphenated, as serde writes it. */
function uuidHyphenated(u: Uint8Array): string {
  const h = toHex(u);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * A chrono `DateTime<Utc>` as Display prints it, e.g.
 * `2025-03-10 08:00:00.123456 UTC` (microsecond precision).
 */
function chronoUtc(ms: number, micros: number): string {
  const iso = new Date(ms).toISOString(); // 2025-03-10T08:00:00.123Z
  const frac = String((ms % 1000) * 1000 + micros).padStart(6, "0");
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${frac} UTC`;
}

/**
 * A chrono `DateTime<Utc>` as serde writes it (RFC 3339, `Z`, the shortest of
 * 0, 3 or 6 fraction digits that is exact), e.g. `2025-03-10T08:00:00.123456Z`.
 */
function chronoSerde(ms: number, micros: number): string {
  const iso = new Date(ms).toISOString();
  const us = (ms % 1000) * 1000 + micros;
  const frac = us === 0
    ? ""
    : us % 1000 === 0
    ? `.${String(us / 1000).padStart(3, "0")}`
    : `.${String(us).padStart(6, "0")}`;
  return `${iso.slice(0, 19)}${frac}Z`;
}

// ---------------------------------------------------------------------------
// Protobuf (prost-compatible) encoding of the few meta messages we need

const te = new TextEncoder();

/** A minimal protobuf writer; fields must be added in ascending tag order. */
class Pb {
  readonly #parts: number[] = [];

  #varint(n: number): void {
    let v = n;
    while (v >= 0x80) {
      this.#parts.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.#parts.push(v);
  }

  #key(tag: number, wire: number): void {
    this.#varint(tag * 8 + wire);
  }

  /** A varint field; proto3 omits zero. */
  uint(tag: number, n: number): this {
    if (n !== 0) {
      this.#key(tag, 0);
      this.#varint(n);
    }
    return this;
  }

  /** A length-delimited field, always written (for optional and repeated fields). */
  bytes(tag: number, b: Uint8Array | readonly number[]): this {
    this.#key(tag, 2);
    this.#varint(b.length);
    for (const x of b) this.#parts.push(x);
    return this;
  }

  /** A singular string; proto3 omits the empty string. */
  str(tag: number, s: string): this {
    return s === "" ? this : this.bytes(tag, te.encode(s));
  }

  /** An optional or repeated string, written even when empty. */
  strAlways(tag: number, s: string): this {
    return this.bytes(tag, te.encode(s));
  }

  /** An embedded message. */
  msg(tag: number, m: Pb): this {
    return this.bytes(tag, m.finish());
  }

  /** A packed repeated uint64. */
  packed(tag: number, ns: readonly number[]): this {
    const inner = new Pb();
    for (const n of ns) inner.#varint(n);
    return this.bytes(tag, inner.finish());
  }

  /** A `map<string, string>` (entries sorted by key, as a BTreeMap yields them). */
  map(tag: number, m: Readonly<Record<string, string>>): this {
    for (const k of Object.keys(m).sort()) {
      this.msg(tag, new Pb().strAlways(1, k).strAlways(2, m[k]!));
    }
    return this;
  }

  /** Appends `ver = 100` and `min_reader_ver = 101`. */
  ver(): this {
    return this.uint(100, PB_VER).uint(101, PB_MIN_READER_VER);
  }

  /** The encoded bytes. */
  finish(): number[] {
    return [...this.#parts];
  }
}

/** A column type of the sample tables. */
type ColumnType =
  | { kind: "string" }
  | { kind: "uint64" }
  | { kind: "uint32" }
  | { kind: "int64" }
  | { kind: "date" }
  | { kind: "timestamp" }
  | { kind: "decimal"; precision: number; scale: number }
  | { kind: "nullable"; inner: ColumnType };

/** One column of a sample table. */
interface Column {
  readonly name: string;
  readonly type: ColumnType;
  readonly comment?: string;
}

const EMPTY = new Pb();

/** `DataType` with the `dt24` oneof (the encoding used since message version 24). */
function pbDataType(t: ColumnType): Pb {
  const m = new Pb();
  switch (t.kind) {
    case "string":
      m.msg(34, EMPTY);
      break;
    case "uint64":
      m.msg(35, new Pb().msg(4, EMPTY).ver());
      break;
    case "uint32":
      m.msg(35, new Pb().msg(3, EMPTY).ver());
      break;
    case "int64":
      m.msg(35, new Pb().msg(8, EMPTY).ver());
      break;
    case "timestamp":
      m.msg(36, EMPTY);
      break;
    case "date":
      m.msg(37, EMPTY);
      break;
    case "nullable":
      m.msg(38, pbDataType(t.inner));
      break;
    case "decimal":
      m.msg(
        43,
        new Pb().msg(1, new Pb().uint(1, t.precision).uint(2, t.scale).ver()).ver(),
      );
      break;
  }
  return m.ver();
}

/** `DataSchema` of a table. */
function pbSchema(columns: readonly Column[]): Pb {
  const m = new Pb();
  columns.forEach((c, i) => {
    m.msg(1, new Pb().str(1, c.name).msg(3, pbDataType(c.type)).uint(4, i).ver());
  });
  return m.uint(3, columns.length).ver();
}

/** Fields of `DatabaseMeta` the sample uses. */
interface DatabaseMetaFields {
  readonly engine: string;
  readonly createdOn: string;
  readonly updatedOn: string;
  readonly comment: string;
}

function pbDatabaseMeta(d: DatabaseMetaFields): number[] {
  return new Pb()
    .str(5, d.engine)
    .str(20, d.createdOn)
    .str(21, d.updatedOn)
    .str(22, d.comment)
    .ver()
    .finish();
}

/** Fields of `TableMeta` the sample uses. */
interface TableMetaFields {
  readonly columns: readonly Column[];
  readonly options: Readonly<Record<string, string>>;
  readonly createdOn: string;
  readonly updatedOn: string;
  readonly comment: string;
  readonly stats: TableStats;
  readonly dropOn: string | null;
}

/** Table statistics as kept in `TableMeta`. */
interface TableStats {
  readonly rows: number;
  readonly dataBytes: number;
  readonly compressedBytes: number;
  readonly indexBytes: number;
}

function pbTableMeta(t: TableMetaFields): number[] {
  const m = new Pb()
    .msg(1, pbSchema(t.columns))
    .map(5, t.options)
    .str(6, "FUSE")
    .str(20, t.createdOn)
    .str(21, t.updatedOn)
    .str(22, t.comment)
    .msg(
      23,
      new Pb()
        .uint(1, t.stats.rows)
        .uint(2, t.stats.dataBytes)
        .uint(3, t.stats.compressedBytes)
        .uint(4, t.stats.indexBytes)
        .ver(),
    );
  if (t.dropOn !== null) m.strAlways(24, t.dropOn);
  for (const c of t.columns) m.strAlways(25, c.comment ?? "");
  return m.ver().finish();
}

/** The id, as the decimal ASCII digits Databend stores for name-to-id keys. */
function idValue(id: number): number[] {
  return [...te.encode(String(id))];
}

// ---------------------------------------------------------------------------
// A tiny simulation of the meta service state machine

/** Meta of a stored value, as `databend-metactl export` prints it. */
type KvMeta = null | { expire_at?: number; proposed_at_ms?: number };

/** A stored value (`SeqV`). */
interface SeqV {
  seq: number;
  meta: KvMeta;
  data: number[];
}

/** A raft log entry kept for the export. */
interface LogEntry {
  readonly index: number;
  readonly timeMs: number;
  readonly cmd: unknown;
}

/** A put operation of a transaction. */
interface PutOp {
  readonly key: string;
  readonly value: number[];
  readonly expireAt?: number;
}

/** Replays meta writes: assigns seqs, keeps values, expiries and the raft log. */
class MetaSim {
  seq = 0;
  logIndex: number;
  readonly kv = new Map<string, SeqV>();
  readonly expire = new Map<string, { timeMs: number; seq: number }>();
  readonly log: LogEntry[] = [];
  /** The state machine snapshot, when one was taken. */
  snapshot:
    | { seq: number; index: number; kv: Map<string, SeqV>; expire: MetaSim["expire"] }
    | null = null;

  /** Starts after the bootstrap entries (initial membership and AddNode). */
  constructor(firstIndex: number) {
    this.logIndex = firstIndex - 1;
  }

  #meta(timeMs: number, expireAt: number | undefined, fromTxn: boolean): KvMeta {
    const upgraded = timeMs >= T_UPGRADE;
    if (expireAt === undefined && !upgraded) return fromTxn ? {} : null;
    const m: { expire_at?: number; proposed_at_ms?: number } = {};
    if (expireAt !== undefined) m.expire_at = expireAt;
    if (upgraded) m.proposed_at_ms = timeMs;
    return m;
  }

  #set(key: string, data: number[], meta: KvMeta, expireAt: number | undefined): number {
    this.seq += 1;
    this.kv.set(key, { seq: this.seq, meta, data });
    if (expireAt !== undefined) {
      this.expire.set(key, { timeMs: expireAt * MS_PER_SECOND, seq: this.seq });
    } else {
      this.expire.delete(key);
    }
    return this.seq;
  }

  #append(timeMs: number, cmd: unknown): void {
    this.logIndex += 1;
    this.log.push({ index: this.logIndex, timeMs, cmd });
  }

  /**
   * Takes the state machine snapshot (as the meta service does every 1,024
   * entries): the export holds this state and the log entries after it.
   */
  takeSnapshot(): void {
    this.snapshot = {
      seq: this.seq,
      index: this.logIndex,
      kv: new Map([...this.kv].map(([k, v]) => [k, { ...v }])),
      expire: new Map(this.expire),
    };
  }

  /** Current seq of `key`, 0 if absent. */
  seqOf(key: string): number {
    return this.kv.get(key)?.seq ?? 0;
  }

  /** An `UpsertKV` command; returns the new seq (ids are allocated this way). */
  upsert(
    timeMs: number,
    key: string,
    data: number[],
    opts: { expireAt?: number; asIs?: boolean; anySeq?: boolean } = {},
  ): number {
    const prev = this.kv.get(key);
    const value = opts.asIs && prev ? prev.data : data;
    const seq = this.#set(key, value, this.#meta(timeMs, opts.expireAt, false), opts.expireAt);
    this.#append(timeMs, {
      UpsertKV: {
        key,
        seq: opts.asIs ? { GE: 1 } : opts.anySeq ? "Any" : { Exact: 0 },
        value: opts.asIs ? "AsIs" : { Update: data },
        value_meta: opts.expireAt === undefined ? null : { expire_at: opts.expireAt },
      },
    });
    return seq;
  }

  /** A `Transaction` command whose conditions all hold. */
  txn(
    timeMs: number,
    conditionKeys: readonly string[],
    puts: readonly PutOp[],
    deletes: readonly string[] = [],
  ): void {
    const condition = conditionKeys.map((key) => ({
      key,
      expected: 0,
      target: { Seq: this.seqOf(key) },
    }));
    const ifThen: unknown[] = [];
    for (const p of puts) {
      this.#set(p.key, p.value, this.#meta(timeMs, p.expireAt, true), p.expireAt);
      ifThen.push({
        request: {
          Put: { key: p.key, value: p.value, expire_at: p.expireAt ?? null, match_seq: null },
        },
      });
    }
    for (const key of deletes) {
      this.kv.delete(key);
      this.expire.delete(key);
      ifThen.push({ request: { Delete: { key, match_seq: null } } });
    }
    this.#append(timeMs, { Transaction: { condition, if_then: ifThen, else_then: [] } });
  }
}

// ---------------------------------------------------------------------------
// Storage files in the Fuse table layout

/** A file of the generated tree. */
export interface SampleFile {
  /** Path relative to the sample-cluster directory, with `/` separators. */
  readonly path: string;
  readonly bytes: Uint8Array;
  /** Modification time to set, in milliseconds since the epoch. */
  readonly mtimeMs: number;
}

/** The whole generated tree, in memory. */
export interface SampleCluster {
  /** Files, sorted by path. */
  readonly files: readonly SampleFile[];
  /** Directories that must exist even though they hold no file, sorted. */
  readonly emptyDirs: readonly string[];
  /** Tables, for tests that want to know what the tree holds. */
  readonly tables: readonly SampleTableInfo[];
  /** The meta service's key-value state after the last log entry (seq and bytes per key). */
  readonly finalKv: ReadonlyMap<string, { readonly seq: number; readonly data: readonly number[] }>;
  /** The log index of the state machine snapshot in the export (`LastApplied`). */
  readonly snapshotIndex: number;
  /** The last log index. */
  readonly lastIndex: number;
}

/** What a test may want to know about one sample table. */
export interface SampleTableInfo {
  readonly database: string;
  readonly dbId: number;
  readonly name: string;
  readonly tableId: number;
  /** Storage prefix of the table's data under the storage root. */
  readonly storagePrefix: string;
  /** "live", "dropped" (still in meta, data kept), "vacuumed" (gone from meta) or "attached". */
  readonly state: "live" | "dropped" | "vacuumed" | "attached";
  /** Location of the latest snapshot, relative to the storage root; null if none exists. */
  readonly snapshotLocation: string | null;
  /** Every snapshot the table's storage holds, oldest first (none for attached or vacuumed). */
  readonly snapshots: readonly SampleSnapshot[];
}

const PARQUET_MAGIC = te.encode("PAR1");

function u64le(n: number): number[] {
  const out: number[] = [];
  let v = n;
  for (let i = 0; i < 8; i++) {
    out.push(v % 256);
    v = Math.floor(v / 256);
  }
  return out;
}

function u32le(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
}

/**
 * A synthetic Parquet file: `PAR1`, pseudo-random "column chunks", a
 * pseudo-random "footer", the footer length (u32 LE) and `PAR1`. Not a
 * readable Parquet file, but shaped like one and as incompressible.
 */
function fakeParquet(size: number, footerLen: number, rng: SeededRandom): Uint8Array {
  const body = size - 4 - 4 - 4;
  const out = new Uint8Array(size);
  out.set(PARQUET_MAGIC, 0);
  out.set(rng.bytes(body), 4);
  out.set(u32le(Math.min(footerLen, body)), size - 8);
  out.set(PARQUET_MAGIC, size - 4);
  return out;
}

/** One block of a segment, as the sample writes it. */
interface SampleBlock {
  readonly location: string;
  readonly bloom: string;
  readonly bloomSize: number;
  readonly rows: number;
  readonly fileSize: number;
  readonly createdOn: string;
}

/**
 * A v4 segment (`_sg/*_v4.mpk`), as `SegmentInfo::to_bytes` writes it: format
 * version (u64 LE), encoding (2, MessagePack), compression (1, Zstd), the
 * sizes of the two compressed parts (u64 LE each), then the block metas (a
 * MessagePack array of `BlockMeta` maps with field names) and the summary
 * (`Statistics`), each zstd-compressed. A block meta names its block
 * (`location`, `[path, 2]`) and its bloom index (`bloom_filter_index_location`,
 * `[path, 4]`); column statistics and metas are left empty.
 */
function segmentFile(blocks: readonly SampleBlock[], uncompressed: number): Uint8Array {
  const metas = blocks.map((b) => ({
    row_count: b.rows,
    block_size: b.fileSize * 3,
    file_size: b.fileSize,
    col_stats: {},
    col_metas: {},
    cluster_stats: null,
    location: [b.location, 2],
    bloom_filter_index_location: [b.bloom, 4],
    bloom_filter_index_size: b.bloomSize,
    inverted_index_size: null,
    compression: "Zstd",
    create_on: b.createdOn,
  }));
  const summary = {
    row_count: blocks.reduce((a, b) => a + b.rows, 0),
    block_count: blocks.length,
    perfect_block_count: 0,
    uncompressed_byte_size: uncompressed,
    compressed_byte_size: blocks.reduce((a, b) => a + b.fileSize, 0),
    index_size: blocks.reduce((a, b) => a + b.bloomSize, 0),
    col_stats: {},
    cluster_stats: null,
  };
  const blocksPart = new Uint8Array(zstdCompressSync(msgpackEncode(metas)));
  const summaryPart = new Uint8Array(zstdCompressSync(msgpackEncode(summary)));
  return new Uint8Array([
    ...u64le(4),
    2,
    1,
    ...u64le(blocksPart.length),
    ...u64le(summaryPart.length),
    ...blocksPart,
    ...summaryPart,
  ]);
}

/** `TableDataType` as serde names it (externally tagged enum). */
function serdeDataType(t: ColumnType): unknown {
  switch (t.kind) {
    case "string":
      return "String";
    case "uint64":
      return { Number: "UInt64" };
    case "uint32":
      return { Number: "UInt32" };
    case "int64":
      return { Number: "Int64" };
    case "date":
      return "Date";
    case "timestamp":
      return "Timestamp";
    case "decimal":
      return { Decimal: { Decimal128: { precision: t.precision, scale: t.scale } } };
    case "nullable":
      return { Nullable: serdeDataType(t.inner) };
  }
}

/** What one snapshot of a sample table records. */
export interface SampleSnapshot {
  /** Hyphenated snapshot id. */
  readonly id: string;
  /** Location relative to the storage root. */
  readonly location: string;
  /** `timestamp` as written (RFC 3339). */
  readonly timestamp: string;
  /** Microseconds since the epoch. */
  readonly timestampUs: number;
  readonly rowCount: number;
  /** Hyphenated id of the previous snapshot, "" for the first. */
  readonly prevId: string;
  /** Segment locations the snapshot lists (newest first). */
  readonly segments: readonly string[];
  /** Every object the snapshot needs: itself, its segments, their blocks and bloom indexes, sorted. */
  readonly objects: readonly string[];
}

/**
 * A v4 snapshot (`_ss/*_v4.mpk`), as `TableSnapshot::to_bytes` writes it:
 * format version (u64 LE), encoding (2, MessagePack), compression (1, Zstd),
 * size of the compressed body (u64 LE), then the body: the snapshot as a
 * MessagePack map with field names (rmp-serde `to_vec_named`; uuids as 16-byte
 * bin, timestamps as RFC 3339 strings, tuples as arrays), zstd-compressed.
 */
function snapshotFile(body: Record<string, unknown>): Uint8Array {
  const packed = msgpackEncode(body);
  const compressed = new Uint8Array(zstdCompressSync(packed));
  return new Uint8Array([4, 0, 0, 0, 0, 0, 0, 0, 2, 1, ...u64le(compressed.length), ...compressed]);
}

/** Writes and tracks the files of one table's storage prefix. */
class FuseTableStorage {
  readonly prefix: string;
  readonly columns: readonly Column[];
  readonly comment: string;
  readonly #files: Map<string, SampleFile>;
  readonly #rng: SeededRandom;
  segments: string[] = [];
  snapshotLocation: string | null = null;
  snapshotId: Uint8Array | null = null;
  blockCount = 0;
  /** The table statistics file of the latest ANALYZE, named by later snapshots. */
  statsLocation: string | null = null;
  readonly snapshots: SampleSnapshot[] = [];
  /** Segments, blocks and bloom indexes written so far (a snapshot lists them all). */
  readonly segmentObjects: string[] = [];
  stats: TableStats = { rows: 0, dataBytes: 0, compressedBytes: 0, indexBytes: 0 };

  constructor(
    prefix: string,
    columns: readonly Column[],
    comment: string,
    files: Map<string, SampleFile>,
    rng: SeededRandom,
  ) {
    this.prefix = prefix;
    this.columns = columns;
    this.comment = comment;
    this.#files = files;
    this.#rng = rng;
  }

  #put(path: string, bytes: Uint8Array, mtimeMs: number): void {
    this.#files.set(path, { path, bytes, mtimeMs });
  }

  /**
   * One INSERT: one block (and its bloom index) per entry of `blockSizes`, one
   * segment, a new snapshot and a rewritten snapshot hint. Returns the new
   * snapshot location (relative to the storage root).
   */
  insert(timeMs: number, rows: number, blockSizes: readonly number[]): string {
    const rng = this.#rng;
    const ncols = this.columns.length;
    let indexBytes = 0;
    const blocks: SampleBlock[] = [];
    for (const [i, size] of blockSizes.entries()) {
      const id = uuidSimple(uuidV7(timeMs, rng));
      const location = `${this.prefix}/_b/h${id}_v2.parquet`;
      this.#put(location, fakeParquet(size, 300 + ncols * 120, rng), timeMs);
      const bloomSize = 700 + ncols * 260 + rng.int(0, 400) + Math.floor(size / 200);
      const bloom = `${this.prefix}/_i_b_v2/${id}_v4.parquet`;
      this.#put(bloom, fakeParquet(bloomSize, 200 + ncols * 40, rng), timeMs);
      indexBytes += bloomSize;
      const share = Math.floor(rows / blockSizes.length);
      blocks.push({
        location,
        bloom,
        bloomSize,
        rows: i === 0 ? rows - share * (blockSizes.length - 1) : share,
        fileSize: size,
        createdOn: chronoSerde(timeMs, rng.int(0, 999)),
      });
    }
    const segment = `${this.prefix}/_sg/h${uuidSimple(uuidV7(timeMs, rng))}_v4.mpk`;
    const uncompressed = blockSizes.reduce((a, b) => a + b, 0) * 3;
    this.#put(segment, segmentFile(blocks, uncompressed), timeMs + 2);
    for (const b of blocks) this.segmentObjects.push(segment, b.location, b.bloom);
    this.segments.push(segment);

    const compressed = blockSizes.reduce((a, b) => a + b, 0);
    this.stats = {
      rows: this.stats.rows + rows,
      dataBytes: this.stats.dataBytes + compressed * 3 + rng.int(0, 999),
      compressedBytes: this.stats.compressedBytes + compressed,
      indexBytes: this.stats.indexBytes + indexBytes,
    };
    this.blockCount += blockSizes.length;

    const snapshotMs = timeMs + 5;
    const snapshot = this.#snapshot(snapshotMs);
    this.#writeHint(snapshotMs + 3);
    return snapshot;
  }

  /**
   * Writes a new snapshot of the table as it is (its previous snapshot, every
   * segment, the statistics file if any) at `snapshotMs`; returns its location.
   */
  #snapshot(snapshotMs: number): string {
    const rng = this.#rng;
    const ncols = this.columns.length;
    const micros = rng.int(0, 999);
    const prevId = this.snapshotId;
    this.snapshotId = uuidV7(snapshotMs, rng);
    const snapshot = `${this.prefix}/_ss/h${uuidSimple(this.snapshotId)}_v4.mpk`;
    const timestamp = chronoSerde(snapshotMs, micros);
    // Databend puts the segment an append writes before the ones it keeps.
    const segments = [...this.segments].reverse();
    this.#put(
      snapshot,
      snapshotFile({
        format_version: 4,
        snapshot_id: this.snapshotId,
        timestamp,
        prev_table_seq: null,
        prev_snapshot_id: prevId === null ? null : [prevId, 4],
        schema: {
          fields: this.columns.map((c, i) => ({
            name: c.name,
            default_expr: null,
            data_type: serdeDataType(c.type),
            column_id: i,
            computed_expr: null,
          })),
          metadata: {},
          next_column_id: ncols,
        },
        summary: {
          row_count: this.stats.rows,
          block_count: this.blockCount,
          perfect_block_count: 0,
          uncompressed_byte_size: this.stats.dataBytes,
          compressed_byte_size: this.stats.compressedBytes,
          index_size: this.stats.indexBytes,
          col_stats: {},
          cluster_stats: null,
        },
        segments: segments.map((sg) => [sg, 4]),
        cluster_key_meta: null,
        table_statistics_location: this.statsLocation,
      }),
      snapshotMs,
    );
    this.snapshotLocation = snapshot;
    this.snapshots.push({
      id: uuidHyphenated(this.snapshotId),
      location: snapshot,
      timestamp,
      timestampUs: snapshotMs * 1000 + micros,
      rowCount: this.stats.rows,
      prevId: prevId === null ? "" : uuidHyphenated(prevId),
      segments,
      objects: [
        ...new Set([
          snapshot,
          ...this.segmentObjects,
          ...(this.statsLocation === null ? [] : [this.statsLocation]),
        ]),
      ].sort(),
    });
    return snapshot;
  }

  /**
   * `ANALYZE TABLE`: a table statistics file under `_ts/` for the latest
   * snapshot (JSON; HLL sketches and histograms left empty, see the README),
   * and a new snapshot naming it (`table_statistics_location`).
   */
  analyze(timeMs: number): string {
    const rng = this.#rng;
    if (this.snapshotId === null) throw new Error(`${this.prefix}: nothing to analyze`);
    const path = `${this.prefix}/_ts/${uuidSimple(uuidV7(timeMs, rng))}_ts_v4.json`;
    const stats = {
      format_version: 4,
      snapshot_id: uuidHyphenated(this.snapshotId),
      row_count: this.stats.rows,
      hll: {},
      histograms: {},
    };
    // Pretty-printed, as `deno fmt` would leave it, so that formatting the
    // repository never rewrites this file.
    this.#put(path, te.encode(JSON.stringify(stats, null, 2) + "\n"), timeMs);
    // ANALYZE commits a new snapshot that names the statistics file; later
    // snapshots carry it on.
    this.statsLocation = path;
    const snapshotMs = timeMs + 5;
    this.#snapshot(snapshotMs);
    this.#writeHint(snapshotMs + 3);
    return path;
  }

  /** `last_snapshot_location_hint_v2`: JSON naming the latest snapshot. */
  #writeHint(timeMs: number): void {
    const hint = {
      snapshot_full_path: `${SAMPLE_OPERATOR_ROOT}${this.snapshotLocation}`,
      entity_comments: {
        table_comment: this.comment,
        field_comments: this.columns.map((c) => c.comment ?? ""),
      },
      indexes: {},
    };
    this.#put(
      `${this.prefix}/last_snapshot_location_hint_v2`,
      te.encode(JSON.stringify(hint)),
      timeMs,
    );
  }

  /** Vacuum after drop: every file goes, the (fs) directories stay behind. */
  vacuum(): string[] {
    const dirs = new Set<string>();
    for (const path of [...this.#files.keys()]) {
      if (path.startsWith(`${this.prefix}/`)) {
        this.#files.delete(path);
        dirs.add(path.slice(0, path.lastIndexOf("/")));
      }
    }
    return [...dirs].sort();
  }
}

// ---------------------------------------------------------------------------
// The sample cluster

const COL = {
  str: { kind: "string" } as const,
  u64: { kind: "uint64" } as const,
  u32: { kind: "uint32" } as const,
  i64: { kind: "int64" } as const,
  date: { kind: "date" } as const,
  ts: { kind: "timestamp" } as const,
};

function nullable(inner: ColumnType): ColumnType {
  return { kind: "nullable", inner };
}

const ORDERS_COLUMNS: readonly Column[] = [
  { name: "order_id", type: COL.u64 },
  { name: "customer_id", type: COL.u64 },
  { name: "order_date", type: COL.date },
  { name: "amount", type: { kind: "decimal", precision: 18, scale: 2 } },
  { name: "status", type: COL.str },
];

/** A database as the simulation knows it. */
interface Db {
  readonly name: string;
  readonly id: number;
  readonly createdOn: string;
  readonly engine: string;
}

/** A table as the simulation knows it. */
interface Tbl {
  readonly db: Db;
  readonly name: string;
  readonly id: number;
  readonly createdOn: string;
  readonly storage: FuseTableStorage;
  readonly extraOptions: Readonly<Record<string, string>>;
  updatedOn: string;
  dropOn: string | null;
  state: SampleTableInfo["state"];
}

/** Builds the whole sample cluster in memory; pure and deterministic. */
export function buildSampleCluster(): SampleCluster {
  const rng = new SeededRandom(SEED);
  /** Files under the storage root, keyed by their path relative to it. */
  const files = new Map<string, SampleFile>();
  const emptyDirs = new Set<string>();
  const sim = new MetaSim(3);
  const t = SAMPLE_TENANT;
  let tableCount = 0;
  const stamp = (ms: number) => chronoUtc(ms, rng.int(1, 999));

  const nodeId = rng.chars(22, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
  const nodeKeys = [
    `__fd_clusters_v6/${t}/online_nodes/${nodeId}`,
    `__fd_clusters_v6/${t}/online_clusters/${SAMPLE_CLUSTER}/${SAMPLE_CLUSTER}/${nodeId}`,
  ];
  const nodeInfo = (binaryVersion: string) => [
    ...te.encode(JSON.stringify({
      id: nodeId,
      secret: "",
      cpu_nums: 8,
      version: 0,
      http_address: "127.0.0.1:8000",
      flight_address: "127.0.0.1:9090",
      discovery_address: "127.0.0.1:9090",
      binary_version: binaryVersion,
      cluster_id: SAMPLE_CLUSTER,
      warehouse_id: SAMPLE_CLUSTER,
    })),
  ];
  const registerNode = (ms: number, binaryVersion: string) => {
    const expireAt = Math.floor(ms / MS_PER_SECOND) + NODE_TTL_SECONDS;
    for (const key of nodeKeys) sim.upsert(ms, key, nodeInfo(binaryVersion), { expireAt });
  };
  const heartbeat = (ms: number) => {
    const expireAt = Math.floor(ms / MS_PER_SECOND) + NODE_TTL_SECONDS;
    for (const key of nodeKeys) sim.upsert(ms, key, [], { expireAt, asIs: true });
  };

  const createDb = (ms: number, name: string, engine: string): Db => {
    const id = sim.upsert(ms, "__fd_id_gen/database_id", [], { anySeq: true });
    const createdOn = stamp(ms);
    const db: Db = { name, id, createdOn, engine };
    sim.txn(
      ms + 4,
      [
        `__fd_database/${t}/${name}`,
        `__fd_database_id_to_name/${id}`,
        `__fd_db_id_list/${t}/${name}`,
      ],
      [
        { key: `__fd_database/${t}/${name}`, value: idValue(id) },
        { key: `__fd_database_by_id/${id}`, value: dbMeta(db, createdOn) },
        { key: `__fd_db_id_list/${t}/${name}`, value: new Pb().packed(1, [id]).ver().finish() },
        {
          key: `__fd_database_id_to_name/${id}`,
          value: new Pb().str(1, t).str(2, name).ver().finish(),
        },
      ],
    );
    return db;
  };
  const dbMeta = (db: Db, updatedOn: string) =>
    pbDatabaseMeta({ engine: db.engine, createdOn: db.createdOn, updatedOn, comment: "" });

  const tableMeta = (tbl: Tbl) =>
    pbTableMeta({
      columns: tbl.storage.columns,
      options: {
        database_id: String(tbl.db.id),
        ...(tbl.storage.snapshotLocation === null
          ? {}
          : { snapshot_location: tbl.storage.snapshotLocation }),
        ...tbl.extraOptions,
      },
      createdOn: tbl.createdOn,
      updatedOn: tbl.updatedOn,
      comment: tbl.storage.comment,
      stats: tbl.storage.stats,
      dropOn: tbl.dropOn,
    });

  const tables: Tbl[] = [];
  const createTable = (
    ms: number,
    db: Db,
    name: string,
    columns: readonly Column[],
    opts: { comment?: string; prefix?: string; extraOptions?: Record<string, string> } = {},
  ): Tbl => {
    const id = sim.upsert(ms, "__fd_id_gen/table_id", [], { anySeq: true });
    const createdOn = stamp(ms);
    const prefix = opts.prefix ?? `${db.id}/${id}`;
    const tbl: Tbl = {
      db,
      name,
      id,
      createdOn,
      updatedOn: createdOn,
      dropOn: null,
      state: opts.prefix === undefined ? "live" : "attached",
      storage: new FuseTableStorage(prefix, columns, opts.comment ?? "", files, rng),
      extraOptions: opts.extraOptions ?? {},
    };
    tableCount += 1;
    sim.txn(
      ms + 5,
      [
        `__fd_database_by_id/${db.id}`,
        `__fd_table/${db.id}/${name}`,
        `__fd_table_id_list/${db.id}/${name}`,
        `__fd_table_count/${t}`,
        `__fd_table_id_to_name/${id}`,
      ],
      [
        { key: `__fd_database_by_id/${db.id}`, value: dbMeta(db, db.createdOn) },
        { key: `__fd_table/${db.id}/${name}`, value: idValue(id) },
        { key: `__fd_table_by_id/${id}`, value: tableMeta(tbl) },
        {
          key: `__fd_table_id_list/${db.id}/${name}`,
          value: new Pb().packed(1, [id]).ver().finish(),
        },
        { key: `__fd_table_count/${t}`, value: idValue(tableCount) },
        {
          key: `__fd_table_id_to_name/${id}`,
          value: new Pb().uint(1, db.id).str(2, name).ver().finish(),
        },
      ],
    );
    tables.push(tbl);
    return tbl;
  };

  const insert = (ms: number, tbl: Tbl, rows: number, blockSizes: readonly number[]) => {
    tbl.storage.insert(ms, rows, blockSizes);
    tbl.updatedOn = stamp(ms + 9);
    const key = `__fd_table_by_id/${tbl.id}`;
    sim.txn(ms + 9, [key], [{ key, value: tableMeta(tbl) }]);
  };

  const dropTable = (ms: number, tbl: Tbl) => {
    tbl.dropOn = stamp(ms);
    tbl.state = "dropped";
    tableCount -= 1;
    const byId = `__fd_table_by_id/${tbl.id}`;
    const byName = `__fd_table/${tbl.db.id}/${tbl.name}`;
    sim.txn(
      ms,
      [byName, byId],
      [
        { key: byId, value: tableMeta(tbl) },
        { key: `__fd_table_count/${t}`, value: idValue(tableCount) },
      ],
      [byName],
    );
  };

  const vacuumDroppedTable = (ms: number, tbl: Tbl) => {
    for (const dir of tbl.storage.vacuum()) emptyDirs.add(dir);
    tbl.state = "vacuumed";
    sim.txn(ms, [`__fd_table_by_id/${tbl.id}`], [], [
      `__fd_table_by_id/${tbl.id}`,
      `__fd_table_id_to_name/${tbl.id}`,
      `__fd_table_id_list/${tbl.db.id}/${tbl.name}`,
    ]);
  };

  // --- The timeline ---------------------------------------------------------
  const day = (n: number, h = 0, m = 0) =>
    T_BOOTSTRAP + n * MS_PER_DAY + h * MS_PER_HOUR + m * MS_PER_MINUTE;

  const dflt = createDb(day(0, 0, 0) + 1200, "default", "");
  registerNode(day(0, 0, 0) + 2600, "v1.2.725-nightly-sample");
  const sales = createDb(day(0, 1, 12), "sales", "default");
  const analytics = createDb(day(0, 1, 13), "analytics", "default");

  createTable(day(0, 1, 20), dflt, "scratch", [
    { name: "id", type: COL.i64 },
    { name: "note", type: nullable(COL.str) },
  ]);

  const customers = createTable(day(0, 1, 25), sales, "customers", [
    { name: "customer_id", type: COL.u64 },
    { name: "name", type: COL.str },
    { name: "email", type: nullable(COL.str) },
    { name: "country", type: COL.str },
    { name: "created_at", type: COL.ts },
  ]);
  const orders = createTable(day(0, 1, 27), sales, "orders", ORDERS_COLUMNS, {
    comment: "one row per order (synthetic)",
  });
  const orders2023 = createTable(day(0, 1, 29), sales, "orders_2023", ORDERS_COLUMNS);
  const pageViews = createTable(day(0, 2, 5), analytics, "page_views", [
    { name: "ts", type: COL.ts, comment: "event time, UTC" },
    { name: "user_id", type: nullable(COL.u64), comment: "null for anonymous visitors" },
    { name: "url", type: COL.str },
    { name: "referrer", type: nullable(COL.str) },
    { name: "duration_ms", type: COL.u32 },
  ], { comment: "raw page view events (synthetic)" });

  insert(day(0, 3, 0), customers, 1_250, [12_288]);
  insert(day(0, 3, 10), orders, 61_440, [300_032]);
  insert(day(0, 3, 30), orders2023, 4_800, [24_576]);
  insert(day(1, 9, 0), orders, 1_900, [9_472]);
  insert(day(2, 9, 0), pageViews, 36_000, [180_224]);
  insert(day(7, 9, 0), orders, 2_300, [7_040, 5_184]);
  const analyze = (ms: number, tbl: Tbl) => {
    tbl.storage.analyze(ms);
    tbl.updatedOn = stamp(ms + 9);
    const key = `__fd_table_by_id/${tbl.id}`;
    sim.txn(ms + 9, [key], [{ key, value: tableMeta(tbl) }]);
  };
  analyze(day(7, 10, 0), pageViews);

  // After the upgrade: values get `proposed_at_ms` in their meta.
  const up = (n: number, h = 0, m = 0) =>
    T_UPGRADE + n * MS_PER_DAY + h * MS_PER_HOUR + m * MS_PER_MINUTE;
  registerNode(up(0, 0, 5), "v1.2.830-nightly-sample");
  insert(up(1, 9, 0), pageViews, 2_950, [15_104]);
  // The meta service's last state machine snapshot: what follows is only in
  // the raft log of the export.
  sim.takeSnapshot();
  dropTable(up(2, 11, 0), orders2023);

  const tmpImport = createTable(up(3, 14, 0), analytics, "tmp_import", [
    { name: "raw", type: COL.str },
  ]);
  insert(up(3, 14, 5), tmpImport, 500, [6_016]);
  dropTable(up(3, 15, 0), tmpImport);
  vacuumDroppedTable(up(4, 2, 0), tmpImport);

  createTable(up(5, 10, 0), analytics, "orders_shared", [], {
    prefix: `${sales.id}/${orders.id}`,
    extraOptions: {
      storage_prefix: `${sales.id}/${orders.id}`,
      table_data_uri: `fs://${SAMPLE_OPERATOR_ROOT}${sales.id}/${orders.id}/`,
    },
  });

  // After the snapshot: a new snapshot of sales.orders (the state machine's
  // snapshot_location of it is stale) and a table created with data.
  insert(up(5, 11, 0), orders, 1_100, [5_632]);
  const returns = createTable(up(5, 12, 0), sales, "returns", [
    { name: "order_id", type: COL.u64 },
    { name: "returned_at", type: COL.ts },
    { name: "reason", type: nullable(COL.str) },
  ]);
  insert(up(5, 12, 5), returns, 40, [2_048]);

  const tEnd = up(5, 12, 5) + 17 * MS_PER_SECOND;
  // The query node restarted: its registration had expired.
  registerNode(tEnd - 8 * MS_PER_SECOND, "v1.2.830-nightly-sample");
  heartbeat(tEnd - 4 * MS_PER_SECOND);
  heartbeat(tEnd);

  // --- The export -------------------------------------------------------------
  const configTime = T_BOOTSTRAP - MS_PER_HOUR;
  const top: SampleFile[] = [
    { path: "databend-meta.toml", bytes: te.encode(metaToml()), mtimeMs: configTime },
    {
      path: "meta-export.jsonl",
      bytes: te.encode(metaExport(sim, 2)),
      mtimeMs: tEnd + 30 * MS_PER_SECOND,
    },
    { path: "query-node.toml", bytes: te.encode(queryNodeToml()), mtimeMs: configTime },
  ];
  const stored = [...files.values()].map((f) => ({ ...f, path: `storage/${f.path}` }));
  const fileList = [...top, ...stored].sort((a, b) => (a.path < b.path ? -1 : 1));
  return {
    files: fileList,
    emptyDirs: [...emptyDirs].map((d) => `storage/${d}`).sort(),
    tables: tables.map((tbl) => ({
      database: tbl.db.name,
      dbId: tbl.db.id,
      name: tbl.name,
      tableId: tbl.id,
      storagePrefix: tbl.storage.prefix,
      state: tbl.state,
      snapshotLocation: tbl.state === "attached" || tbl.state === "vacuumed"
        ? null
        : tbl.storage.snapshotLocation,
      snapshots: tbl.state === "attached" || tbl.state === "vacuumed" ? [] : tbl.storage.snapshots,
    })),
    finalKv: new Map([...sim.kv].map(([k, v]) => [k, { seq: v.seq, data: v.data }])),
    snapshotIndex: sim.snapshot?.index ?? sim.logIndex,
    lastIndex: sim.logIndex,
  };
}

/**
 * The meta export, one JSON array `[tree, entry]` per line: the data header,
 * the raft log tree (node id, vote, committed, purged, the entries from
 * `keepBefore` entries before the state machine snapshot to the last one),
 * then the state machine as of its snapshot (sequence, state machine meta
 * with `LastApplied` = the snapshot's index, nodes, expiries, and every
 * key-value pair sorted by key). The entries after `LastApplied` are writes
 * the snapshot does not hold yet.
 */
function metaExport(sim: MetaSim, keepBefore: number): string {
  const leader = { term: 2, node_id: 1 };
  const last = sim.logIndex;
  const snap = sim.snapshot ?? { seq: sim.seq, index: last, kv: sim.kv, expire: sim.expire };
  const purged = snap.index - keepBefore;
  const lines: unknown[] = [
    ["header", { DataHeader: { key: "header", value: { version: "V004" } } }],
    ["raft_log", { NodeId: 1 }],
    ["raft_log", { Vote: { leader_id: leader, committed: true } }],
    ["raft_log", { Committed: { leader_id: leader, index: last } }],
    ["raft_log", { Purged: { leader_id: leader, index: purged } }],
  ];
  for (const e of sim.log) {
    if (e.index <= purged) continue;
    lines.push([
      "raft_log",
      {
        LogEntry: {
          log_id: { leader_id: leader, index: e.index },
          payload: { Normal: { time_ms: e.timeMs, cmd: e.cmd } },
        },
      },
    ]);
  }
  const sm = "state_machine/0";
  lines.push([sm, { Sequences: { key: "generic-kv", value: snap.seq } }]);
  lines.push([sm, {
    StateMachineMeta: {
      key: "LastApplied",
      value: { LogId: { leader_id: leader, index: snap.index } },
    },
  }]);
  lines.push([sm, {
    StateMachineMeta: {
      key: "LastMembership",
      value: {
        Membership: {
          log_id: { leader_id: { term: 1, node_id: 1 }, index: 1 },
          membership: { configs: [[1]], nodes: { "1": {} } },
        },
      },
    },
  }]);
  lines.push([sm, {
    Nodes: {
      key: 1,
      value: {
        name: "1",
        endpoint: { addr: "127.0.0.1", port: 28004 },
        grpc_api_advertise_address: "127.0.0.1:9191",
      },
    },
  }]);
  const expiries = [...snap.expire.entries()].sort((a, b) =>
    a[1].timeMs - b[1].timeMs || a[1].seq - b[1].seq
  );
  for (const [key, e] of expiries) {
    lines.push([sm, {
      Expire: { key: { time_ms: e.timeMs, seq: e.seq }, value: { seq: 1, key } },
    }]);
  }
  for (const key of [...snap.kv.keys()].sort()) {
    const v = snap.kv.get(key)!;
    lines.push([sm, { GenericKV: { key, value: { seq: v.seq, meta: v.meta, data: v.data } } }]);
  }
  return lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
}

/** `query-node.toml`: a databend-query config with fs storage under `./storage`. */
function queryNodeToml(): string {
  return `# databend-query configuration of the bendsave sample cluster (synthetic).
# Generated by testdata/make_sample_cluster.ts: edit the generator, not this file.
# Usage with a real binary: databend-query -c query-node.toml

[query]
max_active_sessions = 256
shutdown_wait_timeout_ms = 5000

# Internal flight rpc for cluster communication.
flight_api_address = "127.0.0.1:9090"
# Admin REST API.
admin_api_address = "127.0.0.1:8080"
# Metrics REST API.
metric_api_address = "127.0.0.1:7070"

# Query handlers.
mysql_handler_host = "127.0.0.1"
mysql_handler_port = 3307
clickhouse_http_handler_host = "127.0.0.1"
clickhouse_http_handler_port = 8124
http_handler_host = "127.0.0.1"
http_handler_port = 8000
flight_sql_handler_host = "127.0.0.1"
flight_sql_handler_port = 8900

tenant_id = "${SAMPLE_TENANT}"
cluster_id = "${SAMPLE_CLUSTER}"

[[query.users]]
name = "root"
auth_type = "no_password"

[log]

[log.file]
level = "WARN"
format = "text"
dir = "./logs/query"

[meta]
# grpc_api_advertise_host:port of the databend-meta nodes (see databend-meta.toml).
endpoints = ["127.0.0.1:9191"]
username = "root"
password = "${SAMPLE_META_PASSWORD}"
client_timeout_in_second = 10
auto_sync_interval = 60

[storage]
# fs | s3 | azblob | gcs | oss | cos | hdfs | webhdfs
type = "fs"

[storage.fs]
# Relative path. bendsave resolves it against the directory of this file;
# databend-query itself resolves it against its working directory, so start it
# from this directory for the two to agree.
data_path = "${SAMPLE_DATA_PATH}"

# The same cluster on an S3-compatible store would use this instead of
# [storage.fs] (with type = "s3" above). The keys are fake.
# [storage.s3]
# bucket = "sample-databend-data"
# root = "sample-cluster/"
# endpoint_url = "http://127.0.0.1:9000"
# region = "us-east-1"
# access_key_id = "FAKEACCESSKEYID00SAMPLE"
# secret_access_key = "fake/secret/access/key/for/tests/only/0000"
# enable_virtual_host_style = false
`;
}

/** `databend-meta.toml`: a single-node meta service config for a restore step. */
function metaToml(): string {
  return `# databend-meta configuration of the bendsave sample cluster (synthetic).
# Generated by testdata/make_sample_cluster.ts: edit the generator, not this file.
# Usage with a real binary: databend-meta -c databend-meta.toml

admin_api_address = "127.0.0.1:28002"
grpc_api_address = "127.0.0.1:9191"
# Address databend-query nodes use to reach this node.
grpc_api_advertise_host = "127.0.0.1"

[log]

[log.file]
level = "WARN"
format = "text"
dir = "./logs/meta"

[raft_config]
id = 1
# Relative to the working directory of databend-meta.
raft_dir = "./meta-raft"
raft_api_port = 28004
raft_listen_host = "127.0.0.1"
raft_advertise_host = "127.0.0.1"

# Single-node cluster.
single = true
`;
}

// ---------------------------------------------------------------------------
// Writing the tree

/**
 * (Re)creates the sample cluster in `targetDir`: removes the directory, writes
 * every file and empty directory, and sets file and directory modification
 * times to the fixed times of the timeline.
 */
export async function writeSampleCluster(targetDir: string): Promise<SampleCluster> {
  const cluster = buildSampleCluster();
  await Deno.remove(targetDir, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  const dirTimes = new Map<string, number>();
  const noteDir = (rel: string, ms: number) => {
    for (let d = rel; d !== ""; d = d.includes("/") ? d.slice(0, d.lastIndexOf("/")) : "") {
      dirTimes.set(d, Math.max(dirTimes.get(d) ?? 0, ms));
    }
  };
  for (const f of cluster.files) {
    const full = `${targetDir}/${f.path}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(full, f.bytes);
    const when = new Date(f.mtimeMs);
    await Deno.utime(full, when, when);
    if (f.path.includes("/")) noteDir(f.path.slice(0, f.path.lastIndexOf("/")), f.mtimeMs);
  }
  const latest = Math.max(...cluster.files.map((f) => f.mtimeMs));
  for (const d of cluster.emptyDirs) {
    await Deno.mkdir(`${targetDir}/${d}`, { recursive: true });
    noteDir(d, latest);
  }
  const dirs = [...dirTimes.keys()].sort((a, b) => b.split("/").length - a.split("/").length);
  for (const d of dirs) {
    const when = new Date(dirTimes.get(d)!);
    await Deno.utime(`${targetDir}/${d}`, when, when);
  }
  const rootWhen = new Date(latest);
  await Deno.utime(targetDir, rootWhen, rootWhen);
  return cluster;
}

if (import.meta.main) {
  const here = new URL(".", import.meta.url).pathname.replace(/\/$/, "");
  const target = Deno.args[0] ?? `${here}/sample-cluster`;
  const cluster = await writeSampleCluster(target);
  const total = cluster.files.reduce((a, f) => a + f.bytes.length, 0);
  console.log(
    `wrote ${cluster.files.length} files (${total} bytes) and ${cluster.emptyDirs.length} empty directories to ${target}`,
  );
}
