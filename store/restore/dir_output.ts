/**
 * The directory output of the restorer: entries become files, directories,
 * symlinks and hard links under a target directory. Files are written on
 * writer threads (file_writer.ts, one lane per core) while the main thread
 * reads packs; each under a temporary name of 27 bytes, renamed into place
 * when whole. A small file is written by one lane; a large one by every
 * lane, each writing runs of its blocks at their offsets into the temporary
 * file made here, which is finalised here once they all released it. Nothing is ever written through a symlink: a link where the
 * backup has a directory is removed (never what it points to), owner, mode
 * and times are set on the entry itself. Owners are set as
 * {@linkcode OwnerOptions} say; names that are not valid UTF-8 are restored
 * under placeholders and renamed to their exact bytes last.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import {
  AccessDenied,
  IntegrityError,
  InvalidInput,
  IoError,
  ReadOnlyError,
  StorageFull,
} from "../errors.ts";
import type { EventSink } from "../backup/events.ts";
import type { ChunkerParams } from "../../formats/chunker.ts";
import type { TreeNode } from "../../formats/tree.ts";
import { displayPath, joinPath, lstatPath, renamePath } from "../_byte_path.ts";
import {
  discardFile,
  type EndOp,
  finishFile,
  type OpenFile,
  tempName,
  timeArg,
  type WriteError,
  WriteFailure,
  type WriteOp,
  type WriteReport,
} from "./file_writer.ts";
import { WorkerPool } from "../worker_pool.ts";
import { ENGINE_JOBS, type EnginePool } from "../worker_jobs.ts";
import { ownerOf, type OwnerOptions, type Ownership, ownership } from "./owner.ts";
import type { Entry, Link, SelectedDir } from "./collect.ts";
import type { Ledger, RestoreOutput, TargetView } from "./output.ts";
import type { RestorePlan } from "./restore.ts";
import type { StoredBlock } from "./stored_block.ts";
import { COMPARE_WHOLE_MAX, sameBlocks, sameRanges } from "./same_blocks.ts";

/** A batch for a writer lane is sent at about this many bytes or steps. */
const BATCH_BYTES = 4 * 1024 * 1024;
const BATCH_OPS = 600;

/**
 * Files of at least this many bytes (two batches) are written by every
 * writer lane at once (see {@linkcode DirOutputOptions.largeFile}). On one
 * lane such a file holds the main thread at that lane's in-flight limit
 * while the other lanes idle: 24 files of 40 MiB restored in a median 2.46 s
 * on one lane each, 2.12 s spread from 32 MiB, 1.76 s from 8 MiB (2 cores,
 * bench/RESULTS.md).
 */
export const LARGE_FILE = 2 * BATCH_BYTES;

/** Options of a {@linkcode DirOutput}. */
export interface DirOutputOptions extends OwnerOptions {
  /** Writer threads (default: one per core; 0 writes in-process). */
  readonly workers?: number;
  /**
   * Files of at least this many bytes (default {@linkcode LARGE_FILE}) are
   * cut into runs of about a batch, sent round-robin to the lanes, which
   * write them at their offsets into the one temporary file; smaller files
   * are written whole by one lane.
   */
  readonly largeFile?: number;
  readonly onEvent?: EventSink;
}

/**
 * A large file being written by several lanes: its temporary file is
 * created here, exclusively, before any lane opens it; finalised here
 * (size, owner, mode, mtime, rename) once every lane released it.
 */
interface SharedFile extends OpenFile {
  readonly end: EndOp;
  /** Lanes that opened it and have not released it yet. */
  holders: number;
  /** Every run and release has been sent. */
  sent: boolean;
  /** Why it is left out, once known. */
  failure: string | null;
}

/**
 * Renames the entries of directory `dir` (below `abs`) whose names are not
 * valid UTF-8 from their placeholders to their exact names. Called as the
 * directory is done, before its own metadata is set (a rename changes the
 * directory's mtime). Like every restore write, it replaces a file or
 * symlink in its place and never follows one.
 */
