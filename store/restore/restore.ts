/**
 * The restore operation for directory trees: a plan (the dry run) and its
 * execution. Every block is checked against its SHA-256 as it is written;
 * every file is written under a temporary name and renamed when complete,
 * so no half-written file ever carries its final name.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import type { BlobStore } from "../drivers/types.ts";
import { IntegrityError, InvalidInput, MissingPacks, NotFound, StorageFull } from "../errors.ts";
import { type ManifestRecord, Repository } from "../repository.ts";
import type { BlobLocation } from "../block_index.ts";
import type { EventSink } from "../backup/events.ts";
import { reportStale, withLock } from "../lock.ts";
import { type ChunkerParams, splitAll } from "../../formats/chunker.ts";
import { equalBytes, sha256, toHex } from "../../formats/hash.ts";
import { NodeType, type TreeNode } from "../../formats/tree.ts";
import { includeMatcher } from "./glob.ts";
import { type StoredBlock, tempName, timeArg, type WriteOp } from "./file_writer.ts";
import { WriterPool } from "./writer_pool.ts";

/** A batch for a writer lane is sent at about this many bytes or steps. */
const BATCH_BYTES = 4 * 1024 * 1024;
const BATCH_OPS = 600;

/** Options of {@linkcode planRestore} and {@linkcode restore}. */
export interface RestoreOptions {
  /** Manifest file name; default: the newest. */
  readonly manifest?: string | null;
  /** Part of the backup to restore; default: the only tree part, or "files". */
  readonly part?: string;
  /** Restore into a non-empty target, rewriting only files that differ. */
  readonly overwrite?: boolean;
  /** Globs selecting what to restore (default: everything). */
  readonly include?: readonly string[];
  readonly onEvent?: EventSink;
  /** Writer threads (default: one per core; 0 writes in-process). */
  readonly workers?: number;
  /**
   * The repository of `store`, already open, to reuse: its index is loaded
   * once for several restores of one backup (a cluster's parts).
   */
  readonly repository?: Repository;
}

/** What a restore will do (the dry run's report). */
export interface RestorePlan {
  readonly manifest: string;
  readonly manifestId: string;
  readonly target: string;
  readonly files: number;
  readonly dirs: number;
  readonly symlinks: number;
  readonly bytes: number;
  /** Existing paths under the target that the restore would replace. */
  readonly replaced: string[];
  /** True when the target exists and is not empty. */
  readonly targetNotEmpty: boolean;
  /** Pack files the restore reads (for trees and file data), with their sizes, sorted. */
  readonly packs: { id: string; size: number }[];
  /**
   * Names of the `packs` the store does not hold, or holds with another size
   * than the index records (a partly staged repository), sorted. A restore
   * refuses to start while any are missing.
   */
  readonly missingPacks: string[];
  /**
   * Directories (`""` for the root) whose tree is in a missing pack: what is
   * below them is not counted above, and their own packs are not yet known.
   */
  readonly unlistedDirs: string[];
}

/** What a restore did. */
export interface RestoreResult extends RestorePlan {
  readonly filesWritten: number;
  readonly filesUnchanged: number;
  readonly bytesWritten: number;
  readonly durationMs: number;
}

interface Entry {
  readonly rel: string;
  readonly node: TreeNode;
}

interface Collected {
  readonly record: ManifestRecord;
  readonly chunker: ChunkerParams;
  readonly files: Entry[];
  readonly dirs: Entry[];
  readonly symlinks: Entry[];
  /** Packs (by index number) holding the trees of the walk, read or not. */
  readonly treePacks: Set<number>;
  /** Directories whose tree is in a missing pack (see {@linkcode RestorePlan.unlistedDirs}). */
  readonly unlistedDirs: string[];
}

