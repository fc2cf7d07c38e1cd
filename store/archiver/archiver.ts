/**
 * The archiver: one walk over any {@linkcode TreeSource} (a directory, a
 * blob store's objects, a stream), one directory at a time, without
 * recursion (a tree 10,000 levels deep is walked like a flat one). Each
 * entry is compared with the parent backup's node through
 * {@linkcode entryChanged}; the bytes of new and changed files are read,
 * cut, hashed and compressed on the worker pool (local files by the reader
 * threads themselves; bytes loaded or received on this thread are cut on a
 * reader thread), and each directory's tree is stored as soon as its files
 * and subdirectories are, so memory holds the directories in progress, not
 * the whole tree. The walk waits while the pool is busy.
 *
 * @module
 */
import type { EnginePool } from "../worker_jobs.ts";
import type { FileJob, FileResult, ReaderSettings } from "./file_blocks.ts";
import { type BackupContext, parentNodes, storeTree, warn } from "../backup/_context.ts";
import { checkpoint, throwIfCancelled } from "../cancel.ts";
import { displayPath } from "../_byte_path.ts";
import { freeBuffer } from "../free_buffer.ts";
import { BlobKind } from "../../formats/pack.ts";
import { ID_LENGTH, toHex } from "../../formats/hash.ts";
import { nameKey, NodeType, type TreeNode } from "../../formats/tree.ts";
import {
  type ArchiveOptions,
  type EntryBytes,
  entryChanged,
  type EntryName,
  EntryUnreadable,
  type TreeEntry,
  type TreeSource,
} from "./tree_source.ts";

/** Files sent to the reader threads in one job, at most (and about this many bytes). */
const BATCH_FILES = 256;
const BATCH_BYTES = 8 * 1024 * 1024;
/** Objects loaded on this thread ahead of the one being cut. */
const READ_AHEAD = 4;
/** Objects larger than this are loaded in ranges of {@linkcode RANGE} bytes (given a `stat`). */
const WHOLE_LIMIT = 16 * 1024 * 1024;
const RANGE = 8 * 1024 * 1024;
/** A stream's chunks are sent to a reader thread in pieces of about this size. */
const STREAM_PIECE = 4 * 1024 * 1024;
/** Times a large object that changed while it was read is read again. */
const CHANGED_RETRIES = 1;
/** Progress events at most this often. */
const PROGRESS_MS = 200;
/**
 * A local file larger than this, cut by a fixed-size chunker whose block
 * size divides it, is read in sections of this many bytes on every reader
 * thread at once: the blocks are exactly those of one pass over the file
 * (each section starts on a block boundary), and one large file (a
 * PostgreSQL relation segment of 1 GiB) uses every core.
 */
export const SECTION_BYTES = 64 * 1024 * 1024;

/** A directory being backed up. */
interface Frame<D> {
  readonly dir: D;
  /** Its path below the root, `/`-separated. */
  readonly rel: string;
  readonly parentTree: Uint8Array | null;
  readonly up: Frame<D> | null;
  /** Its node in `up`'s tree. */
  readonly node: TreeNode | null;
  readonly nodes: TreeNode[];
  /** Nodes of files that could not be read: left out of the tree. */
  readonly failed: Set<TreeNode>;
  /** Files being read, subdirectories not stored, plus one until it is walked. */
  open: number;
  /** Its names, once listed, and the next to walk. */
  names: EntryName[] | null;
  next: number;
  /** The parent backup's nodes of this directory, by exact name. */
  old: Map<string, TreeNode>;
  /**
   * The block ids of its files, copied in (from the parts of the reader
   * threads, which are not kept): a few buffers per directory, not one per id.
   */
  ids: Uint8Array;
  idsUsed: number;
}

/** A file being read. */
interface Read<D> {
  readonly frame: Frame<D>;
  readonly node: TreeNode;
  /** Its size when it was stat'ed. */
  readonly listed: number;
  /** Its path, for messages. */
  readonly where: string;
  /** The section this job reads, when the file is read in sections. */
  readonly section?: { readonly of: Sections; readonly index: number };
}

