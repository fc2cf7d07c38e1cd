/**
 * The backup operation: walks each part of a source, stores new blocks in
 * packs, writes trees bottom-up, then the index, then the manifest (the
 * commit point).
 *
 * @module
 */
import fs from "node:fs";
import { availableParallelism, hostname } from "node:os";
import type { BlobStore } from "../drivers/types.ts";
import { AlreadyExists, InvalidInput, RepositoryNotFound } from "../errors.ts";
import { type InitOptions, type ManifestRecord, Repository } from "../repository.ts";
import { reportStale, RepositoryLock } from "../lock.ts";
import { PackWriter } from "../pack_writer.ts";
import { crashPoint } from "../crash_point.ts";
import type { DirPart, Source, SourcePart } from "../source.ts";
import type { BackupContext } from "./_context.ts";
import { abandonNewRepository, ignoredInitOptions, removeStaleTemporaryFiles } from "./_upkeep.ts";
import { sha256 } from "../../formats/hash.ts";
import {
  emptyStats,
  type Manifest,
  manifestName,
  type ManifestPart,
  type ManifestStats,
} from "../../formats/manifest.ts";
import type { ChunkerParams } from "../../formats/chunker.ts";
import {
  ENCRYPTED_FORMAT_MINOR,
  ENCRYPTED_FORMAT_VERSION,
  FORMAT_MINOR,
  FORMAT_VERSION,
  TOOL_VERSION,
} from "../../formats/version.ts";
import { excludeMatcher } from "../../formats/glob.ts";
import { WorkerPool } from "../worker_pool.ts";
import { ENGINE_JOBS } from "../worker_jobs.ts";
import type { EventSink } from "./events.ts";
import { beforeCommit, type CancelOptions, checkpoint, throwIfCancelled } from "../cancel.ts";
import { archive } from "../archiver/archiver.ts";
import { dirTree } from "../archiver/dir_tree.ts";
import { blobTree } from "../archiver/blob_tree.ts";
import { streamTree } from "../archiver/stream_tree.ts";
import type { EnginePool } from "../worker_jobs.ts";

/**
 * Options of {@linkcode backup}. A `signal` that aborts stops the backup at
 * its next safe point (between files, objects, parts) with `Cancelled`,
 * before the manifest: packs already saved are indexed (the next backup
 * reuses them), the lock is released, and a repository this backup created
 * is removed.
 */
export interface BackupOptions extends CancelOptions {
  /** Settings for a repository created by this backup. */
  readonly init?: InitOptions;
  /** Reader workers (default: one per core; 0 reads in-process). */
  readonly workers?: number;
  readonly onEvent?: EventSink;
  /** Clock (tests). */
  readonly now?: () => number;
  readonly labels?: Record<string, string>;
  /** Wait up to this long for a vacuum's exclusive lock (default 0: fail with LockedError). */
  readonly lockWaitMs?: number;
  /**
   * Globs of paths to leave out of a directory backup (the syntax of
   * restore's `include`, over paths relative to the directory; a directory
   * that matches is left out with everything below it). A TypeError for an
   * empty pattern is thrown before the repository is opened.
   */
  readonly exclude?: readonly string[];
}

/** What a backup did. */
export interface BackupResult {
  readonly name: string;
  readonly id: Uint8Array;
  readonly manifest: Manifest;
  readonly parent: string | null;
  readonly created: boolean;
  readonly durationMs: number;
}

/**
 * Backs up `source` into the repository in `store` (created on first use).
 *
 * @example
 * ```ts ignore
 * import { backup } from "./backup.ts";
 * import { FsStore } from "../drivers/fs.ts";
 * import { dirSource } from "../../sources/dir/dir_source.ts";
 * const store = await FsStore.open("/backups/repo", { create: true });
 * const r = await backup(store, dirSource("/var/lib/app"));
 * console.log(r.name);
 * ```
 */
