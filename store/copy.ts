/**
 * The copy operation: replicates backups from one repository to another,
 * storing only the blocks the destination lacks (local disk to S3, or S3 to
 * a local disk that goes to tape).
 *
 * Two modes, chosen from the two ends:
 *
 * - **Verbatim** when both ends are unencrypted, or both are encrypted with
 *   the same master key (a destination this copy creates from an encrypted
 *   source gets the source's key, unless `encrypt` asks for a new one).
 *   Manifests are copied byte for byte, so their ids (the SHA-256 of the
 *   file) and the `parent_id` pointers of their children stay the same.
 *   Blocks are copied as stored (same codec, same raw length: no
 *   recompression; sealed blocks keep their sealed bytes).
 * - **Re-encoded** when the keys differ (an unencrypted end counts as "no
 *   key"): block ids are keyed MACs of the plaintext (FORMAT.md section
 *   21.3), so every block gets the id the destination gives its plaintext
 *   and is sealed anew (or stored unsealed) with its compressed bytes
 *   unchanged; trees are re-encoded with the new ids (so they get new ids),
 *   and each manifest is re-encoded with its new roots and its parent's
 *   destination id, and sealed under the destination's key. Cut points are
 *   the source's: nothing is chunked again. This is how an unencrypted
 *   repository is encrypted (copy into a new encrypted repository) and how a
 *   master key is rotated (copy into a new repository with a new key).
 *
 * Either way each block is checked against its id before it is copied (in
 * an encrypted source it must authenticate first), so damage is never
 * replicated.
 *
 * Write order per manifest, oldest first (FORMAT.md, "Write order and crash
 * safety"): the packs of the blocks the destination lacks, then one index
 * file listing them, then the manifest with an exclusive create (the commit
 * point). An interrupted copy therefore leaves complete manifests and at
 * worst packs no index lists; a re-run copies only what is still missing.
 * Verbatim packing is deterministic, so a re-run usually rewrites those very
 * packs under the same names; re-sealed packs get new names (fresh nonces)
 * and the next vacuum removes the orphans.
 *
 * Memory: besides the source's index (in memory for every operation), a
 * re-encoding copy keeps the new id of every source block it copied in this
 * run, 33 bytes a block ({@linkcode IdRemap}: at most 33 bytes times the
 * blocks of the source index), so a block shared by many backups or files
 * is read once. Trees are read twice per copied manifest (once to find the
 * data blocks, once to re-encode them), never held whole.
 *
 * @module
 */
import type { BlobStore } from "./drivers/types.ts";
import {
  AlreadyExists,
  IntegrityError,
  InvalidInput,
  NotFound,
  PassphraseError,
  RepositoryNotFound,
  UnsupportedFormat,
} from "./errors.ts";
import { type InitOptions, type ManifestRecord, Repository } from "./repository.ts";
import { type BlobLocation, BlockIndex } from "./block_index.ts";
import { RepositoryLock, type StaleLock } from "./lock.ts";
import { PackWriter } from "./pack_writer.ts";
import { crashPoint } from "./crash_point.ts";
import { walkTree } from "./walker.ts";
import { IdRemap } from "./id_remap.ts";
import { type PassphraseSource, passphraseSource } from "./passphrase_source.ts";
import type { EventSink, OperationEvent, ProgressEvent } from "./backup/events.ts";
import { type CancelOptions, checkpoint, throwIfCancelled } from "./cancel.ts";
import { Cancelled } from "./errors.ts";
import { equalBytes, ID_LENGTH, sha256, toHex } from "../formats/hash.ts";
import { encodeBlock } from "../formats/codec.ts";
import {
  compareManifestNames,
  encodeManifest,
  isManifestName,
  type Manifest,
} from "../formats/manifest.ts";
import { BlobKind } from "../formats/pack.ts";
import { encodeTree, NodeType, type TreeNode } from "../formats/tree.ts";
import {
  ENCRYPTED_FORMAT_MINOR,
  ENCRYPTED_FORMAT_VERSION,
  FORMAT_MINOR,
  FORMAT_VERSION,
} from "../formats/version.ts";

/**
 * Progress of a copy (the common {@linkcode ProgressEvent}, phase `write`),
 * reported at most every 200 ms and after each manifest: `files` counts the
 * backups done (copied or skipped) of `totalFiles` selected, `bytes` the
 * stored bytes of the blocks copied; `manifest`, `blocks` and
 * `blocksPresent` say which backup, how many blocks were copied and how many
 * the destination already held.
 */
export type CopyProgressEvent = ProgressEvent;

/** An event of a copy: the common vocabulary. */
export type CopyEvent = OperationEvent;

/** Receives the events of a copy. */
export type CopyEventSink = EventSink;

