/**
 * The PostgreSQL WAL archive in a repository (FORMAT.md, "WAL archive"):
 * `archive_command` pushes a WAL file, `restore_command` fetches one.
 *
 * A push stores the file like a backed-up file's content: cut by the
 * repository's chunker, blocks the index does not hold compressed into a new
 * pack, then one index file listing it, and last the record
 * `wal/<system identifier>/<name>` (an exclusive create): the commit point.
 * It holds a shared lock, so a vacuum never runs meanwhile.
 *
 * PostgreSQL's contracts: a push succeeds only once the record is durable;
 * the same name with the same content succeeds again without writing; the
 * same name with other content is refused ({@linkcode WalConflict}) and
 * nothing is overwritten. A fetch of a name the archive does not hold
 * throws {@linkcode WalNotArchived}; a fetch writes a temporary file beside
 * the destination and renames it into place only when every block and the
 * whole file's SHA-256 checked, so no partial file is ever left there.
 *
 * In an encrypted repository (FORMAT.md 21.11) both need the key: block ids
 * and the record's file id are keyed (HMAC-SHA-256), blocks are sealed as
 * every block, and the record is `"BSWL" 02` with its `WalFile` sealed
 * under its name; the conflict check compares keyed ids.
 *
 * @module
 */
import { syncDirectory } from "./drivers/fs.ts";
import { tempBeside } from "./wal_spool.ts";
import * as fs from "node:fs";
import * as path from "node:path";
import { hostname } from "node:os";
import type { BlobStore, Handle } from "./drivers/types.ts";
import { AlreadyExists, BendsaveError, IntegrityError, InvalidInput, NotFound } from "./errors.ts";
import { type OpenOptions, Repository } from "./repository.ts";
import type { PassphraseSource } from "./passphrase_source.ts";
import { reportStale, RepositoryLock } from "./lock.ts";
import { PackWriter } from "./pack_writer.ts";
import type { EncodedBlock, EncodedWalFile } from "./worker_jobs.ts";
import type { WalPushSession } from "./wal_push_session.ts";
import { readErrorCode, readWholeFile, unreadableWal } from "./wal_file_read.ts";
import { crashPoint } from "./crash_point.ts";
import type { EventSink } from "./backup/events.ts";
import { beforeCommit, type CancelOptions, checkpoint, throwIfCancelled } from "./cancel.ts";
import { type ChunkerParams, splitAll } from "../formats/chunker.ts";
import {
  type Codec,
  type CompressionOptions,
  encodeBlock,
  encodeBlockAsync,
  type Encoded,
} from "../formats/codec.ts";
import { equalBytes, Sha256, sha256, toHex } from "../formats/hash.ts";
import { BlobKind } from "../formats/pack.ts";
import { KeyedHasher } from "../formats/master_key.ts";
import {
  controlFileSystemId,
  decodeWalBody,
  encodeWalBody,
  encodeWalRecord,
  formatLsn,
  isSystemId,
  openWalRecordFile,
  parseSegmentHeader,
  parseWalName,
  segmentStartLsn,
  WAL_RECORD_SEALED,
  type WalName,
  type WalRecord,
  walRecordEnvelope,
} from "../formats/wal.ts";
import { FORMAT_VERSION, TOOL_VERSION } from "../formats/version.ts";

/** How long a push or fetch waits for a running vacuum by default: 60 s. */
export { DEFAULT_WAL_LOCK_WAIT_MS } from "./lock.ts";
import { DEFAULT_WAL_LOCK_WAIT_MS } from "./lock.ts";

/** The same WAL file name was archived with other content; nothing was overwritten. */
export class WalConflict extends BendsaveError {
  override readonly code = "wal_conflict";
}

/** The archive holds no WAL file of that name. */
export class WalNotArchived extends NotFound {}

/**
 * A WAL file of at most this many bytes (PostgreSQL's default 16 MiB
 * segment) is stored as one block: its id is then the file's SHA-256, so
 * a push hashes the file once. Larger ones are cut by the repository's
 * chunker (FORMAT.md, section 20.2).
 */
