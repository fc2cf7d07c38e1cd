/**
 * Reading a WAL file whole for a push, on whichever thread pushes it: the
 * synchronous `wal-push` (the main thread) or the background pusher (the
 * pool thread that hashes and compresses it, `wal.encode` of
 * store/worker_jobs.ts), so 16 MiB is read once, where it is used.
 *
 * @module
 */
import * as fs from "node:fs";
import { InvalidInput } from "./errors.ts";

/**
 * The bytes of `file` as they are when the read ends: a file that shrank
 * while it was read is returned as far as it reached, one that grew is read
 * again whole.
 */
export function readWholeFile(file: string): Uint8Array {
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    const buf = new Uint8Array(size);
    let pos = 0;
    while (pos < size) {
      const n = fs.readSync(fd, buf, pos, size - pos, pos);
      if (n === 0) return buf.subarray(0, pos); // shrank meanwhile
      pos += n;
    }
    // Grew meanwhile: read it all as it is now.
    if (fs.readSync(fd, new Uint8Array(1), 0, 1, size) !== 0) return fs.readFileSync(file);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

/** The errno code of a failed read (`ENOENT`, `EACCES`...), or its message. */
export function readErrorCode(e: unknown): string {
  return (e as { code?: string }).code ?? String((e as Error)?.message ?? e);
}

/** The error of a push whose WAL file cannot be read (`code`: as {@linkcode readErrorCode} gives it). */
export function unreadableWal(file: string, code: string): InvalidInput {
  return new InvalidInput(
    `cannot read WAL file "${file}" (${code}): check that archive_command passes %p and that this user may read pg_wal`,
  );
}