/** Options of {@linkcode copy}. */
export interface CopyOptions extends CancelOptions {
  /**
   * Manifests to copy, as `bendsave list` shows them, with or without
   * `.manifest` (default: all). Their order does not matter: they are
   * copied oldest first.
   */
  readonly manifests?: readonly string[];
  readonly onEvent?: CopyEventSink;
  /**
   * Settings of a destination created by this copy; unset fields take the
   * source's (chunker, compression, pack size, KDF cost). An existing
   * destination is used as it is. `passphrase` is the first key slot's of
   * a destination created encrypted (default: from `toPassphrase`); it does
   * not by itself make the destination encrypted.
   */
  readonly init?: InitOptions;
  /** Wait up to this long for a conflicting (vacuum) lock at either end (default 0: fail at once). */
  readonly lockWaitMs?: number;
  /** The passphrase of an encrypted source (default: the one the CLI set). */
  readonly passphrase?: PassphraseSource;
  /**
   * The passphrase of an encrypted destination: the one that opens it, or
   * the first key slot's of one this copy creates (default: the source's).
   */
  readonly toPassphrase?: PassphraseSource;
  /**
   * Create the destination encrypted under a new master key: the way to
   * encrypt an unencrypted repository's backups, or to rotate a master key.
   * An existing unencrypted destination is refused; an existing encrypted
   * one is used as it is.
   */
  readonly encrypt?: boolean;
  /**
   * Let the backups of an encrypted source into an unencrypted destination
   * (created unencrypted when there is none), where they are stored in
   * plaintext. Without it such a copy is refused before anything is written.
   */
  readonly decrypt?: boolean;
}

/** What happened to one manifest. */
export interface CopiedManifest {
  readonly name: string;
  /** SHA-256 of the manifest file in the destination, hex (the source's too when verbatim). */
  readonly id: string;
  /** SHA-256 of the manifest file in the source, hex. */
  readonly sourceId: string;
  /** `skipped`: the destination already held this backup. */
  readonly action: "copied" | "skipped";
  /** Blocks copied for this manifest. */
  readonly blocks: number;
  /** Stored bytes of those blocks. */
  readonly bytes: number;
}

/** What a copy did. */
export interface CopyResult {
  /** True when the destination repository was created by this copy. */
  readonly created: boolean;
  /**
   * `verbatim`: blocks and manifests copied as stored (both ends
   * unencrypted, or encrypted with the same master key); `reencoded`:
   * blocks under the destination's ids, trees and manifests encoded anew.
   */
  readonly mode: "verbatim" | "reencoded";
  /** True when the destination is encrypted. */
  readonly encrypted: boolean;
  /**
   * The master key of an encrypted destination this copy created: the
   * source's, or a new one; null when it created none or an unencrypted one.
   */
  readonly masterKey: "source" | "new" | null;
  /** Every selected manifest, oldest first. */
  readonly manifests: CopiedManifest[];
  readonly manifestsCopied: number;
  readonly manifestsSkipped: number;
  readonly blocksCopied: number;
  /** Stored (compressed, sealed in an encrypted destination) bytes of the copied blocks. */
  readonly bytesCopied: number;
  /** Blocks the copied manifests need that the destination already held. */
  readonly blocksPresent: number;
  readonly packsWritten: number;
  /** Bytes of the pack files written (blocks plus headers and trailers). */
  readonly packBytes: number;
  readonly indexFiles: number;
  readonly durationMs: number;
}

/** A block waiting to be copied. */
interface Needed {
  readonly id: Uint8Array;
  readonly loc: BlobLocation;
  /** What needs it, for error messages. */
  readonly what: string;
}

/** A selected source manifest. */
interface Selected {
  readonly record: ManifestRecord;
  readonly bytes: Uint8Array;
  skip: boolean;
  /** The id of the destination's manifest when it is skipped. */
  destId: Uint8Array | null;
}

/** Blocks queued before their packs are read (bounds the memory of the queue). */
const BATCH_BLOCKS = 50_000;
/** Ranges of a pack closer than this are read as one. */
const READ_GAP = 1024 * 1024;
/** A coalesced range read stops growing at this size. */
const READ_MAX = 16 * 1024 * 1024;
/** A pack of at most this size is read whole when more than half of it is needed. */
const WHOLE_PACK_MAX = 64 * 1024 * 1024;
const PROGRESS_MS = 200;
const NO_ID = new Uint8Array(0);