async function collect(
  repo: Repository,
  options: RestoreOptions,
  presence: PackPresence,
): Promise<Collected> {
  const names = await repo.manifestNames();
  if (names.length === 0) {
    throw new InvalidInput(
      `repository ${repo.store.location} holds no backups: nothing to restore`,
    );
  }
  const record = await repo.loadManifest(options.manifest ?? names[names.length - 1]!);
  const trees = record.manifest.parts.filter((p) => p.kind === "tree");
  const part = options.part
    ? record.manifest.parts.find((p) => p.name === options.part)
    : trees.length === 1
    ? trees[0]
    : record.manifest.parts.find((p) => p.name === "files");
  if (!part) {
    throw new InvalidInput(
      `backup ${record.name} has no part ${options.part ?? "files"} (it has ${
        record.manifest.parts.map((p) => p.name).join(", ")
      }): name one with --part`,
    );
  }
  const include = includeMatcher(options.include ?? []);
  // decodeTree refuses unsafe names ("..", "/", NUL), so every path stays under the target.
  const out: Collected = {
    record,
    chunker: part.chunker ?? repo.config.chunker,
    files: [],
    dirs: [],
    symlinks: [],
    treePacks: new Set(),
    unlistedDirs: [],
  };
  const visit = async (id: Uint8Array, rel: string): Promise<boolean> => {
    let any = false;
    const what = rel === "" ? `backup ${record.name}` : rel;
    const tree = await presence.tree(id, what);
    out.treePacks.add(tree.packIndex);
    if (tree.nodes === null) out.unlistedDirs.push(rel);
    for (const node of tree.nodes ?? []) {
      const r = rel === "" ? node.name : `${rel}/${node.name}`;
      if (node.type === NodeType.dir) {
        const at = out.dirs.length;
        out.dirs.push({ rel: r, node });
        const inner = node.subtree ? await visit(node.subtree, r) : false;
        if (!inner && !include(r)) out.dirs.splice(at, 1);
        else any = true;
      } else if (include(r)) {
        (node.type === NodeType.file ? out.files : out.symlinks).push({ rel: r, node });
        any = true;
      }
    }
    return any;
  };
  await visit(part.root, "");
  return out;
}

/** Loads the index and collects what the restore reads. */
async function loadAndCollect(
  repo: Repository,
  options: RestoreOptions,
): Promise<{ c: Collected; presence: PackPresence }> {
  await repo.loadIndex();
  const presence = new PackPresence(repo);
  return { c: await collect(repo, options, presence), presence };
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch {
    return null;
  }
}

function targetState(target: string): boolean {
  const st = lstatOrNull(target);
  if (!st) return false;
  if (!st.isDirectory()) {
    throw new InvalidInput(
      `restore target "${target}" exists and is not a directory: give a directory path`,
    );
  }
  return fs.readdirSync(target).length > 0;
}

