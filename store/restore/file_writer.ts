/**
 * The thread half of the directory output (dir_output.ts): writes restored
 * files, each under a temporary name, every block decompressed and checked
 * (stored_block.ts) before it is written, then owner, mode and mtime set and
 * the file renamed into place. Synchronous (small files are dominated by
 * system calls); runs in restore workers or in-process.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { IntegrityError } from "../errors.ts";
import { decodeChecked, type StoredBlock } from "./stored_block.ts";

/** One step of writing files. A file's steps arrive in order: begin, blocks..., end. */
export type WriteOp =
  | { readonly op: "begin"; readonly file: number; readonly final: string; readonly rel: string }
  | { readonly op: "blocks"; readonly file: number; readonly blocks: StoredBlock[] }
  | {
    readonly op: "end";
    readonly file: number;
    readonly size: number;
    readonly mode: number;
    readonly mtimeMs: number;
    /** uid and gid to set (fchown before fchmod: chown clears setuid); absent: leave the owner. */
    readonly owner?: readonly [number, number];
  }
  /** The file cannot be restored (a block of it could not be read): drop it. */
  | { readonly op: "abort"; readonly file: number; readonly message: string }
  /**
   * A large file written by several lanes (dir_output.ts): the main thread
   * created its temporary file `tmp` (exclusively, inode `dev`/`ino`); this
   * lane opens it write-only, never creating it nor following a symlink.
   * Then come its runs, then "release".
   */
  | {
    readonly op: "share";
    readonly file: number;
    readonly tmp: string;
    readonly final: string;
    readonly rel: string;
    readonly dev: number;
    readonly ino: number;
  }
  /** Blocks of a shared file, written in order from byte `offset` of it. */
  | {
    readonly op: "run";
    readonly file: number;
    readonly offset: number;
    readonly blocks: StoredBlock[];
  }
  /**
   * The last step of a shared file on this lane: closed, and what it wrote
   * told in {@linkcode WriteReport.released}. Not synced (no restored file
   * is): measured, syncing a large file costs the restore more time than
   * the later sync of the database's start saves (bench/RESULTS.md).
   */
  | { readonly op: "release"; readonly file: number };

/** The steps that end a file: its size, mode, mtime and owner from the backup. */
export type EndOp = Extract<WriteOp, { op: "end" }>;

/** Why a file could not be written. */
export interface WriteError {
  readonly kind: "integrity" | "full" | "in-the-way" | "other";
  readonly message: string;
  /** The system error code of an "other" error (EROFS, EACCES...), when there is one. */
  readonly code?: string;
  /** The path it happened on. */
  readonly path?: string;
}

/** A file that was not restored while the others were. */
export interface FailedFile {
  readonly path: string;
  readonly message: string;
}

/** What a batch of steps did. */
export interface WriteReport {
  readonly filesDone: number;
  readonly bytes: number;
  /** Files left out (a damaged block, a directory in the way); the others go on. */
  readonly failed: FailedFile[];
  /** An error that stops the restore (disk full, an unwritable target). */
  readonly error: WriteError | null;
  /**
   * Shared files this lane is done with: the bytes it wrote of each, and the
   * first integrity failure of its runs (the file is then left out).
   */
  readonly released: ReleasedShare[];
}

/** What one lane did of a shared file (see {@linkcode WriteReport.released}). */
export interface ReleasedShare {
  readonly file: number;
  readonly bytes: number;
  readonly failure: string | null;
}

/** A file open for writing under its temporary name. */
export interface OpenFile {
  /** -1 once closed. */
  fd: number;
  readonly tmp: string;
  readonly final: string;
  readonly rel: string;
  /** Bytes written into it. */
  written: number;
}

/**
 * A temporary name beside `final`: `.<12 hex>.bendsave-tmp`, 27 bytes
 * whatever the final name, so it fits wherever any legal name (up to 255
 * bytes) fits.
 */
export function tempName(final: string): string {
  return path.join(path.dirname(final), `.${randomBytes(6).toString("hex")}.bendsave-tmp`);
}

/**
 * Seconds for the utimes calls, which keep millisecond precision: half a
 * millisecond is added so that float truncation cannot land on the
 * millisecond before. Sub-millisecond parts are not restored.
 */
export function timeArg(ms: number): number {
  return (Math.floor(ms) + 0.5) / 1000;
}

function classify(e: unknown, final: string): WriteError {
  const code = (e as { code?: string }).code;
  if (code === "ENOSPC" || code === "EDQUOT") {
    return {
      kind: "full",
      message:
        `the disk holding "${final}" is full: free space (or restore elsewhere) and run the restore again`,
    };
  }
  return {
    kind: "other",
    message: `cannot write "${final}": ${(e as Error).message}`,
    ...(code !== undefined ? { code } : {}),
    path: final,
  };
}