/** `name`, `name.manifest` or `<repo>/manifests/name.manifest` as a manifest file name. */
function manifestFileName(name: string): string {
  const base = name.replace(/^.*\//, "");
  const file = base.endsWith(".manifest") ? base : `${base}.manifest`;
  if (!isManifestName(file)) {
    throw new InvalidInput(
      `"${name}" is not a manifest name: use a name as bendsave list shows it, such as 20260101_120000`,
    );
  }
  return file;
}

/** Loads the selected source manifests (verbatim bytes, checked), oldest first. */
async function selectManifests(
  src: Repository,
  wanted: readonly string[] | undefined,
): Promise<Selected[]> {
  const all = await src.manifestNames();
  const names = wanted?.length ? [...new Set(wanted.map(manifestFileName))] : all;
  names.sort(compareManifestNames);
  const out: Selected[] = [];
  for (const name of names) {
    const bytes = await src.loadManifestBytes(name);
    let record: ManifestRecord;
    try {
      record = await src.parseManifest(name, bytes);
    } catch (e) {
      if (!(e instanceof IntegrityError)) throw e;
      throw new IntegrityError(
        `source ${src.store.location}: ${
          e.message.replace(/: [^:]*$/, "")
        }, so nothing was copied: repair it from another copy of the repository, or leave it out by naming the other backups with --manifest`,
        { cause: e },
      );
    }
    out.push({ record, bytes, skip: false, destId: null });
  }
  return out;
}

function conflict(name: string, location: string, dst: Uint8Array, src: Uint8Array): AlreadyExists {
  return new AlreadyExists(
    `manifest ${name} already exists in ${location} with different content (destination id ${
      toHex(dst)
    }, source id ${
      toHex(src)
    }), so it was not overwritten: copy into another repository, or leave this backup out by naming the other backups with --manifest`,
  );
}

/**
 * The part of a manifest that says which backup it is: everything but its
 * format version, its block ids (roots) and its parent's id, which a
 * re-encoding copy changes.
 */
function identity(m: Manifest): Uint8Array {
  return encodeManifest({
    ...m,
    formatVersion: 0,
    formatMinor: 0,
    parentId: null,
    parts: m.parts.map((p) => ({ ...p, root: NO_ID })),
    logSegments: m.logSegments.map((l) => ({ ...l, root: NO_ID })),
  });
}

/** True when two manifests (of two repositories) record the same backup. */
function sameBackup(a: Manifest, b: Manifest): boolean {
  return equalBytes(identity(a), identity(b));
}

/**
 * Marks the manifests the destination already holds as skipped (byte for
 * byte when verbatim, the same backup when re-encoding); a manifest of the
 * same name that is another backup stops the copy before anything is
 * written.
 */
async function checkDestination(
  dst: Repository,
  selected: Selected[],
  reencode: boolean,
): Promise<void> {
  const present = new Set(await dst.manifestNames());
  for (const s of selected) {
    if (!present.has(s.record.name)) continue;
    const other = await dst.store.load({ kind: "manifest", name: s.record.name });
    const same = reencode
      ? sameBackup((await dst.parseManifest(s.record.name, other)).manifest, s.record.manifest)
      : equalBytes(other, s.bytes);
    if (!same) throw conflict(s.record.name, dst.store.location, sha256(other), s.record.id);
    s.skip = true;
    s.destId = sha256(other);
  }
}

/** Groups the queued blocks of one pack into reads: the whole pack, or coalesced ranges. */
function planReads(
  list: Needed[],
  packSize: number,
  rangedRead: boolean,
): { offset: number; length: number; items: Needed[] }[] {
  const needed = list.reduce((a, n) => a + n.loc.storedLength, 0);
  if (!rangedRead || (needed > packSize / 2 && packSize <= WHOLE_PACK_MAX)) {
    return [{ offset: 0, length: packSize, items: list }];
  }
  const reads: { offset: number; length: number; items: Needed[] }[] = [];
  let cur: { offset: number; length: number; items: Needed[] } | null = null;
  for (const n of list) {
    const end = n.loc.offset + n.loc.storedLength;
    if (
      cur && n.loc.offset - (cur.offset + cur.length) <= READ_GAP && end - cur.offset <= READ_MAX
    ) {
      cur.length = Math.max(cur.length, end - cur.offset);
      cur.items.push(n);
    } else {
      cur = { offset: n.loc.offset, length: n.loc.storedLength, items: [n] };
      reads.push(cur);
    }
  }
  return reads;
}

/** Names the source in an integrity error, and adds a fix when the message has none. */
function sourceDamage(e: unknown, location: string): unknown {
  if (!(e instanceof IntegrityError)) return e;
  const fix = /: (run|copy|restore) /.test(e.message)
    ? ""
    : `: run bendsave verify --read-data ${location} to see every affected backup, then repair the source or copy the other backups with --manifest`;
  return new IntegrityError(`copy stopped, source ${location}: ${e.message}${fix}`, { cause: e });
}

/** The path of entry `name` of directory `dir` in messages (`part:` prefixes kept). */
function childPath(dir: string, name: string): string {
  return `${dir}${dir && !dir.endsWith(":") ? "/" : ""}${name}`;
}

/** A set of block ids in the compact form of a {@linkcode BlockIndex}. */
class IdSet {
  readonly #index = new BlockIndex();
  readonly #pack = this.#index.addPack(new Uint8Array(ID_LENGTH), 0);

  /** Adds `id`; true when it was not in the set. */
  add(id: Uint8Array): boolean {
    return this.#index.add(this.#pack, {
      id,
      kind: BlobKind.data,
      codec: 0,
      offset: 0,
      storedLength: 0,
      rawLength: 0,
    });
  }
}