function packsOf(repo: Repository, c: Collected): { id: string; size: number }[] {
  const seen = new Map<number, { id: string; size: number }>();
  for (const p of c.treePacks) {
    const { id, size } = repo.index.pack(p);
    seen.set(p, { id: toHex(id), size });
  }
  for (const f of c.files) {
    for (const b of f.node.blocks) {
      const loc = repo.locate(b, f.rel);
      if (!seen.has(loc.packIndex)) {
        const p = repo.index.pack(loc.packIndex);
        seen.set(loc.packIndex, { id: toHex(p.id), size: p.size });
      }
    }
  }
  return [...seen.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** How many pack `stat` calls the restore precheck runs at once. */
const STAT_CONCURRENCY = 8;

/**
 * The restore precheck: which packs the store holds with the size the index
 * records, asked once per pack (a `stat`), a few at a time. A restore from a
 * partly staged repository learns here, before it writes anything, which
 * packs are still to be staged.
 */
class PackPresence {
  readonly #repo: Repository;
  readonly #known = new Map<string, Promise<boolean>>();
  /** Packs the store holds with another size than the index records. */
  readonly #incomplete = new Set<string>();

  constructor(repo: Repository) {
    this.#repo = repo;
  }

  /** True when the store holds pack `id` with `size` bytes. */
  has(id: string, size: number): Promise<boolean> {
    let known = this.#known.get(id);
    if (known === undefined) {
      known = this.#repo.store.stat({ kind: "pack", name: id }).then(
        (info) => {
          if (info.size === size) return true;
          this.#incomplete.add(id);
          return false;
        },
        (e: unknown) => {
          if (e instanceof NotFound) return false;
          throw e;
        },
      );
      this.#known.set(id, known);
    }
    return known;
  }

  /** The names of the `packs` the store lacks (or holds incomplete), sorted. */
  async missing(packs: readonly { id: string; size: number }[]): Promise<string[]> {
    const out: string[] = [];
    let next = 0;
    const lane = async () => {
      while (next < packs.length) {
        const p = packs[next++]!;
        if (!(await this.has(p.id, p.size))) out.push(p.id);
      }
    };
    await Promise.all(Array.from({ length: Math.min(STAT_CONCURRENCY, packs.length) }, lane));
    return out.sort();
  }

  /**
   * Tree `id` and the pack that holds it; `nodes` is null when that pack is
   * missing, so a partly staged repository still yields a plan.
   */
  async tree(
    id: Uint8Array,
    what: string,
  ): Promise<{ packIndex: number; nodes: TreeNode[] | null }> {
    const loc = this.#repo.locate(id, what);
    const size = this.#repo.index.pack(loc.packIndex).size;
    if (!(await this.has(toHex(loc.packId), size))) {
      return { packIndex: loc.packIndex, nodes: null };
    }
    return { packIndex: loc.packIndex, nodes: await this.#repo.loadTree(id, what) };
  }

  /** The error of a restore whose plan names missing packs: every one of them, in one line. */
  error(plan: RestorePlan): MissingPacks {
    const store = this.#repo.store;
    const staged = !store.capabilities.writable;
    const say = (names: string[], state: string) =>
      names.length === 1
        ? `pack ${names[0]} needed by this restore is ${state}`
        : `${names.length} packs needed by this restore are ${state}: ${names.join(", ")}`;
    const absent = plan.missingPacks.filter((n) => !this.#incomplete.has(n));
    const short = plan.missingPacks.filter((n) => this.#incomplete.has(n));
    const clauses: string[] = [];
    if (absent.length > 0) {
      clauses.push(
        say(
          absent,
          staged ? `not in ${store.location}` : `missing from the repository ${store.location}`,
        ),
      );
    }
    if (short.length > 0) {
      clauses.push(say(short, `incomplete in ${store.location} (the size differs from the index)`));
    }
    const them = plan.missingPacks.length === 1 ? "it" : "them";
    clauses.push(
      staged
        ? `stage ${them} and run again`
        : `copy ${them} back from another copy of the repository (bendsave verify lists every affected backup)`,
    );
    const more = plan.unlistedDirs.length > 0
      ? ` (${plan.unlistedDirs.length} of the directories to restore are listed in these packs, so more packs may be needed)`
      : "";
    return new MissingPacks(clauses.join("; ") + more, plan.missingPacks);
  }
}

async function buildPlan(
  repo: Repository,
  c: Collected,
  target: string,
  presence: PackPresence,
): Promise<RestorePlan> {
  const notEmpty = targetState(target);
  const packs = packsOf(repo, c);
  const replaced: string[] = [];
  if (notEmpty) {
    for (const e of [...c.files, ...c.symlinks]) {
      if (lstatOrNull(path.join(target, e.rel))) replaced.push(e.rel);
    }
  }
  return {
    manifest: c.record.name,
    manifestId: toHex(c.record.id),
    target,
    files: c.files.length,
    dirs: c.dirs.length,
    symlinks: c.symlinks.length,
    bytes: c.files.reduce((a, f) => a + f.node.size, 0),
    replaced,
    targetNotEmpty: notEmpty,
    packs,
    missingPacks: await presence.missing(packs),
    unlistedDirs: c.unlistedDirs,
  };
}

/** Works out what a restore would do, writing nothing (the dry run). */
export async function planRestore(
  store: BlobStore,
  target: string,
  options: RestoreOptions = {},
): Promise<RestorePlan> {
  const repo = options.repository ?? await Repository.open(store);
  const { c, presence } = await loadAndCollect(repo, options);
  return await buildPlan(repo, c, path.resolve(target), presence);
}

/** Keeps the most recently used whole packs in memory. */
class PackCache {
  readonly #repo: Repository;
  readonly #packs = new Map<number, Uint8Array>();
  readonly #whole: Set<number>;
  constructor(repo: Repository, whole: Set<number>) {
    this.#repo = repo;
    this.#whole = whole;
  }
  async stored(id: Uint8Array, loc: BlobLocation, what: string): Promise<Uint8Array> {
    if (!this.#whole.has(loc.packIndex)) {
      return await this.#repo.loadPackRange(loc.packId, loc.offset, loc.storedLength, what);
    }
    let pack = this.#packs.get(loc.packIndex);
    if (!pack) {
      const size = this.#repo.index.pack(loc.packIndex).size;
      pack = await this.#repo.loadPackRange(loc.packId, 0, size, what);
      if (this.#packs.size >= 2) this.#packs.delete(this.#packs.keys().next().value!);
      this.#packs.set(loc.packIndex, pack);
    }
    void id;
    return pack.subarray(loc.offset, loc.offset + loc.storedLength);
  }
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

/** The files of `c` sorted by where their first block lives, so packs are read in order. */
function readOrder(repo: Repository, c: Collected): Entry[] {
  return c.files.map((f) => {
    const loc = f.node.blocks.length ? repo.locate(f.node.blocks[0]!, f.rel) : null;
    return { f, key: loc ? loc.packIndex * 2 ** 32 + loc.offset : -1 };
  }).sort((a, b) => a.key - b.key).map((x) => x.f);
}

/** Packs of which the restore needs more than half: read whole, once. */
function wholePacks(repo: Repository, c: Collected): Set<number> {
  const needed = new Map<number, number>();
  const counted = new Set<string>();
  for (const f of c.files) {
    for (const b of f.node.blocks) {
      const hex = toHex(b);
      if (counted.has(hex)) continue;
      counted.add(hex);
      const loc = repo.locate(b, f.rel);
      needed.set(loc.packIndex, (needed.get(loc.packIndex) ?? 0) + loc.storedLength);
    }
  }
  const whole = new Set<number>();
  for (const [p, bytes] of needed) if (bytes > repo.index.pack(p).size / 2) whole.add(p);
  return whole;
}

function fsError(e: unknown, p: string): Error {
  const code = (e as { code?: string }).code;
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new StorageFull(
      `the disk holding "${p}" is full: free space (or restore elsewhere) and run the restore again`,
    );
  }
  return e as Error;
}

/** True when the existing file at `p` has exactly the content of `node`. */
function sameContent(p: string, node: TreeNode, chunker: ChunkerParams): boolean {
  const st = lstatOrNull(p);
  if (!st || !st.isFile() || st.size !== node.size) return false;
  return sameBlocks(fs.readFileSync(p), node, chunker);
}

/**
 * Restores a backup into `target`. Refuses a non-empty target unless
 * `overwrite` is set; then only files whose content differs are rewritten.
 */
export async function restore(
  store: BlobStore,
  target: string,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const emit: EventSink = options.onEvent ?? (() => {});
  const repo = options.repository ?? await Repository.open(store); // a missing or newer repository fails before any lock is written
  // A shared lock keeps a vacuum from deleting packs this restore reads.
  return await withLock(
    store,
    "shared",
    "restore",
    reportStale(emit),
    () => restoreLocked(repo, target, options, emit),
  );
}

async function restoreLocked(
  repo: Repository,
  target: string,
  options: RestoreOptions,
  emit: EventSink,
): Promise<RestoreResult> {
  const started = Date.now();
  const abs = path.resolve(target);
  const { c, presence } = await loadAndCollect(repo, options);
  const plan = await buildPlan(repo, c, abs, presence);
  if (plan.targetNotEmpty && !options.overwrite) {
    throw new InvalidInput(
      `restore target "${abs}" is not empty: restore into an empty directory, or pass --overwrite to rewrite files that differ`,
    );
  }
  if (plan.missingPacks.length > 0) throw presence.error(plan);
  try {
    fs.mkdirSync(abs, { recursive: true });
    for (const d of c.dirs) fs.mkdirSync(path.join(abs, d.rel), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw fsError(e, abs);
  }

  const order = readOrder(repo, c);
  const cache = new PackCache(repo, wholePacks(repo, c));

  let filesWritten = 0;
  let filesUnchanged = 0;
  let bytesWritten = 0;
  const report = writeProgress(emit, started, c.files.length, plan.bytes);
  const progress = () => report(filesWritten + filesUnchanged, bytesWritten);
  // Files are written on writer lanes (one per core): this thread reads packs in order.
  const pool = await WriterPool.start(
    (r) => {
      filesWritten += r.filesDone;
      bytesWritten += r.bytes;
      progress();
    },
    options.workers,
    (message) => emit({ type: "warning", message }),
  );
  try {
    let lane = 0;
    let batch: WriteOp[] = [];
    let transfer: ArrayBuffer[] = [];
    let batchBytes = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      await pool.send(lane, batch, transfer);
      batch = [];
      transfer = [];
      batchBytes = 0;
    };
    for (const [i, f] of order.entries()) {
      if (pool.error) break;
      const final = path.join(abs, f.rel);
      if (plan.targetNotEmpty && sameContent(final, f.node, c.chunker)) {
        filesUnchanged++;
        setMeta(final, f.node);
        continue;
      }
      batch.push({ op: "begin", file: i, final, rel: f.rel });
      let blocks: StoredBlock[] = [];
      for (const id of f.node.blocks) {
        const loc = repo.locate(id, f.rel);
        // A copy of its own, so it can be handed to the writer thread.
        const data = (await cache.stored(id, loc, f.rel)).slice();
        blocks.push({
          id,
          pack: toHex(loc.packId),
          codec: loc.codec,
          rawLength: loc.rawLength,
          data,
        });
        transfer.push(data.buffer as ArrayBuffer);
        batchBytes += data.length;
        if (batchBytes >= BATCH_BYTES) {
          batch.push({ op: "blocks", file: i, blocks });
          blocks = [];
          await flush(); // a large file stays on its lane
        }
      }
      if (blocks.length) batch.push({ op: "blocks", file: i, blocks });
      batch.push({
        op: "end",
        file: i,
        size: f.node.size,
        mode: f.node.mode,
        mtimeMs: f.node.mtimeMs,
      });
      if (batchBytes >= BATCH_BYTES || batch.length >= BATCH_OPS) {
        await flush();
        lane = (lane + 1) % pool.lanes;
      }
    }
    await flush();
    await pool.drain();
  } finally {
    await pool.close();
  }
  const failure = pool.error;
  if (failure) {
    if (failure.kind === "integrity") throw new IntegrityError(failure.message);
    if (failure.kind === "full") throw new StorageFull(failure.message);
    if (failure.kind === "in-the-way") throw new InvalidInput(failure.message);
    throw new Error(failure.message);
  }
  for (const s of c.symlinks) {
    const final = path.join(abs, s.rel);
    const tmp = tempName(final);
    try {
      fs.symlinkSync(s.node.linkTarget ?? "", tmp);
      fs.renameSync(tmp, final);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw fsError(e, final);
    }
    try {
      fs.lutimesSync(final, timeArg(s.node.mtimeMs), timeArg(s.node.mtimeMs));
    } catch {
      // some file systems cannot set symlink times; the link itself is restored
    }
  }
  // Directory metadata last, deepest first (writing into a directory changes its mtime).
  for (const d of [...c.dirs].reverse()) setMeta(path.join(abs, d.rel), d.node);
  return { ...plan, filesWritten, filesUnchanged, bytesWritten, durationMs: Date.now() - started };
}

function setMeta(p: string, node: TreeNode): void {
  fs.chmodSync(p, node.mode);
  fs.utimesSync(p, timeArg(node.mtimeMs), timeArg(node.mtimeMs));
}

/** Saves to a blob store that run at once during a restore into it. */
const SAVE_CONCURRENCY = 4;

async function buildStorePlan(
  repo: Repository,
  c: Collected,
  target: BlobStore,
  presence: PackPresence,
): Promise<{ plan: RestorePlan; existing: Map<string, number> }> {
  const existing = new Map<string, number>();
  for await (const f of target.list("raw")) existing.set(f.name, f.size);
  const packs = packsOf(repo, c);
  const plan: RestorePlan = {
    manifest: c.record.name,
    manifestId: toHex(c.record.id),
    target: target.location,
    files: c.files.length,
    dirs: c.dirs.length,
    symlinks: c.symlinks.length,
    bytes: c.files.reduce((a, f) => a + f.node.size, 0),
    replaced: c.files.filter((f) => existing.has(f.rel)).map((f) => f.rel),
    targetNotEmpty: existing.size > 0,
    packs,
    missingPacks: await presence.missing(packs),
    unlistedDirs: c.unlistedDirs,
  };
  return { plan, existing };
}

/**
 * Works out what a restore into the objects of a blob store would do (the
 * dry run of {@linkcode restoreToStore}), writing nothing.
 */
export async function planRestoreToStore(
  store: BlobStore,
  target: BlobStore,
  options: RestoreOptions = {},
): Promise<RestorePlan> {
  const repo = options.repository ?? await Repository.open(store);
  const { c, presence } = await loadAndCollect(repo, options);
  return (await buildStorePlan(repo, c, target, presence)).plan;
}

/**
 * Restores a backed-up tree into a blob store (a Databend cluster's S3
 * storage): each file becomes the object named by its path. Every block is
 * checked against its hash before the object is saved, and an object is
 * saved whole or not at all. Directories and their metadata have no
 * objects; symlinks cannot be stored and are reported. Refuses a store that
 * holds objects unless `overwrite` is set; then only objects whose content
 * differs are saved again.
 */
export async function restoreToStore(
  store: BlobStore,
  target: BlobStore,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const emit: EventSink = options.onEvent ?? (() => {});
  const repo = options.repository ?? await Repository.open(store);
  return await withLock(store, "shared", "restore", reportStale(emit), async () => {
    const started = Date.now();
    const { c, presence } = await loadAndCollect(repo, options);
    const { plan, existing } = await buildStorePlan(repo, c, target, presence);
    if (plan.targetNotEmpty && !options.overwrite) {
      throw new InvalidInput(
        `restore target ${target.location} holds ${existing.size} objects: restore into an empty location, or pass --overwrite to rewrite objects that differ`,
      );
    }
    if (plan.missingPacks.length > 0) throw presence.error(plan);
    for (const s of c.symlinks) {
      emit({
        type: "warning",
        path: s.rel,
        message: `symlink to ${
          s.node.linkTarget ?? ""
        } not restored: ${target.location} cannot hold links`,
      });
    }
    const cache = new PackCache(repo, wholePacks(repo, c));
    let filesWritten = 0;
    let filesUnchanged = 0;
    let bytesWritten = 0;
    const progress = writeProgress(emit, started, c.files.length, plan.bytes);
    const inFlight = new Set<Promise<void>>();
    let failure: unknown = null;
    for (const f of readOrder(repo, c)) {
      if (failure !== null) break;
      if (options.overwrite && existing.get(f.rel) === f.node.size) {
        const current = await target.load({ kind: "raw", name: f.rel });
        if (sameBlocks(current, f.node, c.chunker)) {
          filesUnchanged++;
          continue;
        }
      }
      const data = new Uint8Array(f.node.size);
      let pos = 0;
      for (const id of f.node.blocks) {
        const loc = repo.locate(id, f.rel);
        const raw = repo.decodeStored(id, loc, await cache.stored(id, loc, f.rel), f.rel);
        if (pos + raw.length > data.length) break;
        data.set(raw, pos);
        pos += raw.length;
      }
      if (pos !== f.node.size) {
        throw new IntegrityError(
          `the blocks of ${f.rel} in backup ${plan.manifest} do not add up to its size ${f.node.size}: run bendsave verify`,
        );
      }
      const save: Promise<void> = target.save({ kind: "raw", name: f.rel }, data).then(
        () => {
          filesWritten++;
          bytesWritten += data.length;
          inFlight.delete(save);
        },
        (e: unknown) => {
          failure ??= e;
          inFlight.delete(save);
        },
      );
      inFlight.add(save);
      if (inFlight.size >= SAVE_CONCURRENCY) await Promise.race(inFlight);
      progress(filesWritten + filesUnchanged, bytesWritten);
    }
    await Promise.all(inFlight);
    if (failure !== null) throw failure;
    return {
      ...plan,
      filesWritten,
      filesUnchanged,
      bytesWritten,
      durationMs: Date.now() - started,
    };
  });
}

/** True when `data` cut by `chunker` gives exactly the blocks of `node`. */
function sameBlocks(data: Uint8Array, node: TreeNode, chunker: ChunkerParams): boolean {
  if (data.length !== node.size) return false;
  const lens = splitAll(chunker, data);
  if (lens.length !== node.blocks.length) return false;
  let pos = 0;
  for (let i = 0; i < lens.length; i++) {
    if (!equalBytes(sha256(data.subarray(pos, pos + lens[i]!)), node.blocks[i]!)) return false;
    pos += lens[i]!;
  }
  return true;
}