function renameExact(abs: string, dir: SelectedDir): void {
  for (const { seg, bytes } of dir.exact) {
    const from = path.join(abs, dir.rel, seg);
    if (!lstatOrNull(from)) continue; // not restored (--include, or it failed)
    const to = joinPath(path.join(abs, dir.rel), bytes);
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
 * Before the entries of directory `dir` are restored into a non-empty
 * target: moves each existing entry of it whose name is not valid UTF-8 to
 * its placeholder, so that the restore treats it like any existing entry (a
 * file with the same content stays, a symlink where the backup has a
 * directory is replaced, never followed), and {@linkcode renameExact} puts
 * it back under its exact name.
 */
function adoptExact(abs: string, dir: SelectedDir): void {
  for (const { seg, bytes } of dir.exact) {
    const at = joinPath(path.join(abs, dir.rel), bytes);
    try {
      lstatPath(at);
    } catch {
      continue; // not in the target
    }
    try {
      renamePath(at, path.join(abs, dir.rel, seg));
    } catch (e) {
      throw fsError(e, displayPath(at));
    }
  }
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p, { throwIfNoEntry: false }) ?? null; // no error built for ENOENT
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

/**
 * True when the existing file at `p` has exactly the content of `node`,
 * cut by `chunker` into blocks of `lengths` bytes: read whole when small,
 * else one block at a time, never held whole.
 */
async function sameContent(
  p: string,
  node: TreeNode,
  chunker: ChunkerParams,
  lengths: readonly number[],
): Promise<boolean> {
  const st = lstatOrNull(p);
  if (!st || !st.isFile() || st.size !== node.size) return false;
  if (node.size <= COMPARE_WHOLE_MAX) return sameBlocks(fs.readFileSync(p), node, chunker);
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const buf = new Uint8Array(Math.max(0, ...lengths));
    return await sameRanges(node.blocks, lengths, node.size, (offset, length) => {
      let got = 0;
      while (got < length) {
        const n = fs.readSync(fd, buf, got, length - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      return Promise.resolve(buf.subarray(0, got));
    });
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Makes directory `p` of a restore, its parent made already. An existing
 * directory is kept; a symlink or file where the backup has a directory is
 * removed (the link itself, never what it points to) and a directory made
 * in its place, so nothing is ever written through a link.
 */
function makeDir(p: string): void {
  const st = lstatOrNull(p);
  if (st?.isDirectory()) return;
  if (st) fs.unlinkSync(p);
  fs.mkdirSync(p, { mode: 0o700 });
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

/** Restores into a directory (see the module). */
export class DirOutput implements RestoreOutput {
  readonly hardLinks = true;
  readonly #abs: string;
  readonly #options: DirOutputOptions;
  #ledger: Ledger | null = null;
  /** The target held something when the restore began. */
  #notEmpty = false;
  #pool: EnginePool | null = null;
  /** The first error a writer lane reported that stops the restore. */
  #error: WriteError | null = null;
  #lane = 0;
  #next = 0;
  #batch: WriteOp[] = [];
  #transfer: ArrayBuffer[] = [];
  #batchBytes = 0;
  /** Large files written by several lanes, until finalised or removed. */
  readonly #shared = new Map<number, SharedFile>();
  /** Whether owners are set: decided once per restore (process.getuid costs per file). */
  readonly #ownership: Ownership;

  /** An output writing into directory `target` (made when missing). */
  constructor(target: string, options: DirOutputOptions = {}) {
    this.#abs = path.resolve(target);
    this.#options = options;
    this.#ownership = ownership(options);
  }

  get stopped(): boolean {
    return this.#error !== null;
  }

  inspect(): Promise<TargetView> {
    this.#notEmpty = targetState(this.#abs);
    return Promise.resolve({
      target: this.#abs,
      targetNotEmpty: this.#notEmpty,
      ownership: this.#ownership,
    });
  }

  existing(e: Entry): Promise<string | null> {
    const p = path.join(this.#abs, e.rel);
    const st = lstatOrNull(p);
    return Promise.resolve(
      st === null ? null : st.isDirectory() ? "directory" : describeExisting(p, st),
    );
  }

  notEmpty(): Error {
    return new InvalidInput(
      `restore target "${this.#abs}" is not empty: restore into an empty directory, or pass --overwrite to rewrite files that differ`,
    );
  }

  async begin(plan: RestorePlan, ledger: Ledger): Promise<void> {
    this.#ledger = ledger;
    this.#notEmpty = plan.targetNotEmpty;
    // Files are written on writer lanes (one per core): the main thread reads packs in order.
    const emit = this.#options.onEvent;
    this.#pool = await WorkerPool.start(ENGINE_JOBS, {
      ...(this.#options.workers === undefined ? {} : { workers: this.#options.workers }),
      name: "writer",
      fallback: "writing files on the main thread",
      onWarning: (message) => emit?.({ type: "warning", message }),
    });
  }

  dir(d: SelectedDir): Promise<void> {
    const p = path.join(this.#abs, d.rel);
    try {
      if (d.node === null) fs.mkdirSync(p, { recursive: true });
      else makeDir(p);
    } catch (e) {
      throw fsError(e, p);
    }
    if (this.#notEmpty) adoptExact(this.#abs, d);
    return Promise.resolve();
  }

  async unchanged(f: Entry, chunker: ChunkerParams, lengths: readonly number[]): Promise<boolean> {
    const final = path.join(this.#abs, f.rel);
    if (!(await sameContent(final, f.node, chunker, lengths))) return false;
    setMeta(final, f.node, this.#ownerOf(f.node));
    return true;
  }

  async file(f: Entry, blocks: AsyncIterable<StoredBlock>): Promise<void> {
    const file = this.#next++;
    if (f.node.size >= (this.#options.largeFile ?? LARGE_FILE)) {
      return await this.#fileOnLanes(file, f, blocks);
    }
    this.#batch.push({ op: "begin", file, final: path.join(this.#abs, f.rel), rel: f.rel });
    let list: StoredBlock[] = [];
    try {
      for await (const b of blocks) {
        // A copy of its own, so it can be handed to the writer thread.
        const data = b.data.slice();
        list.push({ ...b, data });
        this.#transfer.push(data.buffer as ArrayBuffer);
        this.#batchBytes += data.length;
        if (this.#batchBytes >= BATCH_BYTES) {
          this.#batch.push({ op: "blocks", file, blocks: list });
          list = [];
          await this.#flush(); // a large file stays on its lane
        }
      }
    } catch (e) {
      if (!(e instanceof IntegrityError)) throw e;
      // This file is left out; the others go on.
      if (list.length) this.#batch.push({ op: "blocks", file, blocks: list });
      this.#batch.push({ op: "abort", file, message: e.message });
      return;
    }
    if (list.length) this.#batch.push({ op: "blocks", file, blocks: list });
    this.#batch.push(this.#endOp(file, f));
    if (this.#batchBytes >= BATCH_BYTES || this.#batch.length >= BATCH_OPS) {
      await this.#flush();
      this.#lane = (this.#lane + 1) % this.#pool!.lanes;
    }
  }

  /** The owner to set on `node`. */
  #ownerOf(node: Entry["node"]): readonly [number, number] | null {
    return ownerOf(node, this.#options, this.#ownership);
  }

  /** The step that finishes file number `file`: size check, owner, mode, mtime, rename. */
  #endOp(file: number, f: Entry): EndOp {
    const owner = this.#ownerOf(f.node);
    return {
      op: "end",
      file,
      size: f.node.size,
      mode: f.node.mode,
      mtimeMs: f.node.mtimeMs,
      ...(owner ? { owner } : {}),
    };
  }

  /**
   * Writes large file `f` with every lane: its blocks in runs of about a
   * batch, round-robin, each run at its offset in the temporary file made
   * here; each lane that got a run releases the file after its last one.
   */
  async #fileOnLanes(file: number, f: Entry, blocks: AsyncIterable<StoredBlock>): Promise<void> {
    await this.#flush(); // the small files before it
    const final = path.join(this.#abs, f.rel);
    const tmp = tempName(final);
    let fd: number;
    try {
      const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
      fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    } catch (e) {
      throw fsError(e, final);
    }
    const end = this.#endOp(file, f);
    const s: SharedFile = {
      fd,
      tmp,
      final,
      rel: f.rel,
      written: 0,
      end,
      holders: 0,
      sent: false,
      failure: null,
    };
    this.#shared.set(file, s);
    const { dev, ino } = fs.fstatSync(fd);
    const lanes = this.#pool!.lanes;
    const holding = new Set<number>();
    let lane = this.#lane;
    let offset = 0;
    let list: StoredBlock[] = [];
    let transfer: ArrayBuffer[] = [];
    let bytes = 0;
    const sendRun = async () => {
      if (list.length === 0) return;
      const ops: WriteOp[] = [];
      if (!holding.has(lane)) {
        holding.add(lane);
        s.holders++;
        ops.push({ op: "share", file, tmp, final, rel: f.rel, dev, ino });
      }
      ops.push({ op: "run", file, offset, blocks: list });
      for (const b of list) offset += b.rawLength;
      const t = transfer;
      [list, transfer, bytes] = [[], [], 0];
      await this.#send(lane, ops, t);
      lane = (lane + 1) % lanes;
    };
    try {
      for await (const b of blocks) {
        if (this.stopped) break;
        const data = b.data.slice(); // a copy of its own, to hand to the writer thread
        list.push({ ...b, data });
        transfer.push(data.buffer as ArrayBuffer);
        bytes += data.length;
        if (bytes >= BATCH_BYTES) await sendRun();
      }
      if (!this.stopped) await sendRun();
    } catch (e) {
      if (!(e instanceof IntegrityError)) throw e;
      s.failure ??= e.message; // this file is left out; the others go on
    }
    for (const l of holding) await this.#send(l, [{ op: "release", file }], []);
    s.sent = true;
    this.#lane = lane;
    this.#settle(file);
  }

  /**
   * Finalises shared file `file` once every lane released it: renamed into
   * place when whole, else removed and told to the ledger as failed.
   */
  #settle(file: number): void {
    const s = this.#shared.get(file);
    if (!s || !s.sent || s.holders > 0) return;
    this.#shared.delete(file);
    if (this.#error === null && s.failure === null) {
      try {
        finishFile(s, s.end);
        this.#ledger!.written(1, 0);
        return;
      } catch (e) {
        const detail: WriteError = e instanceof WriteFailure
          ? e.detail
          : { kind: "other", message: (e as Error).message };
        if (detail.kind === "integrity" || detail.kind === "in-the-way") s.failure = detail.message;
        else this.#error ??= detail;
      }
    }
    discardFile(s);
    if (s.failure !== null) this.#ledger!.failed(s.rel, s.failure);
  }

  /** Sends the batch to the current lane. */
  async #flush(): Promise<void> {
    if (this.#batch.length === 0) return;
    await this.#send(this.#lane, this.#batch, this.#transfer);
    this.#batch = [];
    this.#transfer = [];
    this.#batchBytes = 0;
  }

  /** Sends `ops` to `lane`; its report goes to the ledger (and settles shared files). */
  async #send(lane: number, ops: WriteOp[], transfer: ArrayBuffer[]): Promise<void> {
    const onReport = (r: WriteReport) => {
      if (r.error) this.#error ??= r.error;
      for (const f of r.failed) this.#ledger!.failed(f.path, f.message);
      this.#ledger!.written(r.filesDone, r.bytes);
      for (const share of r.released) {
        const s = this.#shared.get(share.file);
        if (!s) continue;
        s.written += share.bytes;
        if (share.failure !== null) s.failure ??= share.failure;
        s.holders--;
        this.#settle(share.file);
      }
    };
    const onFailure = (e: unknown) => {
      this.#error ??= { kind: "other", message: (e as Error).message };
    };
    try {
      const job = await this.#pool!.submit("restore.write", ops, { lane, transfer });
      job.result.then(onReport, onFailure).catch(onFailure);
    } catch (e) {
      onFailure(e);
    }
  }

  async drain(): Promise<void> {
    await this.#flush();
    await this.#pool?.drain().catch((e: unknown) => {
      this.#error ??= { kind: "other", message: (e as Error).message };
    });
    if (this.#shared.size > 0) {
      this.#error ??= { kind: "other", message: "internal error: a large file was not finalised" };
    }
    const failure = this.#error;
    if (!failure) return;
    if (failure.kind === "integrity") throw new IntegrityError(failure.message);
    if (failure.kind === "full") throw new StorageFull(failure.message);
    if (failure.kind === "in-the-way") throw new InvalidInput(failure.message);
    if (failure.code !== undefined) {
      throw fsError({ code: failure.code, message: failure.message }, failure.path ?? this.#abs);
    }
    throw new IoError(failure.message);
  }

  link(l: Link): Promise<"made" | "kept" | "failed"> {
    const final = path.join(this.#abs, l.rel);
    if (lstatOrNull(final)?.isDirectory()) {
      this.#ledger!.failed(
        l.rel,
        `cannot restore file ${l.rel}: a directory is in its place in the target; move it away`,
      );
      return Promise.resolve("failed");
    }
    const made = restoreLink(path.join(this.#abs, l.of.rel), final, l.rel);
    return Promise.resolve(made ? "made" : "kept");
  }

  symlink(s: Entry): Promise<void> {
    const final = path.join(this.#abs, s.rel);
    if (lstatOrNull(final)?.isDirectory()) {
      this.#ledger!.failed(
        s.rel,
        `cannot restore symlink ${s.rel}: a directory is in its place in the target; move it away`,
      );
      return Promise.resolve();
    }
    const tmp = tempName(final);
    try {
      fs.symlinkSync(s.node.linkTarget ?? "", tmp);
      fs.renameSync(tmp, final); // replaces a link or file at `final`, never follows it
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw fsError(e, final);
    }
    const owner = this.#ownerOf(s.node);
    if (owner) chownLink(final, owner);
    try {
      fs.lutimesSync(final, timeArg(s.node.mtimeMs), timeArg(s.node.mtimeMs));
    } catch {
      // some file systems cannot set symlink times; the link itself is restored
    }
    return Promise.resolve();
  }

  done(d: SelectedDir): Promise<void> {
    renameExact(this.#abs, d);
    if (d.node !== null) {
      setMeta(path.join(this.#abs, d.rel), d.node, this.#ownerOf(d.node));
    }
    return Promise.resolve();
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = null;
    await pool?.close();
    // Large files not finalised (the restore stopped): only whole files keep their names.
    for (const s of this.#shared.values()) discardFile(s);
    this.#shared.clear();
  }

  cancelled(done: number, total: number): string {
    return `${done} of ${total} files were restored into ${this.#abs}, ` +
      `no temporary file is left: restore again with --overwrite to complete it`;
  }
}
