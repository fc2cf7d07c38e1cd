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
import { randomBytes } from "node:crypto";
import type { BlobStore } from "../drivers/types.ts";
import {
  AccessDenied,
  IntegrityError,
  InvalidInput,
  IoError,
  MissingPacks,
  NotFound,
  ReadOnlyError,
  RestoreIncomplete,
  StorageFull,
} from "../errors.ts";
import { type ManifestRecord, Repository } from "../repository.ts";
import type { BlobLocation } from "../block_index.ts";
import type { EventSink } from "../backup/events.ts";
import { type CancelOptions, checkpoint, throwIfCancelled } from "../cancel.ts";
import { Cancelled } from "../errors.ts";
import { reportStale, withLock } from "../lock.ts";
import { type ChunkerParams, splitAll } from "../../formats/chunker.ts";
import { equalBytes, sha256, toHex } from "../../formats/hash.ts";
import { NodeType, type TreeNode } from "../../formats/tree.ts";
import { includeMatcher } from "./glob.ts";
import { displayPath, joinPath, lstatPath, renamePath } from "../_byte_path.ts";
import { latestBackup, readableManifests } from "../source_groups.ts";
import {
  type FailedFile,
  type StoredBlock,
  tempName,
  timeArg,
  type WriteError,
  type WriteOp,
  type WriteReport,
} from "./file_writer.ts";
import { WorkerPool } from "../worker_pool.ts";
import { ENGINE_JOBS } from "../worker_jobs.ts";
import { walkTree } from "../walker.ts";
import { ownerOf, type OwnerOptions, type Ownership, ownership } from "./owner.ts";

/** A batch for a writer lane is sent at about this many bytes or steps. */
const BATCH_BYTES = 4 * 1024 * 1024;
const BATCH_OPS = 600;

/**
 * Options of {@linkcode planRestore} and {@linkcode restore}. Ownership
 * ({@linkcode OwnerOptions}) applies to restores into a directory. A
 * `signal` that aborts stops the restore between files with `Cancelled`:
 * files already renamed into place stay, the temporary files of the others
 * are removed, the lock is released.
 */
export interface RestoreOptions extends OwnerOptions, CancelOptions {
  /**
   * Manifest file name; default: the newest backup of `source`, or of the
   * only source the repository holds (several sources and no `source` are
   * refused: see {@linkcode latestBackup}).
   */
  readonly manifest?: string | null;
  /** With no `manifest`: the source (key, description or path) whose newest backup to restore. */
  readonly source?: string;
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
  /**
   * Of the `files`, how many are restored as hard links of another restored
   * file (format 1.2); their bytes are not in `bytes`.
   */
  readonly hardLinks: number;
  /** Whether the restore sets owners (directory restores; see {@linkcode Ownership}). */
  readonly ownership: Ownership;
  /** Existing paths under the target that the restore would replace. */
  readonly replaced: string[];
  /**
   * Existing paths where the backup has a directory but the target holds a
   * symlink or a file: the link (never what it points to) or the file is
   * removed and a directory made in its place.
   */
  readonly replacedByDirectory: { path: string; was: string }[];
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
  /** Files that could not be restored (damaged or missing blocks), with why; the rest were. */
  readonly failed: readonly FailedFile[];
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
  /**
   * Names that are not valid UTF-8, by the `rel` of their directory: such an
   * entry is restored under the placeholder `seg` (its `rel` ends in it) and
   * renamed to its exact bytes last ({@linkcode renameExact}).
   */
  readonly exact: Map<string, { seg: string; bytes: Uint8Array }[]>;
}