/** A write step that failed: `detail` says whether the file or the restore stops. */
export class WriteFailure extends Error {
  /** A failure described by `detail`. */
  constructor(readonly detail: WriteError) {
    super(detail.message);
  }
}

/**
 * The plaintext of `b`, checked; a damaged block is a {@linkcode WriteFailure} of that file.
 * Valid until the next call: every caller writes it (synchronously) before it asks again.
 */
function checked(b: StoredBlock, rel: string): Uint8Array {
  try {
    return decodeChecked(b, rel, { transient: true });
  } catch (e) {
    if (!(e instanceof IntegrityError)) throw e;
    throw new WriteFailure({ kind: "integrity", message: e.message });
  }
}

/**
 * Ends file `f` of `end.size` bytes: size checked against what was
 * written, owner (fchown before fchmod: chown clears setuid), mode and mtime
 * set on its descriptor, closed, and renamed into place unless a directory
 * is there. Throws a {@linkcode WriteFailure}; `f.fd` is -1 once closed.
 */
export function finishFile(f: OpenFile, end: EndOp): void {
  if (f.written !== end.size) {
    throw new WriteFailure({
      kind: "integrity",
      message: `file ${f.rel} restored to ${f.written} bytes but the backup recorded ${end.size}`,
    });
  }
  if (end.owner) {
    try {
      fs.fchownSync(f.fd, end.owner[0], end.owner[1]);
    } catch (e) {
      throw new WriteFailure({
        kind: "other",
        message: `cannot set the owner of "${f.final}" to ${end.owner.join(":")} (${
          (e as Error).message
        }): restore with --no-owner to leave owners alone`,
      });
    }
  }
  try {
    fs.fchmodSync(f.fd, end.mode);
    fs.futimesSync(f.fd, timeArg(end.mtimeMs), timeArg(end.mtimeMs));
    const fd = f.fd;
    f.fd = -1; // closed: never close a number the system may hand out again
    fs.closeSync(fd);
  } catch (e) {
    throw new WriteFailure(classify(e, f.final));
  }
  let inTheWay = false;
  try {
    // Nothing there is the common case: no error is built for it (restoring 31,000 small files,
    // the thrown ENOENT cost each writer thread 0.5 s of its 4.7 busy seconds).
    inTheWay = fs.lstatSync(f.final, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    // not to be told: the rename decides
  }
  if (inTheWay) {
    throw new WriteFailure({
      kind: "in-the-way",
      message:
        `cannot restore file ${f.rel}: a directory is in its place in the target; move it away`,
    });
  }
  try {
    fs.renameSync(f.tmp, f.final);
  } catch (e) {
    throw new WriteFailure(classify(e, f.final));
  }
}

/** Closes `f`'s descriptor, if open, and removes its temporary file. */
export function discardFile(f: OpenFile): void {
  if (f.fd >= 0) {
    const fd = f.fd;
    f.fd = -1;
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
  }
  fs.rmSync(f.tmp, { force: true });
}

/** A shared file as one lane holds it: its first integrity failure stops its runs. */
interface Share extends OpenFile {
  failure: string | null;
}

/** Applies write steps; keeps the files that are between begin and end open. */
export class FileWriter {
  readonly #open = new Map<number, OpenFile>();
  /** Files given up on: their remaining steps are skipped. */
  readonly #dropped = new Set<number>();
  /** Shared files this lane has open, between share and release. */
  readonly #shared = new Map<number, Share>();

  /**
   * Applies `ops` in order. A file that cannot be restored (a damaged block,
   * a directory in its place) is dropped, its temporary file removed, and
   * reported in `failed` while the other files go on; any other error stops
   * the batch. A shared file's failure is told in `released` instead (the
   * main thread removes it once every lane released it).
   */
  apply(ops: readonly WriteOp[]): WriteReport {
    let filesDone = 0;
    let bytes = 0;
    const failed: FailedFile[] = [];
    const released: ReleasedShare[] = [];
    for (const op of ops) {
      if (op.op === "share" || op.op === "run" || op.op === "release") {
        try {
          bytes += this.#applyShared(op, released);
        } catch (e) {
          const detail = e instanceof WriteFailure
            ? e.detail
            : { kind: "other" as const, message: (e as Error).message };
          return { filesDone, bytes, failed, error: detail, released };
        }
        continue;
      }
      if (this.#dropped.has(op.file)) {
        if (op.op === "end" || op.op === "abort") this.#dropped.delete(op.file);
        continue;
      }
      const f = op.op === "begin" ? null : this.#open.get(op.file);
      try {
        if (op.op === "abort") {
          this.#discard(op.file);
          failed.push({ path: f?.rel ?? String(op.file), message: op.message });
        } else if (op.op === "begin") {
          const tmp = tempName(op.final);
          try {
            this.#open.set(op.file, {
              fd: fs.openSync(tmp, "wx", 0o600),
              tmp,
              final: op.final,
              rel: op.rel,
              written: 0,
            });
          } catch (e) {
            throw new WriteFailure(classify(e, op.final));
          }
        } else if (!f) {
          throw new WriteFailure({
            kind: "other",
            message: `internal error: file ${op.file} was not begun`,
          });
        } else if (op.op === "blocks") {
          for (const b of op.blocks) {
            const raw = checked(b, f.rel);
            try {
              let pos = 0;
              while (pos < raw.length) pos += fs.writeSync(f.fd, raw, pos, raw.length - pos);
            } catch (e) {
              throw new WriteFailure(classify(e, f.final));
            }
            f.written += raw.length;
            bytes += raw.length;
          }
        } else {
          finishFile(f, op);
          this.#open.delete(op.file);
          filesDone++;
        }
      } catch (e) {
        const rel = this.#open.get(op.file)?.rel;
        this.#discard(op.file);
        const detail = e instanceof WriteFailure
          ? e.detail
          : { kind: "other" as const, message: (e as Error).message };
        if (detail.kind === "integrity" || detail.kind === "in-the-way") {
          failed.push({ path: rel ?? (op.op === "begin" ? op.rel : ""), message: detail.message });
          if (op.op !== "end") this.#dropped.add(op.file);
          continue;
        }
        return { filesDone, bytes, failed, error: detail, released };
      }
    }
    return { filesDone, bytes, failed, error: null, released };
  }

  /**
   * Applies one step of a shared file; the bytes written. A damaged block
   * ends this lane's writing of the file (its failure told on release); any
   * other error is thrown.
   */
  #applyShared(
    op: Extract<WriteOp, { op: "share" | "run" | "release" }>,
    released: ReleasedShare[],
  ): number {
    if (op.op === "share") {
      let fd: number;
      try {
        // Never created here, never through a symlink: the main thread made it exclusively.
        fd = fs.openSync(op.tmp, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW);
      } catch (e) {
        throw new WriteFailure(classify(e, op.final));
      }
      const share: Share = {
        fd,
        tmp: op.tmp,
        final: op.final,
        rel: op.rel,
        written: 0,
        failure: null,
      };
      let st: fs.Stats;
      try {
        st = fs.fstatSync(fd);
      } catch (e) {
        this.#closeShare(share);
        throw new WriteFailure(classify(e, op.final));
      }
      if (st.dev !== op.dev || st.ino !== op.ino) {
        this.#closeShare(share); // not the file the main thread made: never written
        throw new WriteFailure({
          kind: "other",
          message:
            `the temporary file "${op.tmp}" of ${op.rel} was replaced while it was restored: make sure nothing else writes into the restore target, and restore again`,
        });
      }
      this.#shared.set(op.file, share);
      return 0;
    }
    const share = this.#shared.get(op.file);
    if (!share) {
      throw new WriteFailure({
        kind: "other",
        message: `internal error: file ${op.file} was not shared`,
      });
    }
    if (op.op === "release") {
      this.#shared.delete(op.file);
      this.#closeShare(share);
      released.push({ file: op.file, bytes: share.written, failure: share.failure });
      return 0;
    }
    if (share.failure !== null) return 0;
    let bytes = 0;
    let at = op.offset;
    for (const b of op.blocks) {
      let raw: Uint8Array;
      try {
        raw = checked(b, share.rel);
      } catch (e) {
        if (!(e instanceof WriteFailure)) throw e;
        share.failure = e.message;
        this.#closeShare(share);
        return bytes;
      }
      try {
        let pos = 0;
        while (pos < raw.length) {
          pos += fs.writeSync(share.fd, raw, pos, raw.length - pos, at + pos);
        }
      } catch (e) {
        throw new WriteFailure(classify(e, share.final));
      }
      at += raw.length;
      share.written += raw.length;
      bytes += raw.length;
    }
    return bytes;
  }

  /** Closes this lane's descriptor of a shared file (the main thread owns the file). */
  #closeShare(share: Share): void {
    if (share.fd < 0) return;
    const fd = share.fd;
    share.fd = -1;
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
  }

  /** Closes and removes the temporary file of `file`, if it is open. */
  #discard(file: number): void {
    const f = this.#open.get(file);
    if (!f) return;
    discardFile(f);
    this.#open.delete(file);
  }

  /**
   * Closes and removes every file not yet ended; shared files not released
   * are removed too (the restore stopped: none of them will be finalised).
   */
  abort(): void {
    for (const file of [...this.#open.keys()]) this.#discard(file);
    for (const share of this.#shared.values()) discardFile(share);
    this.#shared.clear();
    this.#dropped.clear();
  }
}