export const WAL_WHOLE_BLOCK = 16 * 1024 * 1024;

/** The lengths of the blocks the WAL file `data` is stored in. */
export function walBlockLengths(chunker: ChunkerParams, data: Uint8Array): number[] {
  if (data.length > WAL_WHOLE_BLOCK) return splitAll(chunker, data);
  return data.length === 0 ? [] : [data.length];
}

/**
 * The compression of WAL blocks: the repository's, with zstd at level 3 at
 * least. WAL compresses better at level 3 than at level 1 (recycled
 * segments of a pgbench database: 7.2 against 8.9 MB for 101 MB; the
 * benchmark's repository of two base backups and the WAL of three pgbench
 * runs: 158.6 against 172.4 MB), where the pages of a base backup do not
 * (23.0 against 22.2 MB in 1 MiB blocks); the WAL of `pgbench -i` gained
 * nothing (4.85 against 4.87 MB).
 */
export function walCompression(c: CompressionOptions): CompressionOptions {
  return c.codec === "zstd" && c.level < 3 ? { ...c, level: 3 } : c;
}

/** Where the system identifier comes from: given, or `global/pg_control` of a data directory. */
export interface SystemIdOptions {
  /** The database system identifier, in decimal (overrides pg_control). */
  readonly systemId?: string;
  /** The data directory whose `global/pg_control` names the system (default: the working directory). */
  readonly pgData?: string;
}

/**
 * Options of {@linkcode pushWal}. A `signal` that aborts stops the push
 * before its record is written (the commit point): nothing is archived.
 */
export interface PushWalOptions extends SystemIdOptions, CancelOptions {
  /**
   * Where to get an encrypted repository's passphrase (default: the one the
   * CLI set, store/passphrase_source.ts).
   */
  readonly passphrase?: PassphraseSource;
  /** The name to archive under (default: the file's base name, as `%f`). */
  readonly name?: string;
  /** How long to wait for a vacuum's exclusive lock (default 60 s). */
  readonly lockWaitMs?: number;
  /**
   * Compress on the runtime's thread pool (the background pusher, which
   * runs pushes side by side: one thread hashes while others compress).
   */
  readonly compressInBackground?: boolean;
  /**
   * Reads, hashes and compresses a WAL segment of one block elsewhere (the
   * background pusher: on a worker thread, `wal.encode` of
   * store/worker_jobs.ts), so that its bytes are read there and never
   * reach this thread; this thread checks the header in `head`.
   */
  readonly encodeFile?: (input: {
    readonly file: string;
    readonly maxWhole: number;
    readonly headBytes: number;
    readonly compression: CompressionOptions;
    readonly masterKey?: Uint8Array;
  }) => Promise<EncodedWalFile>;
  /**
   * The background pusher's pass (store/wal_push_session.ts): its
   * repository, lock and index instead of the push's own, and its group
   * commit of packs and index file.
   */
  readonly session?: WalPushSession;
  readonly now?: () => number;
  readonly onEvent?: EventSink;
}

/** What a push did. */
export interface PushWalResult {
  readonly name: string;
  readonly systemId: string;
  /** `archived`: this push wrote the record; `already-archived`: the same content was there. */
  readonly status: "archived" | "already-archived";
  readonly size: number;
  /**
   * SHA-256 of the file's content, hex: the record's id in an unencrypted
   * repository (in an encrypted one the record holds the keyed id instead).
   */
  readonly sha256: string;
  readonly blocks: number;
  /** Blocks this push stored (the others were in the repository already). */
  readonly newBlocks: number;
  /** Bytes of pack files written. */
  readonly packBytes: number;
  readonly durationMs: number;
}

/**
 * Options of {@linkcode fetchWal}. A `signal` that aborts stops the fetch
 * before the rename: its temporary file is removed, the destination untouched.
 */
