/**
 * The one restorer: whatever the output (a directory, the objects of a
 * blob store), it walks the backup's trees twice (collect.ts,
 * store/walker.ts). The first walk only counts: the plan, the packs needed
 * (checked present before anything is written) and how many blocks each
 * gives. The second restores in bounded batches ({@linkcode BatchLimits}):
 * a batch's files are read in pack order through one bounded
 * {@linkcode PackCache} and handed to the {@linkcode RestoreOutput} block by
 * block, then its hard links, symlinks and the directories whose subtree
 * is complete (their metadata, deepest first) follow, and the batch is
 * dropped. What is kept across batches is small: the directories from the
 * root to the current one, the files with more than one link, one count
 * per pack, the failed files. So memory does not grow with the number of
 * files. A file that cannot be restored is left out and the others go on
 * ({@linkcode RestoreIncomplete}); a cancel stops between files and
 * blocks, leaving only whole files under their names.
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
  choosePart,
  type Entry,
  HardLinks,
  type Link,
  type Part,
  readOrder,
  type SelectedDir,
  walkSelection,
} from "./collect.ts";
import { PackPresence } from "./pack_presence.ts";
import { addNeeds, PackCache, type PackCacheOptions, type PackNeed } from "./pack_cache.ts";
import type { RestoreOutput } from "./output.ts";
import type { FailedFile, RestoreOptions, RestorePlan, RestoreResult } from "./restore.ts";
import type { StoredBlock } from "./stored_block.ts";

/** Bounds of one batch of a restore: it is written once either is reached. */
export interface BatchLimits {
  /** Entries (files, links, symlinks, directories done) at most (default 4096). */
  readonly entries?: number;
  /**
   * Block references of its files at most (default 65536); a single file
   * with more makes a batch of its own.
   */
  readonly blocks?: number;
}

/** The default {@linkcode BatchLimits}. */
export const BATCH_ENTRIES = 4096;
export const BATCH_BLOCKS = 65536;

/** Options of the restorer beyond those of a restore. */
export interface RestorerOptions extends RestoreOptions {
  /** Bounds of the pack cache (tests; default: {@linkcode PackCache}'s). */
  readonly packCache?: PackCacheOptions;
  /** Bounds of a batch (tests; default {@linkcode BATCH_ENTRIES}, {@linkcode BATCH_BLOCKS}). */
  readonly batch?: BatchLimits;
  /** Told the size of each batch as it is written (tests). */
  readonly onBatch?: (entries: number, blocks: number) => void;
}