/** A file read in sections (one job each): their blocks and sizes, put together in order. */
interface Sections {
  readonly jobs: number[];
  readonly blocks: Uint8Array[][];
  readonly bytes: number[];
  /** Sections not read yet. */
  left: number;
}

/** How many sections a file of `size` bytes cut by `chunker` is read in (1: in one pass). */
export function sectionCount(
  chunker: ReaderSettings["chunker"],
  size: number,
  sectionBytes = SECTION_BYTES,
): number {
  if (chunker.kind !== "fixed" || sectionBytes % chunker.size !== 0) return 1;
  return Math.max(1, Math.ceil(size / sectionBytes));
}

/**
 * Backs up the tree of `source` whose parent backup's root tree is
 * `parentRoot` (null: no parent; every file is read); returns the root
 * tree's id. Statistics go to `ctx.stats`, problems to `ctx.warnings` and
 * events to `ctx.emit`; new blocks and trees to `ctx.writer`.
 *
 * @example
 * ```ts ignore
 * import { archive } from "./archiver.ts";
 * import { dirTree } from "./dir_tree.ts";
 * const root = await archive(ctx, dirTree("/var/lib/app"), parent, { settings });
 * ```
 */
export async function archive<D>(
  ctx: BackupContext,
  source: TreeSource<D>,
  parentRoot: Uint8Array | null,
  options: ArchiveOptions & { readonly settings: ReaderSettings },
): Promise<Uint8Array> {
  return await new Archiver(ctx, source, options).run(parentRoot);
}

class Archiver<D> {
  readonly #ctx: BackupContext;
  readonly #source: TreeSource<D>;
  readonly #options: ArchiveOptions;
  readonly #settings: ReaderSettings;
  /** The pool, once the first read needs it (an unchanged tree starts no thread). */
  #pool: EnginePool | null = null;
  readonly #reads = new Map<number, Read<D>>();
  readonly #inFlight = new Set<Promise<void>>();
  /** Objects being loaded on this thread (oldest first). */
  readonly #loads: Promise<void>[] = [];
  #nextJob = 0;
  #batch: FileJob[] = [];
  #batchBytes = 0;
  #failure: { error: unknown } | null = null;
  #root: Uint8Array | null = null;
  // Progress: files and bytes to read so far, and read.
  #toRead = 0;
  #toReadBytes = 0;
  #done = 0;
  #doneBytes = 0;
  #lastEmit = 0;

  constructor(
    ctx: BackupContext,
    source: TreeSource<D>,
    options: ArchiveOptions & { readonly settings: ReaderSettings },
  ) {
    this.#ctx = ctx;
    this.#source = source;
    this.#options = options;
    this.#settings = options.settings;
  }