/** The destination's passphrase error, with where the destination's passphrase comes from. */
function destinationPassphrase(e: PassphraseError): PassphraseError {
  return new PassphraseError(
    `copy destination: ${
      e.message.replace(/: (check|give) .*$/, "")
    }: give the destination's passphrase in BENDSAVE_TO_PASSWORD, or with --to-password-file FILE or --to-password-command CMD (without them copy tries the source's)`,
    { cause: e },
  );
}

/** The destination, opened or created, and how it was made. */
interface Destination {
  readonly repo: Repository;
  readonly created: boolean;
  readonly masterKey: "source" | "new" | null;
}

/**
 * Opens the destination (or creates it, encrypted or not as the source and
 * `encrypt`/`decrypt` say), refusing a combination that would store an
 * encrypted source's backups in plaintext without `decrypt`. Nothing is
 * written before every check has passed.
 */
async function openDestination(
  src: Repository,
  to: BlobStore,
  options: CopyOptions,
): Promise<Destination> {
  const toPassphrase = options.toPassphrase ?? options.passphrase ?? passphraseSource();
  let dst: Repository | null = null;
  try {
    dst = await Repository.open(to, { passphrase: toPassphrase });
  } catch (e) {
    if (e instanceof PassphraseError) throw destinationPassphrase(e);
    if (!(e instanceof RepositoryNotFound)) throw e;
  }
  if (dst) {
    if (options.encrypt && !dst.encrypted) {
      throw new InvalidInput(
        `the copy destination ${to.location} holds an unencrypted repository: --encrypt only creates a new one; copy into a new location`,
      );
    }
    if (options.decrypt && dst.encrypted) {
      throw new InvalidInput(
        `the copy destination ${to.location} is encrypted: --decrypt copies into an unencrypted repository; leave it out`,
      );
    }
    if (src.encrypted && !dst.encrypted && !options.decrypt) throw plaintextRefused(src, to);
    return { repo: dst, created: false, masterKey: null };
  }
  const encrypted = options.encrypt === true || (src.encrypted && !options.decrypt);
  const { passphrase: given, masterKey: _ignored, ...init } = options.init ?? {};
  const settings: InitOptions = {
    chunker: src.config.chunker,
    compression: src.config.compression,
    packSize: src.config.packSize,
    ...init,
  };
  if (!encrypted) {
    return { repo: await Repository.init(to, settings), created: true, masterKey: null };
  }
  const passphrase = given ?? await toPassphrase();
  if (passphrase === null) {
    throw new PassphraseError(
      `the new copy destination ${to.location} is encrypted and needs a passphrase: set BENDSAVE_TO_PASSWORD (or BENDSAVE_PASSWORD), or give --to-password-file FILE or --to-password-command CMD`,
    );
  }
  const kdf = src.config.encryption?.kdf;
  const repo = await Repository.init(to, {
    ...(kdf
      ? {
        kdf: { memoryKiB: kdf.memoryKiB, iterations: kdf.iterations, parallelism: kdf.parallelism },
      }
      : {}),
    ...settings,
    passphrase,
    ...(src.crypto && !options.encrypt ? { masterKey: src.crypto.key.raw } : {}),
  });
  return { repo, created: true, masterKey: src.crypto && !options.encrypt ? "source" : "new" };
}

function plaintextRefused(src: Repository, to: BlobStore): InvalidInput {
  return new InvalidInput(
    `the copy source ${src.store.location} is encrypted and ${to.location} is not, so its backups would be stored in plaintext: give --decrypt to do that on purpose, or copy into an encrypted repository`,
  );
}

/**
 * Copies backups from the repository in `from` to the repository in `to`,
 * storing only the blocks `to` lacks. The destination is created on first
 * use with the source's settings (and a new repository id): encrypted with
 * the source's master key when the source is encrypted, with a new one with
 * `encrypt`, unencrypted from an unencrypted source or with `decrypt`. An
 * existing destination is used as it is, whatever its chunker, compression
 * or pack size; with another key than the source's (or none) the backups
 * are re-encoded for it (see the module documentation).
 *
 * Holds a shared lock at both ends (none on a read-only source), so a vacuum
 * cannot run at either end meanwhile. A manifest the destination already
 * holds is skipped; one of the same name that is another backup stops the
 * copy with {@linkcode AlreadyExists} before anything is written. A missing
 * or wrong passphrase at either end is a {@linkcode PassphraseError} before
 * anything is written. A damaged source block stops it with
 * {@linkcode IntegrityError} before the block is copied. An interrupted copy
 * resumes when run again.
 *
 * @example
 * ```ts ignore
 * import { copy } from "./copy.ts";
 * import { openStore } from "./open_store.ts";
 * const from = await openStore("/backups/app");
 * const to = await openStore("/mnt/offsite/app", { create: true });
 * const r = await copy(from, to);
 * console.log(`${r.manifestsCopied} copied, ${r.bytesCopied} bytes`);
 * ```
 */