/** Works out what a restore into `output` would do, writing nothing (the dry run). */
export async function planWith(
  store: BlobStore,
  output: RestoreOutput,
  options: RestoreOptions = {},
): Promise<RestorePlan> {
  const repo = options.repository ?? await Repository.open(store);
  return (await survey(repo, output, options)).plan;
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

/** What the first walk found: the plan and what the restore walk needs of it. */
interface Survey {
  readonly plan: RestorePlan;
  readonly part: Part;
  readonly presence: PackPresence;
  /** What the written files need of each pack, by index number. */
  readonly needs: Map<number, PackNeed>;
  /** The first restored name that is not valid UTF-8, and its directory. */
  readonly exact: { dir: string; bytes: Uint8Array } | null;
}

/**
 * The first walk: counts what a restore into `output` writes and which
 * packs it reads, holding one entry per pack (and per file with several
 * links), not per file; asks the output what is in the way only in a
 * non-empty target.
 */
async function survey(
  repo: Repository,
  output: RestoreOutput,
  options: RestoreOptions,
): Promise<Survey> {
  await repo.loadIndex();
  const presence = new PackPresence(repo);
  const part = await choosePart(repo, options);
  const view = await output.inspect();
  const look = view.targetNotEmpty;
  const links = output.hardLinks ? new HardLinks() : null;
  const needs = new Map<number, PackNeed>();
  const n = { files: 0, dirs: 0, symlinks: 0, bytes: 0, hardLinks: 0 };
  const replacedFiles: string[] = [];
  const replacedLinks: string[] = [];
  const inTheWay: { path: string; was: string }[] = [];
  let exact: Survey["exact"] = null;
  const named = (node: { nameBytes?: Uint8Array }, dir: SelectedDir | null) => {
    if (exact === null && node.nameBytes) exact = { dir: dir?.rel ?? "", bytes: node.nameBytes };
  };
  /** True when an entry of `d` is in the target: asked only below directories that exist. */
  const there = async (e: Entry, d: SelectedDir) =>
    look && !d.fresh && (await output.existing(e)) !== null;
  const walked = await walkSelection(part, options.include ?? [], presence, {
    dir: async (d) => {
      if (d.node === null) return; // the target itself
      n.dirs++;
      named(d.node, d.parent);
      if (!look) return;
      if (d.parent!.fresh) {
        d.fresh = true;
        return;
      }
      const was = await output.existing({ rel: d.rel, node: d.node });
      if (was === "directory") return;
      d.fresh = true; // replaced or missing: nothing below exists
      if (was !== null) inTheWay.push({ path: d.rel, was });
    },
    file: async (f, d) => {
      n.files++;
      named(f.node, d);
      if (links?.of(f)) {
        n.hardLinks++;
      } else {
        n.bytes += f.node.size;
        addNeeds(needs, repo, f);
      }
      if (await there(f, d)) replacedFiles.push(f.rel);
    },
    symlink: async (s, d) => {
      n.symlinks++;
      named(s.node, d);
      if (await there(s, d)) replacedLinks.push(s.rel);
    },
    // A cancel stops the counting walk too, between directories.
    done: () => checkpoint(options.signal, "restore"),
  });
  const packs = new Map<number, { id: string; size: number }>();
  for (const p of [...walked.treePacks, ...needs.keys()]) {
    const { id, size } = repo.index.pack(p);
    packs.set(p, { id: toHex(id), size });
  }
  const list = [...packs.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  const plan: RestorePlan = {
    manifest: part.record.name,
    manifestId: toHex(part.record.id),
    target: view.target,
    ...n,
    ownership: view.ownership,
    replaced: [...replacedFiles, ...replacedLinks],
    replacedByDirectory: inTheWay,
    targetNotEmpty: view.targetNotEmpty,
    packs: list,
    missingPacks: await presence.missing(list),
    unlistedDirs: walked.unlistedDirs,
  };
  return { plan, part, presence, needs, exact };
}

/** The entries of one batch of the restore walk, in the order they are written. */
class Batch {
  files: Entry[] = [];
  links: Link[] = [];
  symlinks: Entry[] = [];
  /** Directories whose subtree is complete with this batch, deepest first. */
  done: SelectedDir[] = [];
  blocks = 0;
  readonly #entries: number;
  readonly #blocks: number;

  constructor(limits: BatchLimits = {}) {
    this.#entries = limits.entries ?? BATCH_ENTRIES;
    this.#blocks = limits.blocks ?? BATCH_BLOCKS;
    if (!(this.#entries >= 1 && this.#blocks >= 1)) {
      throw new RangeError(`batch limits ${this.#entries}, ${this.#blocks}: give 1 or more`);
    }
  }

  get entries(): number {
    return this.files.length + this.links.length + this.symlinks.length + this.done.length;
  }

  /** True when the batch is to be written now. */
  get full(): boolean {
    return this.entries >= this.#entries || this.blocks >= this.#blocks;
  }

  clear(): void {
    this.files = [];
    this.links = [];
    this.symlinks = [];
    this.done = [];
    this.blocks = 0;
  }
}

async function restoreLocked(
  repo: Repository,
  output: RestoreOutput,
  options: RestorerOptions,
  emit: EventSink,
): Promise<RestoreResult> {
  const started = Date.now();
  const { plan, part, presence, needs, exact } = await survey(repo, output, options);
  if (plan.targetNotEmpty && !options.overwrite) throw output.notEmpty(plan);
  if (plan.missingPacks.length > 0) throw presence.error(plan);
  throwIfCancelled(options.signal, "restore");

  const total = plan.files - plan.hardLinks;
  const cache = new PackCache(repo, needs, options.packCache);
  let filesWritten = 0;
  let filesUnchanged = 0;
  let bytesWritten = 0;
  const failed: FailedFile[] = [];
  const lost = new Set<string>();
  const report = writeProgress(emit, started, total, plan.bytes);
  const progress = () => report(filesWritten + filesUnchanged, bytesWritten);
  const ledger = {
    written(files: number, bytes: number) {
      filesWritten += files;
      bytesWritten += bytes;
      progress();
    },
    failed(path: string, message: string) {
      failed.push({ path, message });
      lost.add(path);
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

  const batch = new Batch(options.batch);
  /** Writes the batch: files in pack order, then links, symlinks, directories done. */
  async function write(): Promise<void> {
    options.onBatch?.(batch.entries, batch.blocks);
    for (const f of readOrder(repo, batch.files)) {
      await checkpoint(signal, "restore");
      if (output.stopped) break;
      if (plan.targetNotEmpty && await output.unchanged(f, part.chunker, blockLengths(repo, f))) {
        filesUnchanged++;
        progress();
        continue;
      }
      await output.file(f, blocksOf(f));
      progress();
    }
    await output.drain();
    // A hard link once its file is written: each name of a file after the first.
    for (const l of batch.links) {
      if (lost.has(l.of.rel)) {
        ledger.failed(l.rel, `hard link of ${l.of.rel}, which could not be restored`);
        continue;
      }
      const made = await output.link(l);
      if (made === "made") filesWritten++;
      else if (made === "kept") filesUnchanged++;
    }
    for (const s of batch.symlinks) await output.symlink(s);
    for (const d of batch.done) await output.done(d);
    batch.clear();
  }
  const writeIfFull = async () => {
    if (batch.full) await write();
  };

  let error: unknown = null;
  try {
    await output.begin(plan, ledger, exact);
    const links = output.hardLinks ? new HardLinks() : null;
    await walkSelection(part, options.include ?? [], presence, {
      dir: (d) => output.dir(d),
      file: (f) => {
        const of = links?.of(f);
        if (of) {
          batch.links.push({ ...f, of });
        } else {
          batch.files.push(f);
          batch.blocks += f.node.blocks.length;
        }
        return writeIfFull();
      },
      symlink: (s) => {
        batch.symlinks.push(s);
        return writeIfFull();
      },
      done: (d) => {
        batch.done.push(d);
        return writeIfFull();
      },
    });
    await write();
  } catch (e) {
    error = e;
  }
  // Files in hand are finished or removed: only whole files keep their names.
  await output.close();
  if (signal?.aborted) {
    const e = error instanceof Cancelled ? error : new Cancelled("restore cancelled");
    throw new Cancelled(e.message, {
      cause: e,
      committed: output.cancelled(filesWritten, total),
    });
  }
  if (error !== null) throw error;
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
