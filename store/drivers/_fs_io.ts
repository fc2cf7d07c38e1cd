/**
 * Small synchronous file helpers shared by the drivers over local files
 * (fs and staged).
 *
 * @module
 */
import fs from "node:fs";
import type { ByteRange } from "./types.ts";

/** Reads `range` of an open file with positioned reads, stopping at the end of the file. */
export function readRange(fd: number, range: ByteRange): Uint8Array {
  const size = fs.fstatSync(fd).size;
  const length = Math.max(0, Math.min(range.length, size - range.offset));
  const buffer = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buffer, done, length - done, range.offset + done);
    if (n === 0) break; // the file shrank under us
    done += n;
  }
  return done === length ? buffer : buffer.slice(0, done);
}

/** The `code` of a Node-style system error (`ENOENT`...), if any. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err && typeof err.code === "string") {
    return err.code;
  }
  return undefined;
}
