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
  | { readonly op: "abort"; readonly file: number; readonly message: string };

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

class Failure extends Error {
  constructor(readonly detail: WriteError) {
    super(detail.message);
  }
}

/** Applies write steps; keeps the files that are between begin and end open. */
export class FileWriter {
  readonly #open = new Map<
    number,
    { fd: number; tmp: string; final: string; rel: string; written: number }
  >();
  /** Files given up on: their remaining steps are skipped. */
  readonly #dropped = new Set<number>();

  /**
   * Applies `ops` in order. A file that cannot be restored (a damaged block,
   * a directory in its place) is dropped, its temporary file removed, and
   * reported in `failed` while the other files go on; any other error stops
   * the batch.
   */
  apply(ops: readonly WriteOp[]): WriteReport {
    let filesDone = 0;
    let bytes = 0;
    const failed: FailedFile[] = [];
    for (const op of ops) {
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
            throw new Failure(classify(e, op.final));
          }
        } else if (!f) {
          throw new Failure({
            kind: "other",
            message: `internal error: file ${op.file} was not begun`,
          });
        } else if (op.op === "blocks") {
          for (const b of op.blocks) {
            let raw: Uint8Array;
            try {
              raw = decodeChecked(b, f.rel);
            } catch (e) {
              if (!(e instanceof IntegrityError)) throw e;
              throw new Failure({ kind: "integrity", message: e.message });
            }
            try {
              let pos = 0;
              while (pos < raw.length) pos += fs.writeSync(f.fd, raw, pos, raw.length - pos);
            } catch (e) {
              throw new Failure(classify(e, f.final));
            }
            f.written += raw.length;
            bytes += raw.length;
          }
        } else {
          if (f.written !== op.size) {
            throw new Failure({
              kind: "integrity",
              message:
                `file ${f.rel} restored to ${f.written} bytes but the backup recorded ${op.size}`,
            });
          }
          if (op.owner) {
            try {
              fs.fchownSync(f.fd, op.owner[0], op.owner[1]);
            } catch (e) {
              throw new Failure({
                kind: "other",
                message: `cannot set the owner of "${f.final}" to ${op.owner.join(":")} (${
                  (e as Error).message
                }): restore with --no-owner to leave owners alone`,
              });
            }
          }
          try {
            fs.fchmodSync(f.fd, op.mode);
            fs.futimesSync(f.fd, timeArg(op.mtimeMs), timeArg(op.mtimeMs));
            const fd = f.fd;
            f.fd = -1; // closed: never close a number the system may hand out again
            fs.closeSync(fd);
          } catch (e) {
            throw new Failure(classify(e, f.final));
          }
          let inTheWay = false;
          try {
            inTheWay = fs.lstatSync(f.final).isDirectory();
          } catch {
            // nothing there
          }
          if (inTheWay) {
            throw new Failure({
              kind: "in-the-way",
              message:
                `cannot restore file ${f.rel}: a directory is in its place in the target; move it away`,
            });
          }
          try {
            fs.renameSync(f.tmp, f.final);
          } catch (e) {
            throw new Failure(classify(e, f.final));
          }
          this.#open.delete(op.file);
          filesDone++;
        }
      } catch (e) {
        const rel = this.#open.get(op.file)?.rel;
        this.#discard(op.file);
        const detail = e instanceof Failure
          ? e.detail
          : { kind: "other" as const, message: (e as Error).message };
        if (detail.kind === "integrity" || detail.kind === "in-the-way") {
          failed.push({ path: rel ?? (op.op === "begin" ? op.rel : ""), message: detail.message });
          if (op.op !== "end") this.#dropped.add(op.file);
          continue;
        }
        return { filesDone, bytes, failed, error: detail };
      }
    }
    return { filesDone, bytes, failed, error: null };
  }

  /** Closes and removes the temporary file of `file`, if it is open. */
  #discard(file: number): void {
    const f = this.#open.get(file);
    if (!f) return;
    if (f.fd >= 0) {
      try {
        fs.closeSync(f.fd);
      } catch {
        // already closed
      }
    }
    fs.rmSync(f.tmp, { force: true });
    this.#open.delete(file);
  }

  /** Closes and removes every file not yet ended. */
  abort(): void {
    for (const file of [...this.#open.keys()]) this.#discard(file);
    this.#dropped.clear();
  }
}