async function collect(
  repo: Repository,
  options: RestoreOptions,
  presence: PackPresence,
): Promise<Collected> {
  const record = options.manifest ? await repo.loadManifest(options.manifest) : latestBackup(
    await readableManifests(repo, (message) => options.onEvent?.({ type: "warning", message })),
    { source: options.source, location: repo.store.location },
  );
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
    exact: new Map(),
  };
  // `shown` is `rel` with the lossy names: what --include matches. `any`
  // says whether anything below was selected; `at` is the directory's place
  // in `out.dirs`, which it leaves when nothing below it was.
  interface Dir {
    readonly rel: string;
    readonly shown: string;
    readonly parent: Dir | null;
    readonly at: number;
    any: boolean;
  }
  const selected = (d: Dir | null) => {
    for (let p = d; p !== null && !p.any; p = p.parent) p.any = true;
  };
  await walkTree<Dir>(part.root, { rel: "", shown: "", parent: null, at: -1, any: false }, {
    load: async (id, d) => {
      const tree = await presence.tree(id, d.rel === "" ? `backup ${record.name}` : d.rel);
      out.treePacks.add(tree.packIndex);
      if (tree.nodes === null) out.unlistedDirs.push(d.rel);
      return tree.nodes;
    },
    enter: (node, d) => {
      const seg = node.nameBytes ? placeholder(out.exact, d.rel, node.nameBytes) : node.name;
      const r = d.rel === "" ? seg : `${d.rel}/${seg}`;
      const s = d.shown === "" ? node.name : `${d.shown}/${node.name}`;
      if (node.type === NodeType.dir) {
        out.dirs.push({ rel: r, node });
        const inner: Dir = { rel: r, shown: s, parent: d, at: out.dirs.length - 1, any: false };
        if (node.subtree?.length) return inner;
        if (include(s)) selected(d);
        else out.dirs.pop(); // an empty directory not selected
      } else if (include(s)) {
        (node.type === NodeType.file ? out.files : out.symlinks).push({ rel: r, node });
        selected(d);
      }
      return undefined;
    },
    leave: (d) => {
      if (d.parent === null) return;
      if (d.any || include(d.shown)) selected(d.parent);
      else out.dirs.splice(d.at, 1); // nothing below was selected: its entries left already
    },
  });
  return out;
}

/** Registers a name that is not valid UTF-8 in directory `dir`; returns its placeholder. */
function placeholder(
  exact: Collected["exact"],
  dir: string,
  bytes: Uint8Array,
): string {
  const seg = `.${randomBytes(6).toString("hex")}.bendsave-name`;
  const list = exact.get(dir) ?? [];
  list.push({ seg, bytes });
  exact.set(dir, list);
  return seg;
}

/**
 * Renames the entries of directory `dir` (relative to `abs`) whose names are
 * not valid UTF-8 from their placeholders to their exact names. Called for
 * each directory, deepest first, before its own metadata is set (a rename
 * changes the directory's mtime). Like every restore write, it replaces a
 * file or symlink in its place and never follows one.
 */
function renameExact(abs: string, c: Collected, dir: string): void {
  for (const { seg, bytes } of c.exact.get(dir) ?? []) {
    const from = path.join(abs, dir, seg);
    if (!lstatOrNull(from)) continue; // not restored (--include, or it failed)
    const to = joinPath(path.join(abs, dir), bytes);
    try {
      renamePath(from, to);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "ENOTEMPTY" || code === "EEXIST" || code === "EISDIR" || code === "ENOTDIR") {
        throw new InvalidInput(
          `cannot restore "${
            displayPath(to)
          }": something else is in its place in the target; move it away`,
        );
      }
      throw fsError(e, displayPath(to));
    }
  }
}

/**
 * Before a restore into a non-empty target: moves each existing entry whose
 * name is not valid UTF-8 and that the restore writes to its placeholder,
 * parents first, so that the restore treats it like any existing entry (a
 * file with the same content stays, a symlink where the backup has a
 * directory is replaced, never followed), and {@linkcode renameExact} puts
 * it back under its exact name.
 */