export async function backup(
  store: BlobStore,
  source: Source,
  options: BackupOptions = {},
): Promise<BackupResult> {
  const now = options.now ?? Date.now;
  const start = now();
  const exclude = excludeMatcher(options.exclude ?? []);
  throwIfCancelled(options.signal, "backup");
  let created = false;
  const opening = Repository.open(store);
  // While the key is derived (an encrypted repository), the source reads ahead.
  source.warm?.(opening);
  let repo: Repository;
  try {
    repo = await opening;
  } catch (e) {
    if (!(e instanceof RepositoryNotFound)) throw e;
    repo = await Repository.init(store, options.init ?? {});
    created = true;
  }
  if (!created && options.init?.passphrase !== undefined && !repo.encrypted) {
    throw new InvalidInput(
      `${store.location} holds an unencrypted repository: --encrypt only creates a new one; back up into a new location, or encrypt its backups with bendsave copy --encrypt --from ${store.location} --to NEW_LOCATION`,
    );
  }
  const emit: EventSink = options.onEvent ?? (() => {});
  if (!created) {
    for (const message of ignoredInitOptions(repo.config, options.init)) {
      emit({ type: "warning", message });
    }
  }
  let lock: RepositoryLock;
  try {
    lock = await RepositoryLock.acquire(store, "shared", {
      operation: "backup",
      waitMs: options.lockWaitMs ?? 0,
      signal: options.signal,
      onWait: (message) => emit({ type: "warning", message }),
      onStale: reportStale(emit),
    });
  } catch (e) {
    if (created) await abandonNewRepository(store).catch(() => false);
    throw e;
  }
  let committed = false;
  await removeStaleTemporaryFiles(store, emit);
  const writer = new PackWriter(store, repo.index, {
    targetSize: repo.config.packSize,
    separateTrees: true,
    crypto: repo.crypto,
  });
  let pool: Promise<EnginePool> | null = null;
  try {
    await repo.loadIndex();
    const parent = await findParent(repo, source.info.key, emit);
    const ctx: BackupContext = {
      repo,
      writer,
      stats: emptyStats(),
      warnings: [],
      emit,
      start,
      now,
      pool: () =>
        pool ??= WorkerPool.start(ENGINE_JOBS, {
          workers: options.workers ?? Math.max(1, Math.min(availableParallelism(), 8)),
          name: "reader",
          fallback: "reading files on the main thread",
          onWarning: (message) => emit({ type: "warning", message }),
        }),
      lastScanEmit: 0,
      exclude,
      repository: localDir(store),
      signal: options.signal,
    };
    const parts: ManifestPart[] = [];
    if (parent === null || source.readsMost === true) {
      // Almost everything will be read: the threads start while the source prepares. A failed
      // start surfaces where the first read asks for the pool.
      ctx.pool().catch(() => {});
    }
    for (const part of await source.parts()) {
      await checkpoint(options.signal, "backup", { force: true });
      const parentPart = parent?.manifest.parts.find((p) => p.name === part.name);
      parts.push(await backupPart(ctx, part, parentPart?.root ?? null));
    }
    // Commit: packs are saved; now the index, then the manifest.
    await writer.writeIndex();
    ctx.stats.addedBytes = writer.stats.packBytes;
    ctx.stats.newBlocks = writer.stats.blocks;
    ctx.stats.newBytes = writer.stats.rawBytes;
    const concluded = source.conclude
      ? await source.conclude({ parent: parent?.manifest ?? null })
      : null;
    const manifest: Manifest = {
      formatVersion: repo.encrypted ? ENCRYPTED_FORMAT_VERSION : FORMAT_VERSION,
      formatMinor: repo.encrypted ? ENCRYPTED_FORMAT_MINOR : FORMAT_MINOR,
      timeMs: start,
      endTimeMs: now(),
      kind: parent ? "incremental" : "full",
      parentName: parent?.name ?? null,
      parentId: parent?.id ?? null,
      source: { ...source.info, settings: { ...source.info.settings } },
      parts,
      stats: ctx.stats,
      toolVersion: TOOL_VERSION,
      host: hostname(),
      incomplete: ctx.stats.errors > 0 || concluded?.incomplete === true,
      warnings: concluded ? [...ctx.warnings, ...concluded.warnings] : ctx.warnings,
      labels: { ...(options.labels ?? {}) },
      logSegments: [],
      catalog: concluded ? concluded.catalog : source.catalog?.() ?? null,
    };
    // The last safe point: after it the manifest is written.
    await beforeCommit(options.signal, "backup");
    crashPoint("before-manifest");
    const { name, bytes } = await saveManifest(repo, start, manifest);
    committed = true;
    crashPoint("manifest");
    return {
      name,
      id: sha256(bytes),
      manifest,
      parent: parent?.name ?? null,
      created,
      durationMs: now() - start,
    };
  } catch (e) {
    // Packs already saved are complete: index them so the next backup reuses them.
    await writer.writeIndex().catch(() => {});
    throw e;
  } finally {
    // Reading leaves nothing to clean up.
    const started = pool as Promise<EnginePool> | null;
    if (started) await started.then((p) => p.close({ abandon: true })).catch(() => {});
    await source.close?.().catch(() => {});
    await lock.release().catch(() => {});
    // A failed first backup leaves no repository behind (only the one it created).
    if (created && !committed) await abandonNewRepository(store).catch(() => false);
  }
}