export async function copy(
  from: BlobStore,
  to: BlobStore,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const started = Date.now();
  const emit: CopyEventSink = options.onEvent ?? (() => {});
  throwIfCancelled(options.signal, "copy");
  if (options.encrypt && options.decrypt) {
    throw new InvalidInput("give either --encrypt or --decrypt to copy, not both");
  }
  const lockOptions = (store: BlobStore) => ({
    operation: "copy",
    waitMs: options.lockWaitMs ?? 0,
    signal: options.signal,
    onWait: (message: string) => emit({ type: "warning", message }),
    onStale: (s: StaleLock) =>
      emit({
        type: "warning",
        message: `removed stale lock ${s.name} in ${store.location}: ${s.reason}`,
      }),
  });
  const src = await Repository.open(from, {
    ...(options.passphrase ? { passphrase: options.passphrase } : {}),
  });
  if (!to.capabilities.writable) {
    throw new InvalidInput(
      `the copy destination ${to.location} is read-only: copy into a writable repository`,
    );
  }
  const srcLock = from.capabilities.writable
    ? await RepositoryLock.acquire(from, "shared", lockOptions(from))
    : null;
  try {
    await src.loadIndex();
    const selected = await selectManifests(src, options.manifests);
    const { repo: dst, created, masterKey } = await openDestination(src, to, options);
    const reencode = src.encrypted || dst.encrypted
      ? !(src.crypto && dst.crypto && equalBytes(src.crypto.key.raw, dst.crypto.key.raw))
      : false;
    const dstLock = await RepositoryLock.acquire(to, "shared", lockOptions(to));
    try {
      await dst.loadIndex();
      await checkDestination(dst, selected, reencode);
      throwIfCancelled(options.signal, "copy");
      const run = new CopyRun(src, dst, reencode, {
        emit,
        started,
        total: selected.length,
        signal: options.signal,
      });
      const manifests = await run.copyAll(selected);
      const s = run.writer.stats;
      return {
        created,
        mode: reencode ? "reencoded" : "verbatim",
        encrypted: dst.encrypted,
        masterKey,
        manifests,
        manifestsCopied: manifests.filter((m) => m.action === "copied").length,
        manifestsSkipped: manifests.filter((m) => m.action === "skipped").length,
        blocksCopied: s.blocks,
        bytesCopied: s.storedBytes,
        blocksPresent: run.blocksPresent,
        packsWritten: s.packs,
        packBytes: s.packBytes,
        indexFiles: run.indexFiles,
        durationMs: Date.now() - started,
      };
    } finally {
      await dstLock.release().catch(() => {});
    }
  } finally {
    await srcLock?.release().catch(() => {});
  }
}

/** A directory of a tree being re-encoded. */
interface ReencodedDir {
  /** The source tree's id. */
  readonly id: Uint8Array;
  /** The directory that holds it (null at a root) and its entry's position there. */
  readonly parent: ReencodedDir | null;
  readonly slot: number;
  readonly path: string;
  /** Its entries, as read; their ids are replaced as the walk goes. */
  nodes: TreeNode[];
  /** Entries entered so far. */
  entered: number;
}

/** The state of one copy between two open, locked repositories. */
class CopyRun {
  readonly #src: Repository;
  readonly #dst: Repository;
  readonly #reencode: boolean;
  readonly #emit: CopyEventSink;
  readonly #started: number;
  readonly #total: number;
  readonly writer: PackWriter;
  /** Trees walked in this run. */
  readonly #trees = new IdSet();
  /** Blocks (trees and data) copied, queued or found present in this run (source ids). */
  readonly #blocks = new IdSet();
  /** Re-encoding: the destination id of every source block mapped in this run. */
  readonly #remap: IdRemap;
  /** Re-encoding: destination manifest ids by name (null: none that records the same backup). */
  readonly #destIds = new Map<string, Uint8Array | null>();
  #queue: Needed[] = [];
  #manifest = "";
  #done = 0;
  #lastEmit = 0;
  #packsSeen = 0;
  readonly #signal: AbortSignal | undefined;
  blocksPresent = 0;
  indexFiles = 0;

  constructor(
    src: Repository,
    dst: Repository,
    reencode: boolean,
    run: { emit: CopyEventSink; started: number; total: number; signal: AbortSignal | undefined },
  ) {
    this.#signal = run.signal;
    this.#src = src;
    this.#dst = dst;
    this.#reencode = reencode;
    this.#emit = run.emit;
    this.#started = run.started;
    this.#total = run.total;
    this.#remap = new IdRemap(src.index);
    this.writer = new PackWriter(dst.store, dst.index, {
      targetSize: dst.config.packSize,
      crypto: dst.crypto,
    });
  }

