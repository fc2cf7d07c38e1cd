/**
 * The one restorer: whatever the output (a directory, the objects of a
 * blob store), it collects what to restore with one walk of the backup's
 * trees (collect.ts, store/walker.ts), checks that every pack is present
 * before anything is written, reads the files' blocks in pack order through
 * one bounded {@linkcode PackCache}, and hands each file to the
 * {@linkcode RestoreOutput} block by block, so a large file never sits
 * whole in memory. A file that cannot be restored is left out and the
 * others go on ({@linkcode RestoreIncomplete}); a cancel stops between
 * files and blocks, leaving only whole files under their names.
 *
 * @module
 */
import type { BlobStore } from "../drivers/types.ts";
import { Cancelled, RestoreIncomplete } from "../errors.ts";
import { Repository } from "../repository.ts";
import type { EventSink } from "../backup/events.ts";
import { checkpoint, throwIfCancelled } from "../cancel.ts";
import { reportStale, withLock } from "../lock.ts";
import { toHex } from "../../formats/hash.ts";
import {
  type Collected,
  type Entry,
  loadAndCollect,
  packsOf,
  readOrder,
  splitHardLinks,
} from "./collect.ts";
import type { PackPresence } from "./pack_presence.ts";
import { PackCache, type PackCacheOptions, packNeeds } from "./pack_cache.ts";
import type { RestoreOutput } from "./output.ts";
import type { FailedFile, RestoreOptions, RestorePlan, RestoreResult } from "./restore.ts";
import type { StoredBlock } from "./stored_block.ts";

/** Options of the restorer beyond those of a restore. */
export interface RestorerOptions extends RestoreOptions {
  /** Bounds of the pack cache (tests; default: {@linkcode PackCache}'s). */
  readonly packCache?: PackCacheOptions;
}

/** Works out what a restore into `output` would do, writing nothing (the dry run). */
export async function planWith(
  store: BlobStore,
  output: RestoreOutput,
  options: RestoreOptions = {},
): Promise<RestorePlan> {
  const repo = options.repository ?? await Repository.open(store);
  const { c, presence } = await loadAndCollect(repo, options);
  return await buildPlan(repo, c, output, presence);
}

/**
 * Restores a backup of `store` into `output`, under a shared lock (a
 * vacuum cannot delete the packs it reads). Refuses a non-empty target
 * unless `overwrite` is set; then only entries whose content differs are
 * written again.
 */
export async function restoreWith(
  store: BlobStore,
  output: RestoreOutput,
  options: RestorerOptions = {},
): Promise<RestoreResult> {
  const emit: EventSink = options.onEvent ?? (() => {});
  throwIfCancelled(options.signal, "restore");
  // A missing or newer repository fails before any lock is written.
  const repo = options.repository ?? await Repository.open(store);
  return await withLock(
    store,
    "shared",
    "restore",
    reportStale(emit),
    () => restoreLocked(repo, output, options, emit),
  );
}

async function buildPlan(
  repo: Repository,
  c: Collected,
  output: RestoreOutput,
  presence: PackPresence,
): Promise<RestorePlan> {
  const view = await output.inspect(c);
  const packs = packsOf(repo, c);
  const { write, links } = output.hardLinks
    ? splitHardLinks(c.files)
    : { write: c.files, links: [] };
  return {
    manifest: c.record.name,
    manifestId: toHex(c.record.id),
    target: view.target,
    files: c.files.length,
    dirs: c.dirs.length,
    symlinks: c.symlinks.length,
    bytes: write.reduce((a, f) => a + f.node.size, 0),
    hardLinks: links.length,
    ownership: view.ownership,
    replaced: view.replaced,
    replacedByDirectory: view.replacedByDirectory,
    targetNotEmpty: view.targetNotEmpty,
    packs,
    missingPacks: await presence.missing(packs),
    unlistedDirs: c.unlistedDirs,
  };
}