/** Device and inode of the repository's directory when it is on a local file system. */
function localDir(store: BlobStore): { dev: number; ino: number } | null {
  if (store.capabilities.name !== "fs") return null;
  try {
    const st = fs.statSync(store.location);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

async function saveManifest(
  repo: Repository,
  timeMs: number,
  manifest: Manifest,
): Promise<{ name: string; bytes: Uint8Array }> {
  const existing = await repo.manifestNames();
  for (;;) {
    const name = manifestName(timeMs, existing);
    // Encoded per name: an encrypted repository's manifest is sealed to its name.
    const bytes = await repo.encodeManifest(name, manifest);
    try {
      await repo.store.save({ kind: "manifest", name }, bytes, { exclusive: true });
      return { name, bytes };
    } catch (e) {
      if (!(e instanceof AlreadyExists)) throw e;
      existing.push(name); // another backup took it a moment ago
    }
  }
}

async function findParent(
  repo: Repository,
  key: string,
  emit: EventSink,
): Promise<ManifestRecord | null> {
  const all = await repo.listManifests((name, err) =>
    emit({ type: "warning", message: `skipping manifest ${name}: ${err.message}` })
  );
  for (let i = all.length - 1; i >= 0; i--) if (all[i]!.manifest.source.key === key) return all[i]!;
  return null;
}

async function backupPart(
  ctx: BackupContext,
  part: SourcePart,
  parentRoot: Uint8Array | null,
): Promise<ManifestPart> {
  const before = { ...ctx.stats };
  const written = { ...ctx.writer.stats };
  const root = part.kind === "tree"
    ? await backupDir(ctx, part, parentRoot)
    : part.kind === "objects"
    ? await archive(ctx, blobTree(part), parentRoot, { settings: readerSettings(ctx, part) })
    // A stream is not compared with the parent: it is read whole every time.
    : await archive(ctx, streamTree(part, ctx.now), null, { settings: readerSettings(ctx, {}) });
  const stats = emptyStats();
  for (const k of Object.keys(stats) as (keyof ManifestStats)[]) {
    stats[k] = ctx.stats[k] - before[k];
  }
  // For a part, added bytes are the stored bytes of its new blocks (packs are shared by parts).
  stats.addedBytes = ctx.writer.stats.storedBytes - written.storedBytes;
  stats.newBlocks = ctx.writer.stats.blocks - written.blocks;
  stats.newBytes = ctx.writer.stats.rawBytes - written.rawBytes;
  const chunker = part.kind !== "stream" && part.chunker ? keyedChunker(ctx, part.chunker) : null;
  // An objects part is stored as a tree: a restore walks it like any directory.
  return {
    name: part.name,
    kind: part.kind === "stream" ? "stream" : "tree",
    root,
    stats,
    chunker,
  };
}

async function backupDir(
  ctx: BackupContext,
  part: DirPart,
  parentRoot: Uint8Array | null,
): Promise<Uint8Array> {
  const top = fs.statSync(part.path);
  if (ctx.repository?.ino === top.ino && ctx.repository.dev === top.dev) {
    throw new InvalidInput(
      `the repository ${ctx.repo.store.location} is the directory being backed up: back up into a repository outside ${part.path}`,
    );
  }
  // The part's own exclusions (a PostgreSQL data directory's) come on top of the backup's.
  const own = part.exclude;
  return await archive(ctx, part.tree ?? dirTree(part.path), parentRoot, {
    exclude: own ? (rel: string) => ctx.exclude(rel) || own(rel) : ctx.exclude,
    ...(part.vanishedOk ? { vanishedOk: true } : {}),
    settings: readerSettings(ctx, part),
  });
}

/**
 * `chunker`, with the gear seed of an encrypted repository's FastCDC
 * derived from its key (so cut points do not fingerprint known files).
 */
function keyedChunker(ctx: BackupContext, chunker: ChunkerParams): ChunkerParams {
  const crypto = ctx.repo.crypto;
  if (!crypto || chunker.kind !== "fastcdc") return chunker;
  return { ...chunker, seed: crypto.chunkerSeed() };
}

/** The part's chunker (default: the repository's) and the repository's compression. */
function readerSettings(ctx: BackupContext, part: { readonly chunker?: ChunkerParams }) {
  const masterKey = ctx.repo.crypto?.key.raw;
  return {
    chunker: keyedChunker(ctx, part.chunker ?? ctx.repo.config.chunker),
    compression: ctx.repo.config.compression,
    ...(masterKey ? { masterKey } : {}),
  };
}