export interface FetchWalOptions extends SystemIdOptions, CancelOptions {
  /**
   * Where to get an encrypted repository's passphrase (default: the one the
   * CLI set, store/passphrase_source.ts).
   */
  readonly passphrase?: PassphraseSource;
  /** How long to wait for a vacuum's exclusive lock (default 60 s). */
  readonly lockWaitMs?: number;
  readonly onEvent?: EventSink;
}

/** What a fetch wrote. */
export interface FetchWalResult {
  readonly name: string;
  readonly systemId: string;
  readonly size: number;
  /**
   * SHA-256 of the content, hex (the record's id in an unencrypted
   * repository; in an encrypted one the keyed id was checked).
   */
  readonly sha256: string;
  readonly path: string;
}

/** The handle of a WAL record. */
export function walHandle(systemId: string, name: string): Handle {
  return { kind: "wal", name: `${systemId}/${name}` };
}

/**
 * The system identifier for a push or fetch: `systemId` when given, else
 * the first field of `<pgData or cwd>/global/pg_control`, else null when
 * there is no pg_control (and `pgData` was not given).
 */
export function resolveSystemId(options: SystemIdOptions): string | null {
  if (options.systemId !== undefined) {
    if (!isSystemId(options.systemId)) {
      throw new InvalidInput(
        `system identifier "${options.systemId}" is not a decimal number from 1 to 2^64-1: give it as PostgreSQL prints it (pg_controldata, "Database system identifier")`,
      );
    }
    return options.systemId;
  }
  const file = path.join(options.pgData ?? ".", "global", "pg_control");
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if ((code === "ENOENT" || code === "ENOTDIR") && options.pgData === undefined) return null;
    throw new InvalidInput(
      `cannot read "${path.resolve(file)}" (${
        code ?? (e as Error).message
      }): give the data directory with --pg-data, or the system identifier with --system-id`,
    );
  }
  try {
    return controlFileSystemId(bytes);
  } catch (e) {
    throw new InvalidInput(
      `"${path.resolve(file)}" is not a pg_control file (${(e as Error).message})`,
    );
  }
}

function openOptions(options: { passphrase?: PassphraseSource }): OpenOptions {
  return options.passphrase ? { passphrase: options.passphrase } : {};
}