  async #started(): Promise<EnginePool> {
    return this.#pool ??= await this.#ctx.pool();
  }

  async run(parentRoot: Uint8Array | null): Promise<Uint8Array> {
    const root = this.#frame(this.#source.root, "", parentRoot, null, null);
    // Depth first, in name order, each subdirectory where its name comes: files are read in
    // the order of the walk before the archiver (the packs hold the same neighbours).
    const stack: Frame<D>[] = [root];
    try {
      while (stack.length > 0) {
        this.#throwFailure();
        const f = stack[stack.length - 1]!;
        if (f.names === null) {
          await checkpoint(this.#ctx.signal, "backup");
          await this.#list(f);
        }
        const name = f.names![f.next++];
        if (name === undefined) {
          stack.pop();
          f.names = []; // what its files still being read do not need
          f.old = new Map();
          await this.#release(f);
          this.#scanProgress();
          continue;
        }
        const sub = await this.#entry(f, name);
        if (sub) stack.push(sub);
      }
      await this.#send();
      while (this.#loads.length > 0) await this.#loads.shift();
      while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
    } catch (e) {
      this.#failure ??= { error: e };
    }
    // What was sent has finished or failed: nothing uses the writer behind the caller's back.
    await Promise.allSettled([...this.#loads, ...this.#inFlight]);
    this.#throwFailure();
    if (!this.#root) throw new Error("internal error: the archiver ended before its root tree");
    return this.#root;
  }

  #throwFailure(): void {
    if (this.#failure) throw this.#failure.error;
  }

  #frame(
    dir: D,
    rel: string,
    parentTree: Uint8Array | null,
    up: Frame<D> | null,
    node: TreeNode | null,
  ): Frame<D> {
    return {
      dir,
      rel,
      parentTree,
      up,
      node,
      nodes: [],
      failed: new Set(),
      open: 1,
      names: null,
      next: 0,
      old: new Map(),
      ids: NO_IDS,
      idsUsed: 0,
    };
  }

  /** Lists directory `f` and loads its parent backup's nodes (an unlistable one is empty). */
  async #list(f: Frame<D>): Promise<void> {
    const ctx = this.#ctx;
    const where = this.#source.display(f.dir);
    f.old = await parentNodes(ctx, f.parentTree, where);
    try {
      f.names = await this.#source.list(f.dir, (p, message) => warn(ctx, p, message));
    } catch (e) {
      f.names = [];
      if (!this.#vanished(e)) warn(ctx, where, `cannot list directory: ${(e as Error).message}`);
    }
  }

  /**
   * Stats entry `name` of `f`, compares it with the parent backup's node and
   * starts reading it when it changed; returns the frame of a subdirectory.
   */
  async #entry(f: Frame<D>, name: EntryName): Promise<Frame<D> | null> {
    const ctx = this.#ctx;
    const source = this.#source;
    const old = f.old;
    const rel = f.rel === "" ? name.name : `${f.rel}/${name.name}`;
    if (this.#options.exclude?.(rel)) return null;
    let e: TreeEntry;
    try {
      e = await source.stat(f.dir, name);
    } catch (err) {
      if (this.#vanished(err)) return null;
      const message = err instanceof EntryUnreadable
        ? err.message
        : `cannot stat: ${(err as Error).message}`;
      warn(ctx, source.display(f.dir, name), message);
      return null;
    }
    const node: TreeNode = {
      name: e.name,
      type: NodeType.file,
      mode: e.mode,
      mtimeMs: e.mtimeMs,
      size: 0,
      blocks: [],
      inode: e.inode,
      device: e.device,
      uid: e.uid,
      gid: e.gid,
      ...(e.nameBytes ? { nameBytes: e.nameBytes } : {}),
    };
    const prev = old.get(nameKey(e));
    if (e.type === "file") {
      node.size = e.size;
      if (e.nlink !== undefined && e.nlink > 1) node.nlink = e.nlink;
      if (e.etag !== undefined) node.etag = e.etag;
      f.nodes.push(node);
      ctx.stats.files++;
      ctx.stats.bytes += e.size;
      if (
        !entryChanged(prev, e, this.#options.changeTest) &&
        prev!.blocks.every((b) => ctx.writer.has(b))
      ) {
        node.blocks = prev!.blocks;
        ctx.stats.filesUnchanged++;
        return null;
      }
      if (prev?.type === NodeType.file) ctx.stats.filesChanged++;
      else ctx.stats.filesNew++;
      const known = prev?.type === NodeType.file
        ? prev.blocks.filter((b) => ctx.writer.has(b))
        : [];
      await this.#read(f, node, e, source.open(f.dir, e), known, source.display(f.dir, name));
    } else if (
      e.type === "dir" && ctx.repository !== null && ctx.repository.ino === e.inode &&
      ctx.repository.dev === e.device
    ) {
      // A backup never reads its own repository (it changes while it is read).
      ctx.emit({
        type: "warning",
        path: source.display(f.dir, name),
        message: "left out: this is the repository being written, inside the source",
      });
    } else if (e.type === "dir") {
      node.type = NodeType.dir;
      f.nodes.push(node);
      ctx.stats.dirs++;
      f.open++;
      const parentTree = prev?.type === NodeType.dir && prev.subtree ? prev.subtree : null;
      return this.#frame(source.child(f.dir, e), rel, parentTree, f, node);
    } else if (e.type === "symlink") {
      node.type = NodeType.symlink;
      node.linkTarget = e.linkTarget ?? "";
      f.nodes.push(node);
      ctx.stats.symlinks++;
    } else {
      ctx.stats.skipped++;
      ctx.emit({
        type: "warning",
        path: source.display(f.dir, name),
        message: "skipped: not a regular file, directory or symlink",
      });
    }
    return null;
  }

  #vanished(e: unknown): boolean {
    return this.#options.vanishedOk === true && (e as { code?: string } | null)?.code === "ENOENT";
  }

  /** Starts reading file `node` of `f` (the walk waits while the pool is busy). */
  async #read(
    f: Frame<D>,
    node: TreeNode,
    e: TreeEntry,
    bytes: EntryBytes,
    known: Uint8Array[],
    where: string,
  ): Promise<void> {
    const packed = known.length > 0 ? new Uint8Array(known.length * ID_LENGTH) : NO_IDS;
    known.forEach((b, i) => packed.set(b, i * ID_LENGTH));
    const read: Read<D> = { frame: f, node, listed: e.size, where };
    f.open++;
    this.#toRead++;
    this.#toReadBytes += e.size;
    if (bytes.kind === "file") {
      const p = bytes.path;
      const file = {
        path: displayPath(p),
        ...(typeof p === "string" ? {} : { exactPath: p }),
        ...(known.length ? { known: packed } : {}),
      };
      const sectionBytes = this.#options.sectionBytes ?? SECTION_BYTES;
      const n = sectionCount(this.#settings.chunker, e.size, sectionBytes);
      if (n === 1) {
        this.#batch.push({ job: this.#job(read), ...file });
        this.#batchBytes += e.size;
        if (this.#batch.length >= BATCH_FILES || this.#batchBytes >= BATCH_BYTES) {
          await this.#send();
        }
        return;
      }
      // Every section is its own job, so the pool hands them to different threads.
      const of: Sections = { jobs: [], blocks: [], bytes: [], left: n };
      for (let index = 0; index < n; index++) {
        const job = this.#job({ ...read, section: { of, index } });
        of.jobs.push(job);
        of.blocks.push([]);
        of.bytes.push(0);
      }
      for (let index = 0; index < n; index++) {
        this.#batch.push({
          job: of.jobs[index]!,
          ...file,
          offset: index * sectionBytes,
          ...(index < n - 1 ? { length: sectionBytes } : {}), // the last reads to the end
        });
        this.#batchBytes += sectionBytes;
        await this.#send();
      }
    } else if (bytes.kind === "stream") {
      await this.#readStream(read, bytes, packed);
    } else if (bytes.stat && e.size > WHOLE_LIMIT) {
      await this.#readRanged(read, bytes, bytes.stat, e, packed);
    } else {
      while (this.#loads.length >= READ_AHEAD) await this.#loads.shift();
      const job = this.#job(read);
      const load = bytes.read().then(
        (data) =>
          this.#piece(job, {
            data: owned(data),
            end: true,
            ...(known.length ? { known: packed } : {}),
          }),
        (err: unknown) => this.#readFailed(job, (err as Error).message, err),
      );
      this.#loads.push(load.catch((err: unknown) => {
        this.#failure ??= { error: err };
      }));
    }
  }

  /** A new job number for `read`. */
  #job(read: Read<D>): number {
    const job = this.#nextJob++;
    this.#reads.set(job, read);
    return job;
  }

  /** Sends the batch of files to the reader threads. */
  async #send(): Promise<void> {
    if (this.#batch.length === 0) return;
    const jobs = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    const pool = await this.#started();
    const sent = await pool.submit("backup.read", { settings: this.#settings, jobs }, {
      onPart: (results) => this.#results(results),
    });
    this.#track(sent.result);
  }

  #track(result: Promise<unknown>): void {
    const p = result.then(() => {}, (e: unknown) => {
      this.#failure ??= { error: e };
    }).finally(() => this.#inFlight.delete(p));
    this.#inFlight.add(p);
  }

  /** Sends one piece of bytes read on this thread to a reader thread (by job, one lane). */
  async #piece(
    job: number,
    piece: { data?: Uint8Array; end?: boolean; abort?: boolean; known?: Uint8Array },
  ): Promise<void> {
    const pool = await this.#started();
    const sent = await pool.submit("backup.chunk", {
      settings: this.#settings,
      stream: job,
      ...piece,
    }, {
      lane: job,
      ...(piece.data ? { transfer: [piece.data.buffer as ArrayBuffer] } : {}),
      onPart: (results) => this.#results(results),
    });
    this.#track(sent.result);
  }

  /** Reads a stream, sending its chunks in pieces; a stream that throws fails the backup. */
  async #readStream(
    read: Read<D>,
    bytes: { open(): Promise<AsyncIterable<Uint8Array>> },
    known: Uint8Array,
  ): Promise<void> {
    const job = this.#job(read);
    let pieces: Uint8Array[] = [];
    let size = 0;
    let first = true;
    const flush = async (end: boolean) => {
      const data = new Uint8Array(size);
      let pos = 0;
      for (const p of pieces) {
        data.set(p, pos);
        pos += p.length;
      }
      pieces = [];
      size = 0;
      await this.#piece(job, { data, end, ...(first && known.length ? { known } : {}) });
      first = false;
    };
    for await (const chunk of await bytes.open()) {
      // A stream's chunks arrive through the event loop, so a signal is seen without a yield
      // (and yielding here makes Deno's http2 streams of a gRPC export close early).
      throwIfCancelled(this.#ctx.signal, "backup");
      this.#throwFailure();
      pieces.push(chunk.slice()); // a copy: the stream may reuse its buffer
      size += chunk.length;
      if (size >= STREAM_PIECE) await flush(false);
    }
    await flush(true);
  }

  /**
   * Loads a large object in ranges, one range ahead, sending each to a
   * reader thread; before the last piece, checks with `stat` that the
   * object did not change meanwhile (size and entity tag, or mtime). A
   * changed object is read again, once; then it is an error (the file is
   * left out and reported).
   */
  async #readRanged(
    read: Read<D>,
    bytes: { read(range: { offset: number; length: number }): Promise<Uint8Array> },
    stat: () => Promise<TreeEntry>,
    entry: TreeEntry,
    known: Uint8Array,
  ): Promise<void> {
    let expect = entry;
    for (let attempt = 0;; attempt++) {
      const job = this.#job(read);
      const size = expect.size;
      // A failed read is a value: a read still in flight when this attempt fails is not awaited.
      const range = (offset: number) =>
        bytes.read({ offset, length: Math.min(RANGE, size - offset) })
          .catch((e: unknown) => new SourceFailure(e));
      let next = range(0);
      let changed = false;
      for (let offset = 0; offset < size; offset += RANGE) {
        await checkpoint(this.#ctx.signal, "backup");
        this.#throwFailure();
        const last = offset + RANGE >= size;
        let data = await next;
        if (!last) next = range(offset + RANGE);
        if (!(data instanceof SourceFailure) && data.length !== Math.min(RANGE, size - offset)) {
          data = new SourceFailure(new Error(`the object is shorter than its listed size ${size}`));
        }
        let now: TreeEntry | SourceFailure | null = null;
        if (last && !(data instanceof SourceFailure)) {
          now = await stat().catch((e: unknown) => new SourceFailure(e));
        }
        const failure = data instanceof SourceFailure
          ? data
          : now instanceof SourceFailure
          ? now
          : null;
        if (failure) {
          await this.#piece(job, { abort: true });
          const cause = failure.cause as { message?: string } | null;
          await this.#readFailed(job, cause?.message ?? String(cause), cause);
          return;
        }
        if (now && !(now instanceof SourceFailure)) {
          const same = now.size === size &&
            (expect.etag !== undefined && now.etag !== undefined
              ? now.etag === expect.etag
              : now.mtimeMs === expect.mtimeMs);
          if (!same) {
            await this.#piece(job, { abort: true });
            if (attempt >= CHANGED_RETRIES) {
              await this.#readFailed(
                job,
                "it changed while it was read (twice); it is left out of this backup",
                null,
              );
              return;
            }
            // The blocks of this attempt are forgotten (its later results too: no job).
            this.#reads.delete(job);
            read.node.blocks = [];
            expect = now;
            changed = true;
            break;
          }
          // Read again after a change: record the version that was read.
          read.node.mtimeMs = expect.mtimeMs;
          if (expect.etag !== undefined) read.node.etag = expect.etag;
        }
        await this.#piece(job, {
          data: owned(data as Uint8Array),
          end: last,
          ...(offset === 0 && known.length ? { known } : {}),
        });
      }
      if (!changed) return;
    }
  }

  /**
   * Handles results from the reader threads (one call at a time, across the
   * pool), then frees the part's buffers (worker_jobs.ts `joinBlocks`): the
   * pack writer copied the data, the directories the ids.
   */
  async #results(results: FileResult[]): Promise<void> {
    try {
      await this.#takeResults(results);
    } finally {
      const buffers = new Set<ArrayBufferLike>();
      for (const r of results) {
        for (const b of r.blocks) {
          buffers.add(b.id.buffer);
          if (b.data) buffers.add(b.data.buffer);
        }
      }
      for (const b of buffers) freeBuffer(b);
    }
  }

  async #takeResults(results: FileResult[]): Promise<void> {
    const ctx = this.#ctx;
    for (const r of results) {
      await checkpoint(ctx.signal, "backup");
      const read = this.#reads.get(r.job);
      // Blocks sent with data are stored even for an attempt given up: the thread that cut
      // them sends them without data next time.
      for (const b of r.blocks) {
        if (b.data) {
          await ctx.writer.add(b.id, BlobKind.data, {
            codec: b.codec,
            data: b.data,
            rawLength: b.rawLength,
            sealed: this.#settings.masterKey !== undefined, // sealed on the thread that cut it
          });
        } else if (!ctx.writer.has(b.id)) {
          throw new Error(
            `internal error: block ${toHex(b.id)} of ${read?.where ?? "a file"} has no data`,
          );
        }
        // Asked again after the add's await: meanwhile the object may have been found
        // changed and its attempt given up (#readRanged), and the blocks of that attempt
        // must not join the list the next attempt fills.
        if (read && r.error === undefined && this.#reads.get(r.job) === read) {
          (read.section ? read.section.of.blocks[read.section.index]! : read.node.blocks).push(
            keepId(read.frame, b.id),
          );
        }
      }
      if (!read || this.#reads.get(r.job) !== read) continue;
      if (r.error !== undefined) {
        await this.#readFailed(r.job, r.error, { code: r.errorCode });
        continue;
      }
      if (!r.done) continue;
      this.#reads.delete(r.job);
      let bytesRead = r.bytesRead;
      if (read.section) {
        const { of, index } = read.section;
        of.bytes[index] = r.bytesRead;
        if (--of.left > 0) continue;
        read.node.blocks = of.blocks.flat();
        bytesRead = of.bytes.reduce((a, b) => a + b, 0);
      }
      // The file may have changed since it was stat'ed: record what was read.
      ctx.stats.bytes += bytesRead - read.listed;
      ctx.stats.bytesRead += bytesRead;
      read.node.size = bytesRead;
      this.#fileDone(bytesRead);
      await this.#release(read.frame);
    }
  }

  /** Leaves out file `job`, which could not be read (a vanished one silently with vanishedOk). */
  async #readFailed(job: number, message: string, cause: unknown): Promise<void> {
    const read = this.#reads.get(job);
    if (!read) return;
    this.#reads.delete(job);
    // A file read in sections is left out once: the results of its other sections are ignored.
    for (const j of read.section?.of.jobs ?? []) this.#reads.delete(j);
    read.frame.failed.add(read.node);
    this.#ctx.stats.files--;
    this.#ctx.stats.bytes -= read.listed;
    if (!this.#vanished(cause)) warn(this.#ctx, read.where, `cannot read: ${message}`);
    this.#fileDone(0);
    await this.#release(read.frame);
  }

  #fileDone(bytes: number): void {
    this.#done++;
    this.#doneBytes += bytes;
    const t = this.#ctx.now();
    const walked = this.#batch.length === 0 && this.#done === this.#toRead;
    if (t - this.#lastEmit < PROGRESS_MS && !walked) return;
    this.#lastEmit = t;
    this.#ctx.emit({
      type: "progress",
      operation: "backup",
      phase: "read",
      files: this.#done,
      totalFiles: this.#toRead,
      bytes: this.#doneBytes,
      totalBytes: this.#toReadBytes,
      elapsedMs: t - this.#ctx.start,
    });
  }

  #scanProgress(): void {
    const ctx = this.#ctx;
    const t = ctx.now();
    if (t - ctx.lastScanEmit < PROGRESS_MS) return;
    ctx.lastScanEmit = t;
    ctx.emit({
      type: "progress",
      operation: "backup",
      phase: "scan",
      files: ctx.stats.files,
      totalFiles: 0,
      bytes: ctx.stats.bytes,
      totalBytes: 0,
      elapsedMs: t - ctx.start,
    });
  }

  /**
   * Drops one count of `f`; a directory left with none is stored, and so,
   * in turn, is each parent its tree completes (a loop, not recursion).
   */
  async #release(f: Frame<D>): Promise<void> {
    let frame: Frame<D> | null = f;
    while (frame && --frame.open === 0) {
      const nodes = frame.failed.size
        ? frame.nodes.filter((n) => !frame!.failed.has(n))
        : frame.nodes;
      const id = await storeTree(this.#ctx, nodes);
      if (!frame.up) {
        this.#root = id;
        return;
      }
      frame.node!.subtree = id;
      frame = frame.up;
    }
  }
}

const NO_IDS = new Uint8Array(0);
/** Ids a directory's id buffer holds at first, and at most (it doubles in between). */
const IDS_FIRST = 16;
const IDS_MAX = 1024;

/** A copy of block id `id` in `f`'s id buffers (a view of them). */
function keepId(f: Frame<unknown>, id: Uint8Array): Uint8Array {
  if (f.idsUsed + ID_LENGTH > f.ids.length) {
    const n = Math.min(IDS_MAX, Math.max(IDS_FIRST, (f.ids.length / ID_LENGTH) * 2));
    f.ids = new Uint8Array(n * ID_LENGTH);
    f.idsUsed = 0;
  }
  const copy = f.ids.subarray(f.idsUsed, f.idsUsed + ID_LENGTH);
  copy.set(id);
  f.idsUsed += ID_LENGTH;
  return copy;
}

/** An error of the source while an entry's bytes were read (the entry is left out). */
class SourceFailure {
  constructor(readonly cause: unknown) {}
}

/** `data` as a Uint8Array owning its whole buffer (so the buffer can be transferred). */
function owned(data: Uint8Array): Uint8Array {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength &&
      data.buffer instanceof ArrayBuffer
    ? data
    : data.slice();
}
