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
 * run, 33 bytes a block (`IdRemap` in id_remap.ts: at most 33 bytes times the
 * blocks of the source index), so a block shared by many backups or files
 * is read once. Trees are read twice per copied manifest (once to find the
 * data blocks, once to re-encode them), never held whole. When the
 * destination holds the backup's parent, the two copies of the parent's
 * trees are walked side by side first to pair their ids, so an incremental
 * backup's copy reads only the directories that changed.
 *
 * @module
 */
import type { BlobStore } from "./drivers/types.ts";
import { IntegrityError, InvalidInput, PassphraseError, RepositoryNotFound } from "./errors.ts";
import { type InitOptions, type ManifestRecord, Repository } from "./repository.ts";
import { RepositoryLock, type StaleLock } from "./lock.ts";
import { conflict, CopyRun, type Selected } from "./_copy_run.ts";
import { type PassphraseSource, passphraseSource } from "./passphrase_source.ts";
import type { EventSink, OperationEvent, ProgressEvent } from "./backup/events.ts";
import { type CancelOptions, throwIfCancelled } from "./cancel.ts";
import { equalBytes, sha256 } from "../formats/hash.ts";
import { compareManifestNames, isManifestName, sameBackup } from "../formats/manifest.ts";

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
  /**
   * Blocks the copied manifests need that the destination already held (a
   * re-encoding copy leaves out those below directories unchanged since a
   * parent backup the destination holds: it does not look at them).
   */
  readonly blocksPresent: number;
  readonly packsWritten: number;
  /** Bytes of the pack files written (blocks plus headers and trailers). */
  readonly packBytes: number;
  readonly indexFiles: number;
  readonly durationMs: number;
}

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

/** The destination's passphrase error, with where the destination's passphrase comes from. */
function destinationPassphrase(e: PassphraseError): PassphraseError {
  if (e.needsPassphrase === null) {
    return new PassphraseError(`copy destination: ${e.message}`, { cause: e }); // its own fix
  }
  return new PassphraseError(
    `copy destination: ${e.needsPassphrase}: give the destination's passphrase in BENDSAVE_TO_PASSWORD, or with --to-password-file FILE or --to-password-command CMD (without them copy tries the source's)`,
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
    if (given !== undefined) {
      throw new InvalidInput(
        `the copy destination ${to.location} would be created unencrypted, yet a passphrase was given for it: give encrypt to encrypt it`,
      );
    }
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