  /** Copies (or skips) every selected manifest, oldest first. */
  async copyAll(selected: Selected[]): Promise<CopiedManifest[]> {
    const out: CopiedManifest[] = [];
    for (const s of selected) if (s.skip) this.#destIds.set(s.record.name, s.destId);
    try {
      for (const s of selected) {
        await checkpoint(this.#signal, "copy", { force: true });
        this.#manifest = s.record.name;
        out.push(s.skip ? this.#skipped(s) : await this.#copyManifest(s));
        this.#done++;
        this.#progress(true);
      }
    } catch (e) {
      // Packs already saved hold checked blocks: index them so a re-run need not copy them again.
      await this.writer.writeIndex().catch(() => {});
      const copied = out.filter((m) => m.action === "copied").length;
      if (e instanceof Cancelled && copied > 0) {
        throw new Cancelled(e.message, {
          cause: e,
          committed:
            `${copied} of ${selected.length} backups were copied; run the copy again for the rest`,
        });
      }
      throw e;
    }
    return out;
  }

  #skipped(s: Selected): CopiedManifest {
    return {
      name: s.record.name,
      id: toHex(s.destId ?? s.record.id),
      sourceId: toHex(s.record.id),
      action: "skipped",
      blocks: 0,
      bytes: 0,
    };
  }

  async #copyManifest(s: Selected): Promise<CopiedManifest> {
    const { name, manifest } = s.record;
    const before = { blocks: this.writer.stats.blocks, bytes: this.writer.stats.storedBytes };
    const backupName = `backup ${name}`;
    const roots = [
      ...manifest.parts.map((p) => ({
        root: p.root,
        prefix: manifest.parts.length > 1 ? `${p.name}:` : "",
      })),
      ...manifest.logSegments.map((l) => ({ root: l.root, prefix: `log ${l.name}:` })),
    ].filter((r) => r.root.length === ID_LENGTH);
    const newRoots: Uint8Array[] = [];
    try {
      for (const r of roots) await this.#walk(r.root, r.prefix, backupName);
      await this.#drain();
      if (this.#reencode) {
        for (const r of roots) {
          newRoots.push(await this.#reencodeTree(r.root, r.prefix, backupName));
        }
      }
    } catch (e) {
      throw sourceDamage(e, this.#src.store.location);
    }
    const bytes = this.#reencode ? await this.#reencodeManifest(s, newRoots) : s.bytes;
    // Commit: packs, then the index file, then the manifest.
    await this.writer.flush();
    this.#afterPacks();
    if (await this.writer.writeIndex()) {
      this.indexFiles++;
      crashPoint("copy-index");
    }
    let action: "copied" | "skipped" = "copied";
    let id = sha256(bytes);
    try {
      await this.#dst.store.save({ kind: "manifest", name }, bytes, { exclusive: true });
    } catch (e) {
      if (!(e instanceof AlreadyExists)) throw e;
      // Another copy saved it a moment ago: fine if it is the same backup.
      const other = await this.#dst.store.load({ kind: "manifest", name });
      const same = this.#reencode
        ? sameBackup((await this.#dst.parseManifest(name, other)).manifest, manifest)
        : equalBytes(other, bytes);
      if (!same) throw conflict(name, this.#dst.store.location, sha256(other), s.record.id);
      action = "skipped";
      id = sha256(other);
    }
    this.#destIds.set(name, id);
    crashPoint("copy-manifest");
    return {
      name,
      id: toHex(id),
      sourceId: toHex(s.record.id),
      action,
      blocks: this.writer.stats.blocks - before.blocks,
      bytes: this.writer.stats.storedBytes - before.bytes,
    };
  }

  /**
   * The bytes of the destination's manifest `s` with the re-encoded roots
   * `roots` (in the order of its parts, then its log segments with a root),
   * of the destination's format version, its parent id that of the
   * destination's manifest of the same backup (none when the destination
   * lacks it), sealed under the destination's key when it has one.
   */
  async #reencodeManifest(s: Selected, roots: Uint8Array[]): Promise<Uint8Array> {
    const m = s.record.manifest;
    let next = 0;
    const mapped = (root: Uint8Array) => root.length === ID_LENGTH ? roots[next++]! : root;
    const out: Manifest = {
      ...m,
      formatVersion: this.#dst.encrypted ? ENCRYPTED_FORMAT_VERSION : FORMAT_VERSION,
      formatMinor: this.#dst.encrypted ? ENCRYPTED_FORMAT_MINOR : FORMAT_MINOR,
      parentId: m.parentName ? await this.#destParentId(m.parentName) : null,
      parts: m.parts.map((p) => ({ ...p, root: mapped(p.root) })),
      logSegments: m.logSegments.map((l) => ({ ...l, root: mapped(l.root) })),
    };
    return await this.#dst.encodeManifest(s.record.name, out);
  }

  /**
   * The id of the destination's manifest `name` when it records the same
   * backup as the source's of that name, else null (a parent the copy left
   * out: its child records no parent id, which is valid, FORMAT.md 13.4).
   */
  async #destParentId(name: string): Promise<Uint8Array | null> {
    const known = this.#destIds.get(name);
    if (known !== undefined) return known;
    let id: Uint8Array | null = null;
    try {
      const bytes = await this.#dst.store.load({ kind: "manifest", name });
      const theirs = await this.#dst.parseManifest(name, bytes);
      const ours = await this.#src.loadManifest(name);
      if (sameBackup(theirs.manifest, ours.manifest)) id = theirs.id;
    } catch (e) {
      const absentOrUnreadable = e instanceof NotFound || e instanceof InvalidInput ||
        e instanceof IntegrityError || e instanceof UnsupportedFormat;
      if (!absentOrUnreadable) throw e;
    }
    this.#destIds.set(name, id);
    return id;
  }

  /** Fires the copy-pack crash point once for each pack saved since the last call. */
  #afterPacks(): void {
    while (this.#packsSeen < this.writer.stats.packs) {
      this.#packsSeen++;
      crashPoint("copy-pack");
    }
  }

  async #add(
    id: Uint8Array,
    kind: BlobKind,
    block: { codec: number; data: Uint8Array; rawLength: number; sealed: boolean },
  ): Promise<void> {
    await checkpoint(this.#signal, "copy");
    await this.writer.add(id, kind, block);
    this.#afterPacks();
    this.#progress(false);
  }

  /**
   * Reads tree `id` from the source, checked against its id (opened first
   * in an encrypted source): its stored bytes as read and its entries.
   */
  async #readTree(
    id: Uint8Array,
    what: string,
  ): Promise<{ loc: BlobLocation; stored: Uint8Array; nodes: TreeNode[] }> {
    const loc = this.#src.locate(id, what);
    const stored = await this.#src.loadPackRange(loc.packId, loc.offset, loc.storedLength, what);
    const opened = await this.#src.openStored(id, loc, stored, what);
    const nodes = this.#src.parseTree(id, this.#src.decodeStored(id, loc, opened, what), what);
    return { loc, stored, nodes };
  }

  /**
   * Walks a tree from the source and queues the data blocks to copy.
   * Verbatim, it also copies the tree block itself when the destination
   * lacks it, and queues only the blocks the destination lacks; every tree
   * is walked even when the destination holds it: a tree there does not
   * prove that its blocks are (a vacuum keeps whole packs, dead trees
   * included). Re-encoding, it queues every block not mapped yet in this
   * run (whether the destination holds it is known once it is read).
   */
  async #walk(id: Uint8Array, rel: string, backupName: string): Promise<void> {
    await walkTree(id, rel, {
      load: async (tree, dir) => {
        if (!this.#trees.add(tree)) return null; // walked earlier in this run
        const { loc, stored, nodes } = await this.#readTree(
          tree,
          `directory ${dir || "/"} of ${backupName}`,
        );
        if (!this.#reencode && this.#blocks.add(tree)) {
          if (this.writer.has(tree)) this.blocksPresent++;
          else {
            await this.#add(tree, loc.kind, {
              codec: loc.codec,
              data: stored.slice(),
              rawLength: loc.rawLength,
              sealed: this.#src.encrypted,
            });
          }
        }
        return nodes;
      },
      enter: async (n, dir) => {
        const path = childPath(dir, n.name);
        if (n.type === NodeType.file) {
          for (const b of n.blocks) {
            if (!this.#blocks.add(b)) continue;
            if (!this.#reencode && this.writer.has(b)) {
              this.blocksPresent++;
              continue;
            }
            const fileWhat = `file ${path} of ${backupName}`;
            this.#queue.push({ id: b, loc: this.#src.locate(b, fileWhat), what: fileWhat });
            if (this.#queue.length >= BATCH_BLOCKS) await this.#drain();
          }
        }
        return n.type === NodeType.dir && n.subtree?.length === ID_LENGTH ? path : undefined;
      },
    });
  }