/** The checks of a WAL file's content: its system identifier, segment size and start LSN. */
function inspect(
  name: WalName,
  head: Uint8Array,
  size: number,
  given: string | null,
): { systemId: string; startLsn: bigint; segmentSize: number } {
  if (name.type === "segment" || name.type === "partial") {
    let header;
    try {
      header = parseSegmentHeader(head);
    } catch (e) {
      throw new InvalidInput(
        `"${name.name}" is not a WAL segment (${
          (e as Error).message
        }): PostgreSQL keeps it and retries; check that archive_command passes %p`,
      );
    }
    if (given !== null && header.systemId !== given) {
      throw new InvalidInput(
        `WAL segment "${name.name}" belongs to database system ${header.systemId}, not ${given} (pg_control or --system-id): archive each cluster's WAL from its own data directory`,
      );
    }
    try {
      segmentStartLsn(name, header.segmentSize); // checks the segment size and number
    } catch (e) {
      throw new InvalidInput(`WAL segment "${name.name}" is damaged (${(e as Error).message})`);
    }
    if (size !== header.segmentSize) {
      throw new InvalidInput(
        `"${name.name}" is a segment of the wrong size: ${size} bytes, its header says ${header.segmentSize}; it is truncated or not a finished segment, so it is not archived`,
      );
    }
    const startLsn = segmentStartLsn(name, header.segmentSize);
    if (header.pageAddress !== startLsn) {
      throw new InvalidInput(
        `WAL segment "${name.name}" starts at LSN ${formatLsn(header.pageAddress)}, not ${
          formatLsn(startLsn)
        } as its name says: it is not that segment`,
      );
    }
    return { systemId: header.systemId, startLsn, segmentSize: header.segmentSize };
  }
  if (given === null) {
    throw new InvalidInput(
      `cannot tell which database system "${name.name}" belongs to (no global/pg_control in the working directory): run it in the data directory, or give --pg-data or --system-id`,
    );
  }
  let startLsn = 0n;
  if (name.type === "backup") {
    const m = /START WAL LOCATION: ([0-9A-F]{1,8})\/([0-9A-F]{1,8})/.exec(
      new TextDecoder().decode(head.subarray(0, HEAD_BYTES)),
    );
    if (m) startLsn = (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
  }
  return { systemId: given, startLsn, segmentSize: 0 };
}

/** Bytes of a WAL file's start {@linkcode inspect} looks at (the segment header, a backup label's line). */
const HEAD_BYTES = 4096;

/** A WAL file as read for a push: its bytes here, or its one block encoded elsewhere. */
type ReadForPush =
  | {
    readonly data: Uint8Array;
    readonly encoded: null;
    readonly head: Uint8Array;
    readonly size: number;
  }
  | {
    readonly data: null;
    readonly encoded: EncodedBlock;
    readonly head: Uint8Array;
    readonly size: number;
  };

/**
 * Reads `file` for a push: a segment through `options.encodeFile` when it
 * is given (read, hashed and compressed there; a file larger than one block
 * comes back unread and is read here), anything else on this thread.
 */
async function readForPush(
  file: string,
  name: WalName,
  repo: Repository,
  compression: CompressionOptions,
  options: PushWalOptions,
): Promise<ReadForPush> {
  if (options.encodeFile && (name.type === "segment" || name.type === "partial")) {
    const key = repo.crypto?.key.raw;
    const r = await options.encodeFile({
      file,
      maxWhole: WAL_WHOLE_BLOCK,
      headBytes: HEAD_BYTES,
      compression,
      ...(key ? { masterKey: key } : {}),
    });
    if (r.kind === "unreadable") throw unreadableWal(file, r.code);
    if (r.kind === "block") return { data: null, encoded: r.block, head: r.head, size: r.size };
  }
  let data: Uint8Array;
  try {
    data = readWholeFile(file);
  } catch (e) {
    throw unreadableWal(file, readErrorCode(e));
  }
  return { data, encoded: null, head: data.subarray(0, HEAD_BYTES), size: data.length };
}

function walName(name: string): WalName {
  const parsed = parseWalName(name);
  if (!parsed) {
    throw new InvalidInput(
      `"${name}" is not a WAL file name (24 hex digits, <timeline>.history, <segment>.<offset>.backup or <segment>.partial): pass %p (and %f) as PostgreSQL gives them`,
    );
  }
  return parsed;
}

/**
 * The stored bytes of record `h` holding `r`: the envelope version 1 around
 * the `WalFile` message, or in an encrypted repository version 2 around the
 * message sealed under the role `bendsave wal` + `h.name` (FORMAT.md 21.11).
 */
async function recordBytes(repo: Repository, h: Handle, r: WalRecord): Promise<Uint8Array> {
  if (!repo.encrypted) return encodeWalRecord(r);
  repo.requireKey();
  return walRecordEnvelope(WAL_RECORD_SEALED, await repo.crypto!.sealWal(h.name, encodeWalBody(r)));
}

/**
 * Checks and decodes the bytes of record `h`: its envelope, the version of
 * the repository's records (2, sealed, in an encrypted repository; 1
 * otherwise), the sealed body authenticated under its name; a damaged one
 * is an IntegrityError naming it. An encrypted repository opened without
 * its key: PassphraseError.
 */
async function parseRecord(repo: Repository, h: Handle, bytes: Uint8Array): Promise<WalRecord> {
  repo.requireKey();
  try {
    const env = openWalRecordFile(bytes);
    const want = repo.encrypted ? WAL_RECORD_SEALED : FORMAT_VERSION;
    if (env.version !== want) {
      throw new SyntaxError(
        `its envelope says version ${env.version}, this repository's records are version ${want}`,
      );
    }
    return decodeWalBody(repo.crypto ? await repo.crypto.openWal(h.name, env.body) : env.body);
  } catch (e) {
    throw new IntegrityError(
      `WAL record ${h.name} in ${repo.store.location} is damaged (${
        (e as Error).message
      }): run bendsave verify`,
    );
  }
}

/** Reads and checks a record (see {@linkcode parseRecord}). */
async function loadRecord(repo: Repository, h: Handle): Promise<WalRecord> {
  return await parseRecord(repo, h, await repo.store.load(h));
}

/** Whether `store` holds `h` (a stat; NotFound is "no"). */
async function storeHas(store: BlobStore, h: Handle): Promise<boolean> {
  try {
    await store.stat(h);
    return true;
  } catch (e) {
    if (e instanceof NotFound) return false;
    throw e;
  }
}

async function loadRecordOrNull(repo: Repository, h: Handle): Promise<WalRecord | null> {
  try {
    return await loadRecord(repo, h);
  } catch (e) {
    if (e instanceof NotFound) return null;
    throw e;
  }
}

/**
 * Same name archived: the same content is fine, other content a conflict.
 * `id` is the file's id as records hold it (keyed in an encrypted repository).
 */
function compareExisting(
  repo: Repository,
  existing: WalRecord,
  size: number,
  id: Uint8Array,
): void {
  if (existing.size === size && equalBytes(existing.sha256, id)) return;
  throw new WalConflict(
    `WAL file ${existing.name} of system ${existing.systemId} is already archived with other content (${existing.size} bytes, ${
      repo.encrypted ? "keyed id" : "SHA-256"
    } ${toHex(existing.sha256).slice(0, 16)}..., not ${size} bytes, ${
      toHex(id).slice(0, 16)
    }...): nothing was overwritten; check that only one cluster archives into this repository`,
  );
}

export async function acquireWalLock(
  store: BlobStore,
  operation: string,
  options: { lockWaitMs?: number; onEvent?: EventSink } & CancelOptions,
): Promise<RepositoryLock | null> {
  if (!store.capabilities.writable) return null; // read-only (staged): no locks
  const emit = options.onEvent ?? (() => {});
  return await RepositoryLock.acquire(store, "shared", {
    operation,
    onStale: reportStale(emit),
    waitMs: options.lockWaitMs ?? DEFAULT_WAL_LOCK_WAIT_MS,
    signal: options.signal,
    onWait: (message) => emit({ type: "warning", message }),
  });
}

/**
 * Archives one WAL file (`archive_command = 'bendsave wal-push %p --to REPO'`).
 * Resolves once the record is durable; throws {@linkcode WalConflict} when
 * the name is archived with other content, and `InvalidInput` for a file
 * that is not a WAL file of this system (a segment of the wrong size, of
 * another system identifier).
 *
 * @example
 * ```ts ignore
 * import { openStore, pushWal } from "../mod.ts";
 * const store = await openStore("/backups/pg");
 * await pushWal(store, "pg_wal/000000010000000000000003", { pgData: "/var/lib/postgresql/15/main" });
 * ```
 */
export async function pushWal(
  store: BlobStore,
  file: string,
  options: PushWalOptions = {},
): Promise<PushWalResult> {
  const started = Date.now();
  const now = options.now ?? Date.now;
  const name = walName(options.name ?? path.basename(file));
  throwIfCancelled(options.signal, "wal-push");
  if (!store.capabilities.writable) {
    throw new InvalidInput(
      `${store.location} is a read-only (${store.capabilities.name}) repository: archive WAL into a local path or s3:// repository`,
    );
  }
  const session = options.session ?? null;
  // An encrypted repository needs its key: records and blocks are sealed, ids keyed.
  const repo = session ? session.repo : await Repository.open(store, openOptions(options));
  const compression = walCompression(repo.config.compression);
  const { data, encoded, head, size } = await readForPush(file, name, repo, compression, options);
  const { systemId, startLsn, segmentSize } = inspect(name, head, size, resolveSystemId(options));
  const h = walHandle(systemId, name.name);
  let newBlocks = 0;
  let storedBytes = 0;
  const result = (
    status: PushWalResult["status"],
    blocks: number,
    plain: Uint8Array,
    writer?: PackWriter,
  ) => ({
    name: name.name,
    systemId,
    status,
    size,
    sha256: toHex(plain),
    blocks,
    newBlocks,
    // A session's writer packs several pushes' blocks: their stored bytes then.
    packBytes: session ? storedBytes : writer?.stats.packBytes ?? 0,
    durationMs: Date.now() - started,
  });
  // Records are never rewritten: an existing one answers without a lock, the
  // index or any block work (one hash of the file, to compare; two when encrypted).
  const existing = await loadRecordOrNull(repo, h);
  if (existing) {
    const plain = encoded ? encoded.sha256 : sha256(data!);
    const id = encoded ? encoded.id : repo.crypto ? repo.blockId(data!) : plain;
    compareExisting(repo, existing, size, id);
    return result("already-archived", existing.blocks.length, plain);
  }
  // A session holds the lock and an index up to date for all its pushes.
  const lock = session ? null : await acquireWalLock(store, "wal-push", options);
  try {
    if (!session) await repo.loadIndex(skippedIndexWarning(options.onEvent));
    const writer = session ? session.writer : new PackWriter(store, repo.index, {
      targetSize: repo.config.packSize,
      crypto: repo.crypto,
    });
    const add = async (id: Uint8Array, block: Parameters<PackWriter["add"]>[2]) => {
      if (await writer.add(id, BlobKind.data, block)) {
        newBlocks++;
        storedBytes += block.data.length;
      }
    };
    const blocks: Uint8Array[] = [];
    // One pass over the file: each block feeds the file's id as it is cut (a file of one
    // block: its id is the block's). The plain SHA-256 (the result's) is the id without a key.
    const lengths = data ? walBlockLengths(repo.config.chunker, data) : [];
    const whole = encoded || lengths.length === 1
      ? null
      : repo.crypto
      ? new KeyedHasher(repo.crypto.key.idKey)
      : new Sha256();
    const plainWhole = repo.crypto && !encoded && lengths.length !== 1 ? new Sha256() : null;
    let plain: Uint8Array | null = null;
    let offset = 0;
    if (encoded) {
      // The whole file is the block, read, hashed, compressed (and sealed) off this thread.
      blocks.push(encoded.id);
      plain = encoded.sha256;
      await add(encoded.id, {
        codec: encoded.codec as Codec,
        data: encoded.data,
        rawLength: size,
        sealed: encoded.sealed,
      });
      offset = size;
    }
    // With compressInBackground, zstd runs on the thread pool while this
    // thread hashes the next block (or another push's): added in file order.
    const pending: { id: Uint8Array; rawLength: number; encoded: Promise<Encoded> }[] = [];
    const queued = new Set<string>();
    for (const length of lengths) {
      const raw = data!.subarray(offset, offset + length);
      offset += length;
      whole?.update(raw);
      plainWhole?.update(raw);
      const id = repo.blockId(raw);
      if (lengths.length === 1) plain = repo.crypto ? sha256(raw) : id;
      blocks.push(id);
      await checkpoint(options.signal, "wal-push");
      if (writer.has(id)) continue;
      if (options.compressInBackground) {
        const hex = toHex(id);
        if (queued.has(hex)) continue;
        queued.add(hex);
        pending.push({
          id,
          rawLength: raw.length,
          encoded: encodeBlockAsync(raw, compression),
        });
        continue;
      }
      await add(id, { ...encodeBlock(raw, compression), rawLength: raw.length });
    }
    for (const p of pending) await add(p.id, { ...(await p.encoded), rawLength: p.rawLength });
    if (offset !== size) {
      throw new Error(`the chunker cut ${offset} of ${size} bytes of ${name.name}`);
    }
    const id = whole ? whole.digest() : blocks[0]!;
    plain ??= plainWhole ? plainWhole.digest() : id;
    if (session) await session.commit();
    else await writer.writeIndex();
    await beforeCommit(options.signal, "wal-push");
    const record = await recordBytes(repo, h, {
      name: name.name,
      systemId,
      size,
      sha256: id,
      blocks,
      pushTimeMs: now(),
      timeline: name.timeline,
      startLsn,
      segmentSize,
      toolVersion: TOOL_VERSION,
      host: hostname(),
    });
    try {
      await store.save(h, record, { exclusive: true });
    } catch (e) {
      if (!(e instanceof AlreadyExists)) throw e;
      // Another push of the same name won the race: same content is success.
      compareExisting(repo, await loadRecord(repo, h), size, id);
      return result("already-archived", blocks.length, plain, writer);
    }
    crashPoint("wal-record");
    return result("archived", blocks.length, plain, writer);
  } finally {
    await lock?.release().catch(() => {});
  }
}

/** The system identifier of a fetch: given, from pg_control, or the archive's only one. */
/** The warning of a damaged index file a push skips (its blocks are stored again). */
export function skippedIndexWarning(
  emit: EventSink | undefined,
): (name: string, error: IntegrityError) => void {
  return (name, e) =>
    (emit ?? (() => {}))({
      type: "warning",
      message: `${e.message} (skipped: its blocks are stored again)`,
      path: name,
    });
}

async function fetchSystemId(store: BlobStore, options: SystemIdOptions): Promise<string> {
  const given = resolveSystemId(options);
  if (given !== null) return given;
  const ids = await archivedSystems(store);
  if (ids.length === 1) return ids[0]!;
  throw new InvalidInput(
    ids.length === 0
      ? `the WAL archive in ${store.location} is empty and there is no global/pg_control here: give --system-id`
      : `the WAL archive in ${store.location} holds several database systems (${
        ids.join(", ")
      }) and there is no global/pg_control here: give --system-id or --pg-data`,
  );
}

/** The system identifiers the archive holds WAL of, sorted. */
export async function archivedSystems(store: BlobStore): Promise<string[]> {
  const ids = new Set<string>();
  for await (const f of store.list("wal")) ids.add(f.name.slice(0, f.name.indexOf("/")));
  return [...ids].sort();
}

/**
 * Restores one archived WAL file to `dest`
 * (`restore_command = 'bendsave wal-fetch %f %p --from REPO'`). Throws
 * {@linkcode WalNotArchived} when the archive does not hold it, and
 * IntegrityError when a block or the whole file does not match its hash;
 * in every failure `dest` is left as it was.
 */
export async function fetchWal(
  store: BlobStore,
  name: string,
  dest: string,
  options: FetchWalOptions = {},
): Promise<FetchWalResult> {
  const parsed = walName(name);
  throwIfCancelled(options.signal, "wal-fetch");
  const notArchived = () =>
    new WalNotArchived(`WAL file ${parsed.name} of system ${systemId} is not in the archive`);
  // The repository's config is checked first (a wrong path must never read as "not archived"),
  // without the key: records are named in the clear, so a file the archive does not hold (the
  // timeline history files recovery probes for at every start) is answered before an encrypted
  // repository's key derivation, about 0.2 s.
  const unkeyed = await Repository.open(store, {
    keyOptional: true,
    passphrase: () => Promise.resolve(null),
  });
  const systemId = await fetchSystemId(store, options);
  const h = walHandle(systemId, parsed.name);
  if (unkeyed.encrypted && !(await storeHas(store, h))) throw notArchived();
  // An encrypted repository needs its key: records and blocks are sealed, ids keyed.
  const repo = unkeyed.encrypted ? await Repository.open(store, openOptions(options)) : unkeyed;
  const record = await loadRecordOrNull(repo, h);
  if (!record) throw notArchived();
  if (record.name !== parsed.name || record.systemId !== systemId) {
    throw new IntegrityError(
      `WAL record ${h.name} names ${record.systemId}/${record.name} (damaged or misplaced): run bendsave verify`,
    );
  }
  const lock = await acquireWalLock(store, "wal-fetch", options);
  const dir = path.dirname(path.resolve(dest));
  const temp = tempBeside(dir);
  let fd: number | null = null;
  try {
    await repo.loadIndex(() => {}); // a damaged index file only matters if a block is missing
    fd = fs.openSync(temp, "wx", 0o600);
    // The record's id of the file (keyed in an encrypted repository), and its plain SHA-256.
    const hash = repo.crypto ? new KeyedHasher(repo.crypto.key.idKey) : new Sha256();
    const plainHash = repo.crypto ? new Sha256() : null;
    let size = 0;
    for (const id of record.blocks) {
      await checkpoint(options.signal, "wal-fetch");
      const raw = await repo.readBlob(id, `WAL file ${h.name}`);
      hash.update(raw);
      plainHash?.update(raw);
      size += raw.length;
      for (let pos = 0; pos < raw.length;) pos += fs.writeSync(fd, raw, pos);
    }
    const digest = hash.digest();
    const plain = plainHash ? plainHash.digest() : digest;
    if (size !== record.size || !equalBytes(digest, record.sha256)) {
      throw new IntegrityError(
        `WAL file ${h.name} does not match its recorded size and SHA-256 (damaged): nothing was written to "${dest}"`,
      );
    }
    fs.fsyncSync(fd);
    await beforeCommit(options.signal, "wal-fetch");
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(temp, dest);
    syncDirectory(dir);
    return { name: parsed.name, systemId, size, sha256: toHex(plain), path: dest };
  } catch (e) {
    if (fd !== null) fs.closeSync(fd);
    try {
      fs.unlinkSync(temp);
    } catch {
      // never created, or already renamed
    }
    if (e instanceof BendsaveError) throw e;
    const code = (e as { code?: string }).code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
      throw new InvalidInput(`cannot write WAL file "${dest}" (${code})`, { cause: e });
    }
    throw e;
  } finally {
    await lock?.release().catch(() => {});
  }
}

