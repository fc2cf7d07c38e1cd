/**
 * Writes restored files: each under a temporary name, every block
 * decompressed and checked against its SHA-256 before it is written, then
 * mode and mtime set and the file renamed into place. Synchronous (small
 * files are dominated by system calls); runs in restore workers or
 * in-process.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { decodeBlock } from "../../formats/codec.ts";
import { equalBytes, sha256, toHex } from "../../formats/hash.ts";

/** A stored block of a file, as read from its pack. */
export interface StoredBlock {
  readonly id: Uint8Array;
  readonly pack: string;
  readonly codec: number;
  readonly rawLength: number;
  readonly data: Uint8Array;
}

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
  };

/** Why a file could not be written. */
export interface WriteError {
  readonly kind: "integrity" | "full" | "in-the-way" | "other";
  readonly message: string;
}

/** What a batch of steps did. */
export interface WriteReport {
  readonly filesDone: number;
  readonly bytes: number;
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
  return { kind: "other", message: `cannot write "${final}": ${(e as Error).message}` };
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

  /** Applies `ops` in order; stops at the first error (that file's temporary file is removed). */
  apply(ops: readonly WriteOp[]): WriteReport {
    let filesDone = 0;
    let bytes = 0;
    for (const op of ops) {
      const f = op.op === "begin" ? null : this.#open.get(op.file);
      try {
        if (op.op === "begin") {
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
              raw = decodeBlock(b.codec, b.data, b.rawLength);
              if (!equalBytes(sha256(raw), b.id)) throw new SyntaxError("does not match its hash");
            } catch (e) {
              throw new Failure({
                kind: "integrity",
                message: `block ${
                  toHex(b.id)
                } in pack ${b.pack} needed by file ${f.rel} is damaged (${
                  (e as Error).message
                }); nothing was written under that file's name`,
              });
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
          try {
            fs.fchmodSync(f.fd, op.mode);
            fs.futimesSync(f.fd, timeArg(op.mtimeMs), timeArg(op.mtimeMs));
            fs.closeSync(f.fd);
          } catch (e) {
            throw new Failure(classify(e, f.final));
          }
          this.#open.delete(op.file);
          let inTheWay = false;
          try {
            inTheWay = fs.lstatSync(f.final).isDirectory();
          } catch {
            // nothing there
          }
          if (inTheWay) {
            fs.rmSync(f.tmp, { force: true });
            throw new Failure({
              kind: "in-the-way",
              message:
                `cannot restore file ${f.rel}: a directory is in its place in the target; move it away`,
            });
          }
          try {
            fs.renameSync(f.tmp, f.final);
          } catch (e) {
            fs.rmSync(f.tmp, { force: true });
            throw new Failure(classify(e, f.final));
          }
          filesDone++;
        }
      } catch (e) {
        const file = this.#open.get(op.file);
        if (file) {
          try {
            fs.closeSync(file.fd);
          } catch {
            // already closed
          }
          fs.rmSync(file.tmp, { force: true });
          this.#open.delete(op.file);
        }
        const detail = e instanceof Failure
          ? e.detail
          : { kind: "other" as const, message: (e as Error).message };
        return { filesDone, bytes, error: detail };
      }
    }
    return { filesDone, bytes, error: null };
  }

  /** Closes and removes every file not yet ended. */
  abort(): void {
    for (const f of this.#open.values()) {
      try {
        fs.closeSync(f.fd);
      } catch {
        // already closed
      }
      fs.rmSync(f.tmp, { force: true });
    }
    this.#open.clear();
  }
}