  /**
   * Copies the queued blocks, reading the source pack by pack. Each is
   * opened (in an encrypted source) and checked against its id first.
   * Re-encoding, it is stored under the destination's id of its plaintext
   * with its compressed bytes unchanged (sealed anew in an encrypted
   * destination), unless the destination holds that id already.
   */
  async #drain(): Promise<void> {
    const queue = this.#queue;
    this.#queue = [];
    const byPack = new Map<number, Needed[]>();
    for (const n of queue) {
      const l = byPack.get(n.loc.packIndex);
      if (l) l.push(n);
      else byPack.set(n.loc.packIndex, [n]);
    }
    // Pack id order, then offset order: deterministic, so a re-run after a crash
    // writes the same packs under the same names (when nothing is sealed anew).
    const packs = [...byPack].map(([i, list]) => ({ pack: this.#src.index.pack(i), list }))
      .map((p) => ({ ...p, hex: toHex(p.pack.id) }))
      .sort((a, b) => (a.hex < b.hex ? -1 : a.hex > b.hex ? 1 : 0));
    const ranged = this.#src.store.capabilities.rangedRead;
    for (const { pack, list } of packs) {
      list.sort((a, b) => a.loc.offset - b.loc.offset);
      for (const r of planReads(list, pack.size, ranged)) {
        const buf = await this.#src.loadPackRange(pack.id, r.offset, r.length, r.items[0]!.what);
        for (const n of r.items) {
          const start = n.loc.offset - r.offset;
          const stored = buf.subarray(start, start + n.loc.storedLength);
          // Checked before it is copied: damage is never replicated.
          const opened = await this.#src.openStored(n.id, n.loc, stored, n.what);
          const raw = this.#src.decodeStored(n.id, n.loc, opened, n.what);
          if (!this.#reencode) {
            await this.#add(n.id, n.loc.kind, {
              codec: n.loc.codec,
              data: stored.slice(),
              rawLength: n.loc.rawLength,
              sealed: this.#src.encrypted,
            });
            continue;
          }
          const id = this.#dst.blockId(raw);
          this.#remap.set(n.id, id);
          if (this.writer.has(id)) {
            this.blocksPresent++;
            continue;
          }
          await this.#add(id, n.loc.kind, {
            codec: n.loc.codec,
            data: opened === stored ? stored.slice() : opened,
            rawLength: n.loc.rawLength,
            sealed: false,
          });
        }
      }
    }
  }

  /**
   * Re-encodes the source tree `root` for the destination, bottom up: each
   * directory's entries with their blocks' and subtrees' destination ids,
   * encoded, compressed with the destination's settings and stored under
   * the destination's id unless it holds it. Every data block must be
   * mapped already (by {@linkcode #drain}). Returns the new root id.
   */
  async #reencodeTree(root: Uint8Array, rel: string, backupName: string): Promise<Uint8Array> {
    const done = this.#remap.get(root);
    if (done) return done;
    let result: Uint8Array | null = null;
    const top: ReencodedDir = {
      id: root,
      parent: null,
      slot: -1,
      path: rel,
      nodes: [],
      entered: 0,
    };
    await walkTree(root, top, {
      load: async (id, dir) => {
        dir.nodes = (await this.#readTree(id, `directory ${dir.path || "/"} of ${backupName}`))
          .nodes;
        return dir.nodes;
      },
      enter: (n, dir) => {
        const slot = dir.entered++;
        if (n.type === NodeType.file) {
          n.blocks = n.blocks.map((b) => this.#mapped(b));
          return undefined;
        }
        if (n.type !== NodeType.dir || n.subtree?.length !== ID_LENGTH) return undefined;
        const known = this.#remap.get(n.subtree);
        if (known) {
          n.subtree = known;
          return undefined;
        }
        // Its new id is set when it is left (the walk reads the old one to descend).
        return {
          id: n.subtree,
          parent: dir,
          slot,
          path: childPath(dir.path, n.name),
          nodes: [],
          entered: 0,
        };
      },
      leave: async (dir) => {
        const id = await this.#storeTree(dir.id, dir.nodes);
        if (dir.parent) dir.parent.nodes[dir.slot]!.subtree = id;
        else result = id;
      },
    });
    return result!;
  }

  /** The destination id of source block `id`, mapped earlier in this run. */
  #mapped(id: Uint8Array): Uint8Array {
    const to = this.#remap.get(id);
    if (!to) throw new Error(`internal error: block ${toHex(id)} was not copied before its tree`);
    return to;
  }

  /** Stores the re-encoded tree of source tree `id` unless the destination holds it; its new id. */
  async #storeTree(id: Uint8Array, nodes: TreeNode[]): Promise<Uint8Array> {
    const raw = encodeTree(nodes);
    const newId = this.#dst.blockId(raw);
    this.#remap.set(id, newId);
    if (this.writer.has(newId)) {
      this.blocksPresent++;
      return newId;
    }
    const e = encodeBlock(raw, this.#dst.config.compression);
    await this.#add(newId, BlobKind.tree, {
      codec: e.codec,
      data: e.data,
      rawLength: raw.length,
      sealed: false,
    });
    return newId;
  }

  #progress(force: boolean): void {
    const t = Date.now();
    if (!force && t - this.#lastEmit < PROGRESS_MS) return;
    this.#lastEmit = t;
    this.#emit({
      type: "progress",
      operation: "copy",
      phase: "write",
      files: this.#done,
      totalFiles: this.#total,
      bytes: this.writer.stats.storedBytes,
      totalBytes: 0,
      elapsedMs: t - this.#started,
      manifest: this.#manifest,
      blocks: this.writer.stats.blocks,
      blocksPresent: this.blocksPresent,
    });
  }
}