/** Options of {@linkcode listWal}. */
export interface ListWalOptions {
  /** Only this system's records (default: every system's). */
  readonly systemId?: string;
  /** Called for a damaged record instead of throwing IntegrityError. */
  readonly onDamaged?: (name: string, error: IntegrityError) => void;
}

/**
 * Every WAL record of the archive of `repo` (or of one system), sorted by
 * system identifier and name, read without reading any block. An encrypted
 * repository's records are sealed: `repo` must be opened with its key
 * (PassphraseError otherwise).
 */
export async function listWal(
  repo: Repository,
  options: ListWalOptions = {},
): Promise<WalRecord[]> {
  repo.requireKey();
  const store = repo.store;
  const names: string[] = [];
  for await (const f of store.list("wal")) {
    if (options.systemId === undefined || f.name.startsWith(`${options.systemId}/`)) {
      names.push(f.name);
    }
  }
  names.sort();
  const records: WalRecord[] = [];
  for (const name of names) {
    try {
      records.push(await loadRecord(repo, { kind: "wal", name }));
    } catch (e) {
      if (e instanceof NotFound) continue; // removed meanwhile
      if (!(e instanceof IntegrityError) || !options.onDamaged) throw e;
      options.onDamaged(name, e);
    }
  }
  return records;
}

/** True when the archive holds a record of WAL file `name` of system `systemId`. */
export async function walArchived(
  store: BlobStore,
  systemId: string,
  name: string,
): Promise<boolean> {
  try {
    await store.stat(walHandle(systemId, walName(name).name));
    return true;
  } catch (e) {
    if (e instanceof NotFound) return false;
    throw e;
  }
}

/**
 * The blocks of every WAL record, each with what needs it (`WAL file
 * <system id>/<name>`), for vacuum's live set. A damaged record throws
 * IntegrityError: its blocks cannot be known, so nothing may be deleted.
 */
export async function walLiveBlocks(
  repo: Repository,
): Promise<{ id: Uint8Array; what: string }[]> {
  const out: { id: Uint8Array; what: string }[] = [];
  for (const r of await listWal(repo)) {
    for (const id of r.blocks) out.push({ id, what: `WAL file ${r.systemId}/${r.name}` });
  }
  return out;
}