function adoptExact(abs: string, c: Collected): void {
  // Map order is the walk's: a directory's own entry comes before its contents.
  const restored = new Set(c.dirs.map((d) => d.rel));
  for (const [dir, list] of c.exact) {
    if (dir !== "" && !restored.has(dir)) continue; // renameExact would not put it back
    for (const { seg, bytes } of list) {
      const at = joinPath(path.join(abs, dir), bytes);
      try {
        lstatPath(at);
      } catch {
        continue; // not in the target (or its directory is not)
      }
      try {
        renamePath(at, path.join(abs, dir, seg));
      } catch (e) {
        throw fsError(e, displayPath(at));
      }
    }
  }
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

/** A file restored as a hard link of a file the restore writes. */
interface Link extends Entry {
  /** The written file it is a link of. */
  readonly of: Entry;
}

/**
 * Splits the files into those to write and hard links (format 1.2): files
 * with `nlink` above 1 and the same device, inode and blocks were one file
 * under several names. The first of them that the restore includes is
 * written; the others become links of it.
 */
function splitHardLinks(files: readonly Entry[]): { write: Entry[]; links: Link[] } {
  const firsts = new Map<string, Entry[]>();
  const write: Entry[] = [];
  const links: Link[] = [];
  for (const f of files) {
    const n = f.node;
    if (!n.nlink || n.nlink < 2 || n.inode === 0) {
      write.push(f);
      continue;
    }
    const key = `${n.device}:${n.inode}`;
    const known = firsts.get(key) ?? [];
    const of = known.find((k) =>
      k.node.size === n.size && k.node.blocks.length === n.blocks.length &&
      k.node.blocks.every((b, i) => equalBytes(b, n.blocks[i]!))
    );
    if (of) {
      links.push({ ...f, of });
    } else {
      known.push(f);
      firsts.set(key, known);
      write.push(f);
    }
  }
  return { write, links };
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

/**
 * What an existing path is, for a plan: "symlink to X" or "file". Only
 * called on paths whose parents are real directories.
 */
function describeExisting(p: string, st: fs.Stats): string {
  if (!st.isSymbolicLink()) return st.isFile() ? "file" : "special file";
  let to = "";
  try {
    to = fs.readlinkSync(p);
  } catch {
    // unreadable link: still replaced
  }
  return `symlink to ${to}`;
}

/**
 * The directories of `c` that exist in `target` as something else (a
 * symlink, a file), and those missing. Nothing below either is looked at:
 * a path below a link must never be resolved through it.
 */
function dirsInTheWay(
  target: string,
  c: Collected,
): { inTheWay: { path: string; was: string }[]; fresh: string[] } {
  const inTheWay: { path: string; was: string }[] = [];
  const fresh: string[] = []; // replaced or missing: nothing below exists
  for (const d of c.dirs) {
    if (under(d.rel, fresh)) continue;
    const p = path.join(target, d.rel);
    const st = lstatOrNull(p);
    if (st?.isDirectory()) continue;
    fresh.push(d.rel);
    if (st) inTheWay.push({ path: d.rel, was: describeExisting(p, st) });
  }
  return { inTheWay, fresh };
}

/** True when `rel` is below one of `dirs` (relative paths). */
function under(rel: string, dirs: readonly string[]): boolean {
  return dirs.some((d) => rel.startsWith(d + "/"));
}

async function buildPlan(
  repo: Repository,
  c: Collected,
  target: string,
  presence: PackPresence,
  options: OwnerOptions,
): Promise<RestorePlan> {
  const notEmpty = targetState(target);
  const packs = packsOf(repo, c);
  const replaced: string[] = [];
  const { inTheWay, fresh } = notEmpty ? dirsInTheWay(target, c) : { inTheWay: [], fresh: [] };
  if (notEmpty) {
    for (const e of [...c.files, ...c.symlinks]) {
      if (!under(e.rel, fresh) && lstatOrNull(path.join(target, e.rel))) replaced.push(e.rel);
    }
  }
  const { write, links } = splitHardLinks(c.files);
  return {
    manifest: c.record.name,
    manifestId: toHex(c.record.id),
    target,
    files: c.files.length,
    dirs: c.dirs.length,
    symlinks: c.symlinks.length,
    bytes: write.reduce((a, f) => a + f.node.size, 0),
    hardLinks: links.length,
    ownership: ownership(options),
    replaced,
    replacedByDirectory: inTheWay,
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
  return await buildPlan(repo, c, path.resolve(target), presence, options);
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

/** A system error of writing the restore target as one domain error with the fix. */
function fsError(e: unknown, p: string): Error {
  const code = (e as { code?: string }).code;
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new StorageFull(
      `the disk holding "${p}" is full: free space (or restore elsewhere) and run the restore again`,
    );
  }
  if (code === "EROFS") {
    return new ReadOnlyError(
      `restore target "${p}" is read-only (EROFS): restore elsewhere, or remount it read-write`,
    );
  }
  if (code === "EACCES" || code === "EPERM") {
    return new AccessDenied(
      `restore target "${p}" cannot be written (${code}: not permitted, or immutable): restore elsewhere, or fix its permissions (lsattr shows an immutable flag)`,
    );
  }
  if (code === "ENAMETOOLONG") {
    return new InvalidInput(
      `restore target "${p}" has a path longer than the system allows (ENAMETOOLONG): restore into a shorter path`,
    );
  }
  if (code !== undefined) {
    return new IoError(`cannot write restore target "${p}" (${code}): ${(e as Error).message}`);
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
  throwIfCancelled(options.signal, "restore");
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
  const plan = await buildPlan(repo, c, abs, presence, options);
  if (plan.targetNotEmpty && !options.overwrite) {
    throw new InvalidInput(
      `restore target "${abs}" is not empty: restore into an empty directory, or pass --overwrite to rewrite files that differ`,
    );
  }
  if (plan.missingPacks.length > 0) throw presence.error(plan);
  throwIfCancelled(options.signal, "restore");
  if (plan.targetNotEmpty) adoptExact(abs, c);
  try {
    fs.mkdirSync(abs, { recursive: true });
    makeDirs(abs, c.dirs);
  } catch (e) {
    throw fsError(e, abs);
  }

  const { write, links } = splitHardLinks(c.files);
  const order = readOrder(repo, { ...c, files: write });
  const cache = new PackCache(repo, wholePacks(repo, c));

  let filesWritten = 0;
  let filesUnchanged = 0;
  let bytesWritten = 0;
  // Stops between files and blocks: what is renamed into place stays, the pool removes the rest.
  const stopIfCancelled = async () => {
    try {
      await checkpoint(options.signal, "restore");
    } catch (e) {
      throw new Cancelled((e as Error).message, {
        cause: e,
        committed: `${filesWritten} of ${write.length} files were restored into ${abs}, ` +
          `no temporary file is left: restore again with --overwrite to complete it`,
      });
    }
  };
  const report = writeProgress(emit, started, write.length, plan.bytes);
  const progress = () => report(filesWritten + filesUnchanged, bytesWritten);
  // Files are written on writer lanes (one per core): this thread reads packs in order.
  const pool = await WorkerPool.start(ENGINE_JOBS, {
    ...(options.workers === undefined ? {} : { workers: options.workers }),
    name: "writer",
    fallback: "writing files on the main thread",
    onWarning: (message) => emit({ type: "warning", message }),
  });
  // What the lanes reported: the first error that stops the restore, the files left out.
  const writes = { error: null as WriteError | null, failed: [] as FailedFile[] };
  const onReport = (r: WriteReport) => {
    if (r.error) writes.error ??= r.error;
    writes.failed.push(...r.failed);
    filesWritten += r.filesDone;
    bytesWritten += r.bytes;
    progress();
  };
  const onFailure = (e: unknown) => {
    writes.error ??= { kind: "other", message: (e as Error).message };
  };
  try {
    let lane = 0;
    let batch: WriteOp[] = [];
    let transfer: ArrayBuffer[] = [];
    let batchBytes = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      // A large file's batches all go to one lane (its writer keeps the file open).
      try {
        const job = await pool.submit("restore.write", batch, { lane, transfer });
        job.result.then(onReport, onFailure).catch(onFailure);
      } catch (e) {
        onFailure(e);
      }
      batch = [];
      transfer = [];
      batchBytes = 0;
    };
    for (const [i, f] of order.entries()) {
      await stopIfCancelled();
      if (writes.error) break;
      const final = path.join(abs, f.rel);
      if (plan.targetNotEmpty && sameContent(final, f.node, c.chunker)) {
        filesUnchanged++;
        setMeta(final, f.node, ownerOf(f.node, options));
        continue;
      }
      batch.push({ op: "begin", file: i, final, rel: f.rel });
      let blocks: StoredBlock[] = [];
      let unreadable: string | null = null;
      for (const id of f.node.blocks) {
        await stopIfCancelled();
        let loc: BlobLocation;
        let stored: Uint8Array;
        try {
          loc = repo.locate(id, f.rel);
          stored = await cache.stored(id, loc, f.rel);
        } catch (e) {
          if (!(e instanceof IntegrityError)) throw e;
          unreadable = e.message; // this file is left out; the others go on
          break;
        }
        // A copy of its own, so it can be handed to the writer thread.
        const data = stored.slice();
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
      if (unreadable !== null) {
        batch.push({ op: "abort", file: i, message: unreadable });
        continue;
      }
      const owner = ownerOf(f.node, options);
      batch.push({
        op: "end",
        file: i,
        size: f.node.size,
        mode: f.node.mode,
        mtimeMs: f.node.mtimeMs,
        ...(owner ? { owner } : {}),
      });
      if (batchBytes >= BATCH_BYTES || batch.length >= BATCH_OPS) {
        await flush();
        lane = (lane + 1) % pool.lanes;
      }
    }
    await flush();
    await pool.drain().catch(onFailure);
  } finally {
    await pool.close();
  }
  await stopIfCancelled();
  const failure = writes.error;
  if (failure) {
    if (failure.kind === "integrity") throw new IntegrityError(failure.message);
    if (failure.kind === "full") throw new StorageFull(failure.message);
    if (failure.kind === "in-the-way") throw new InvalidInput(failure.message);
    if (failure.code !== undefined) {
      throw fsError({ code: failure.code, message: failure.message }, failure.path ?? abs);
    }
    throw new IoError(failure.message);
  }
  const failed: FailedFile[] = [...writes.failed];
  const lost = new Set(failed.map((f) => f.path));
  // Hard links once every file is written: each name of a file after the first.
  for (const l of links) {
    if (lost.has(l.of.rel)) {
      failed.push({
        path: l.rel,
        message: `hard link of ${l.of.rel}, which could not be restored`,
      });
      continue;
    }
    if (lstatOrNull(path.join(abs, l.rel))?.isDirectory()) {
      failed.push({
        path: l.rel,
        message:
          `cannot restore file ${l.rel}: a directory is in its place in the target; move it away`,
      });
      continue;
    }
    if (restoreLink(path.join(abs, l.of.rel), path.join(abs, l.rel), l.rel)) filesWritten++;
    else filesUnchanged++;
  }
  for (const s of c.symlinks) {
    const final = path.join(abs, s.rel);
    if (lstatOrNull(final)?.isDirectory()) {
      failed.push({
        path: s.rel,
        message:
          `cannot restore symlink ${s.rel}: a directory is in its place in the target; move it away`,
      });
      continue;
    }
    const tmp = tempName(final);
    try {
      fs.symlinkSync(s.node.linkTarget ?? "", tmp);
      fs.renameSync(tmp, final); // replaces a link or file at `final`, never follows it
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw fsError(e, final);
    }
    const owner = ownerOf(s.node, options);
    if (owner) chownLink(final, owner);
    try {
      fs.lutimesSync(final, timeArg(s.node.mtimeMs), timeArg(s.node.mtimeMs));
    } catch {
      // some file systems cannot set symlink times; the link itself is restored
    }
  }
  // Directory metadata last, deepest first (writing into a directory changes its mtime).
  for (const d of [...c.dirs].reverse()) {
    renameExact(abs, c, d.rel);
    setMeta(path.join(abs, d.rel), d.node, ownerOf(d.node, options));
  }
  renameExact(abs, c, "");
  return finish(plan, { failed, filesWritten, filesUnchanged, bytesWritten }, started);
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

/**
 * Makes the directories of a restore, parents first. An existing directory
 * is kept; a symlink or file where the backup has a directory is removed
 * (the link itself, never what it points to) and a directory made in its
 * place, so nothing is ever written through a link.
 */
function makeDirs(abs: string, dirs: readonly Entry[]): void {
  for (const d of dirs) {
    const p = path.join(abs, d.rel);
    const st = lstatOrNull(p);
    if (st?.isDirectory()) continue;
    if (st) fs.unlinkSync(p);
    fs.mkdirSync(p, { mode: 0o700 });
  }
}

/**
 * Sets owner, mode and times of `p`. The owner comes first: chown clears the
 * setuid and setgid bits, even as root.
 */
function setMeta(p: string, node: TreeNode, owner: readonly [number, number] | null = null): void {
  // chmod and utimes follow a symlink: one at `p` is never touched through.
  if (lstatOrNull(p)?.isSymbolicLink() !== false) return;
  if (owner) chownLink(p, owner);
  fs.chmodSync(p, node.mode);
  fs.utimesSync(p, timeArg(node.mtimeMs), timeArg(node.mtimeMs));
}

/** Sets the owner of `p` itself, never of what a symlink there points to (lchown). */
function chownLink(p: string, [uid, gid]: readonly [number, number]): void {
  try {
    fs.lchownSync(p, uid, gid);
  } catch (e) {
    throw new InvalidInput(
      `cannot set the owner of "${p}" to ${uid}:${gid} (${
        (e as Error).message
      }): restore with --no-owner to leave owners alone`,
    );
  }
}

/**
 * Makes `final` a hard link of the restored file `existing` (under a
 * temporary name, then renamed into place); false when it already is one.
 */
function restoreLink(existing: string, final: string, rel: string): boolean {
  const want = fs.lstatSync(existing);
  const st = lstatOrNull(final);
  if (st && st.ino === want.ino && st.dev === want.dev) return false;
  if (st?.isDirectory()) {
    throw new InvalidInput(
      `cannot restore file ${rel}: a directory is in its place in the target; move it away`,
    );
  }
  const tmp = tempName(final);
  try {
    fs.linkSync(existing, tmp);
    fs.renameSync(tmp, final);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw fsError(e, final);
  }
  return true;
}

const MiB = 1024 * 1024;
/** Saves to a blob store that run at once during a restore into it, at most. */
const SAVE_CONCURRENCY = 8;
/**
 * Bytes of object data a restore into a blob store holds for its saves in
 * flight, at most: an object built in memory counts its size, a streamed one
 * {@linkcode STREAM_COST}. One object larger than this still goes, alone.
 */
const SAVE_BYTES = 64 * MiB;
/**
 * Objects larger than this are streamed to a target with `saveStream`, one
 * block at a time, instead of being built in memory.
 */
const STREAM_THRESHOLD = 16 * MiB;
/**
 * What a streamed save holds in memory, at most, counted against
 * {@linkcode SAVE_BYTES}: a block being decoded and the driver's window
 * (two 8 MiB parts for S3), with room to spare.
 */
const STREAM_COST = 32 * MiB;

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
    hardLinks: 0,
    ownership: "off",
    replaced: c.files.filter((f) => existing.has(f.rel)).map((f) => f.rel),
    replacedByDirectory: [],
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
 * saved whole or not at all. Objects larger than 16 MiB are streamed, block
 * by block, to a target with `saveStream` (a damaged block aborts the save:
 * nothing takes the name and the file is reported in `failed`); the saves
 * in flight hold at most about 64 MiB of object data. Directories and their metadata have no
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
  throwIfCancelled(options.signal, "restore");
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
    if (c.exact.size > 0) {
      const [dir, [first]] = [...c.exact][0]!;
      throw new InvalidInput(
        `backup ${plan.manifest} holds names that are not valid UTF-8 (in "${dir}", ${
          displayPath(first!.bytes)
        }), which cannot be object names in ${target.location}: restore it into a directory`,
      );
    }
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
    let held = 0; // bytes counted against SAVE_BYTES
    let failure: unknown = null;
    const failed: FailedFile[] = [];
    /** Waits until a save costing `cost` bytes fits beside those in flight. */
    const admit = async (cost: number) => {
      while (
        inFlight.size > 0 && (inFlight.size >= SAVE_CONCURRENCY || held + cost > SAVE_BYTES)
      ) {
        await Promise.race(inFlight);
      }
    };
    /** Runs a save costing `cost` bytes in flight; when it fails, `damage` says whether the file was damaged (it goes to `failed`). */
    const track = (
      f: Entry,
      cost: number,
      saving: Promise<void>,
      damage: () => IntegrityError | null,
    ) => {
      held += cost;
      const save: Promise<void> = saving.then(
        () => {
          filesWritten++;
          bytesWritten += f.node.size;
        },
        (e: unknown) => {
          const damaged = damage();
          if (damaged !== null) failed.push({ path: f.rel, message: damaged.message });
          else failure ??= e;
        },
      ).finally(() => {
        held -= cost;
        inFlight.delete(save);
      });
      inFlight.add(save);
    };
    const sizeError = (f: Entry) =>
      new IntegrityError(
        `the blocks of ${f.rel} in backup ${plan.manifest} do not add up to its size ${f.node.size}: run bendsave verify`,
      );
    for (const f of readOrder(repo, c)) {
      // Cancelled: the saves in flight finish (an object is saved whole or not at all), then it stops.
      await checkpoint(options.signal, "restore").catch((e: unknown) => (failure ??= e));
      if (failure !== null) break;
      const h = { kind: "raw", name: f.rel } as const;
      if (options.overwrite && existing.get(f.rel) === f.node.size) {
        if (await sameObject(repo, target, f, c.chunker)) {
          filesUnchanged++;
          continue;
        }
      }
      if (target.saveStream !== undefined && f.node.size > STREAM_THRESHOLD) {
        await admit(STREAM_COST);
        if (failure !== null) break;
        // Blocks are decoded and checked one at a time, in order, as the driver asks for
        // them; a damaged one throws, the driver aborts the save and nothing takes the name.
        let damaged: IntegrityError | null = null;
        const signal = options.signal;
        const blocks = async function* (): AsyncGenerator<Uint8Array> {
          try {
            let pos = 0;
            for (const id of f.node.blocks) {
              throwIfCancelled(signal, "restore");
              const loc = repo.locate(id, f.rel);
              const raw = repo.decodeStored(id, loc, await cache.stored(id, loc, f.rel), f.rel);
              if (pos + raw.length > f.node.size) break;
              pos += raw.length;
              yield raw;
            }
            if (pos !== f.node.size) throw sizeError(f);
          } catch (e) {
            if (e instanceof IntegrityError) damaged = e;
            throw e;
          }
        };
        track(f, STREAM_COST, target.saveStream(h, blocks(), f.node.size), () => damaged);
      } else {
        await admit(f.node.size);
        if (failure !== null) break;
        const data = new Uint8Array(f.node.size);
        let pos = 0;
        try {
          for (const id of f.node.blocks) {
            const loc = repo.locate(id, f.rel);
            const raw = repo.decodeStored(id, loc, await cache.stored(id, loc, f.rel), f.rel);
            if (pos + raw.length > data.length) break;
            data.set(raw, pos);
            pos += raw.length;
          }
          if (pos !== f.node.size) throw sizeError(f);
        } catch (e) {
          if (!(e instanceof IntegrityError)) throw e;
          failed.push({ path: f.rel, message: e.message }); // left out; the others go on
          continue;
        }
        track(f, data.length, target.save(h, data), () => null);
      }
      progress(filesWritten + filesUnchanged, bytesWritten);
    }
    await Promise.all(inFlight);
    if (failure instanceof Cancelled) {
      throw new Cancelled(failure.message, {
        cause: failure,
        committed: `${filesWritten} of ${c.files.length} objects were restored into ` +
          `${target.location}: restore again with --overwrite to complete it`,
      });
    }
    if (failure !== null) throw failure;
    return finish(plan, { failed, filesWritten, filesUnchanged, bytesWritten }, started);
  });
}

/**
 * True when object `f.rel` of `target` holds exactly the blocks of `f`: read
 * whole and cut by `chunker` when small, else one block-sized range at a time
 * (each must match its block's hash), so a large object is never held whole.
 */
async function sameObject(
  repo: Repository,
  target: BlobStore,
  f: Entry,
  chunker: ChunkerParams,
): Promise<boolean> {
  const h = { kind: "raw", name: f.rel } as const;
  if (f.node.size <= STREAM_THRESHOLD) return sameBlocks(await target.load(h), f.node, chunker);
  let pos = 0;
  for (const id of f.node.blocks) {
    const length = repo.locate(id, f.rel).rawLength;
    const part = await target.load(h, { offset: pos, length });
    if (part.length !== length || !equalBytes(sha256(part), id)) return false;
    pos += length;
  }
  return pos === f.node.size;
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