async function restoreLocked(
  repo: Repository,
  output: RestoreOutput,
  options: RestorerOptions,
  emit: EventSink,
): Promise<RestoreResult> {
  const started = Date.now();
  const { c, presence } = await loadAndCollect(repo, options);
  const plan = await buildPlan(repo, c, output, presence);
  if (plan.targetNotEmpty && !options.overwrite) throw output.notEmpty(plan);
  if (plan.missingPacks.length > 0) throw presence.error(plan);
  throwIfCancelled(options.signal, "restore");

  const { write, links } = output.hardLinks
    ? splitHardLinks(c.files)
    : { write: c.files, links: [] };
  const cache = new PackCache(repo, packNeeds(repo, write), options.packCache);
  let filesWritten = 0;
  let filesUnchanged = 0;
  let bytesWritten = 0;
  const failed: FailedFile[] = [];
  const report = writeProgress(emit, started, write.length, plan.bytes);
  const progress = () => report(filesWritten + filesUnchanged, bytesWritten);
  const ledger = {
    written(files: number, bytes: number) {
      filesWritten += files;
      bytesWritten += bytes;
      progress();
    },
    failed(path: string, message: string) {
      failed.push({ path, message });
    },
  };
  const signal = options.signal;
  /** The stored blocks of `f`, in order, read as the output asks for them. */
  async function* blocksOf(f: Entry): AsyncGenerator<StoredBlock> {
    for (const id of f.node.blocks) {
      await checkpoint(signal, "restore");
      yield await cache.block(id, repo.locate(id, f.rel), f.rel);
    }
  }

  let error: unknown = null;
  try {
    await output.begin(c, plan, ledger);
    for (const f of readOrder(repo, write)) {
      await checkpoint(signal, "restore");
      if (output.stopped) break;
      if (plan.targetNotEmpty && await output.unchanged(f, c.chunker, blockLengths(repo, f))) {
        filesUnchanged++;
        progress();
        continue;
      }
      await output.file(f, blocksOf(f));
      progress();
    }
    await output.drain();
  } catch (e) {
    error = e;
  }
  // Files in hand are finished or removed: only whole files keep their names.
  await output.close();
  if (signal?.aborted) {
    const e = error instanceof Cancelled ? error : new Cancelled("restore cancelled");
    throw new Cancelled(e.message, {
      cause: e,
      committed: output.cancelled(filesWritten, write.length),
    });
  }
  if (error !== null) throw error;

  // Hard links once every file is written: each name of a file after the first.
  const lost = new Set(failed.map((f) => f.path));
  for (const l of links) {
    if (lost.has(l.of.rel)) {
      failed.push({
        path: l.rel,
        message: `hard link of ${l.of.rel}, which could not be restored`,
      });
      continue;
    }
    const made = await output.link(l);
    if (made === "made") filesWritten++;
    else if (made === "kept") filesUnchanged++;
  }
  for (const s of c.symlinks) await output.symlink(s);
  await output.end(c);
  return finish(plan, { failed, filesWritten, filesUnchanged, bytesWritten }, started);
}

/** The plaintext lengths of the blocks of `f`, from the index. */
function blockLengths(repo: Repository, f: Entry): number[] {
  return f.node.blocks.map((id) => repo.locate(id, f.rel).rawLength);
}

/** A reporter of write progress that sends an event at most every 200 ms. */
function writeProgress(
  emit: EventSink,
  started: number,
  totalFiles: number,
  totalBytes: number,
): (files: number, bytes: number) => void {
  let last = 0;
  return (files, bytes) => {
    const t = Date.now();
    if (t - last < 200) return;
    last = t;
    emit({
      type: "progress",
      operation: "restore",
      phase: "write",
      files,
      totalFiles,
      bytes,
      totalBytes,
      elapsedMs: t - started,
    });
  };
}

/**
 * The result of a restore, or the {@linkcode RestoreIncomplete} that carries
 * it when some files could not be restored.
 */
function finish(
  plan: RestorePlan,
  done: Omit<RestoreResult, keyof RestorePlan | "durationMs">,
  started: number,
): RestoreResult {
  const result: RestoreResult = { ...plan, ...done, durationMs: Date.now() - started };
  if (done.failed.length > 0) throw incomplete(result, done.failed);
  return result;
}

/** The error of a restore that left `failed` out and wrote everything else. */
function incomplete(result: RestoreResult, failed: readonly FailedFile[]): RestoreIncomplete {
  const names = failed.slice(0, 3).map((f) => f.path).join(", ");
  return new RestoreIncomplete(
    `${failed.length} of ${
      result.files + result.symlinks
    } files of backup ${result.manifest} could not be restored (${names}${
      failed.length > 3 ? ", ..." : ""
    }), everything else was: run bendsave verify to see the damage, then restore these files from another backup or copy of the repository`,
    failed,
    result,
  );
}
