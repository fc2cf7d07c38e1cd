/**
 * The spool directory of the asynchronous WAL commands: `wal-push --async`
 * and `wal-fetch --prefetch` (see store/wal_push_async.ts and
 * store/wal_prefetch.ts). Local files only, no repository access, and only
 * `node:` modules and the small WAL name module: the foreground process
 * PostgreSQL starts per WAL file loads this and nothing heavier.
 *
 * What a spool directory holds (one role each: push or fetch; the names do
 * not collide, so one directory may serve both):
 *
 * | file | written by | meaning |
 * |---|---|---|
 * | `push.lock`, `fetch.lock` | the background process | `{pid, started}`; touched every second while it runs |
 * | `<wal>.req` | a push foreground | "push this file" (its absolute path) |
 * | `<wal>.ok` | the pusher | the file is durable in the repository: size, SHA-256 and the file's identity when read |
 * | `<wal>.error` | the pusher | the push failed: `{exit, message}` |
 * | `<wal>.want` | a fetch foreground | "PostgreSQL asks for this one" (the prefetch window starts there) |
 * | `<wal>` and `<wal>.meta` | the prefetcher | a fetched, checked segment and its size, SHA-256, repository and system |
 * | `<wal>.missing`, `<wal>.fetch-error` | the prefetcher | not archived; failed (the foreground then fetches itself) |
 * | `.tmp-*` | everyone | a file being written; renamed into place when complete |
 *
 * Every file is written under a temporary name and renamed, so a reader
 * never sees a partial one; a status is only a cache of what the repository
 * holds, so nothing here is fsynced except a served segment. A status is
 * written only after what it states is true (`.ok` after the record is
 * durable), so a process killed at any point leaves either no status or a
 * true one.
 *
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { createHash, randomBytes } from "node:crypto";
import { isAlive } from "./lock.ts";
import { syncDirectory } from "./drivers/fs.ts";

/** A background process's lock is stale when not touched for this long (it touches it every second). */
export const SPOOL_LOCK_STALE_MS = 10_000;
/** How often a background process touches its lock. */
export const SPOOL_HEARTBEAT_MS = 1_000;

/** The two kinds of background process. */
export type SpoolRole = "push" | "fetch";

/** Where a file of the spool lives. */
export function spoolFile(spool: string, name: string): string {
  return path.join(spool, name);
}

/** Creates the spool directory (mode 0700) when missing. */
export function ensureSpool(spool: string): void {
  fs.mkdirSync(spool, { recursive: true, mode: 0o700 });
}

/** Writes `data` to `<spool>/<name>` atomically (temporary file and rename; no fsync). */
export function writeSpoolFile(spool: string, name: string, data: string | Uint8Array): void {
  const temp = path.join(spool, `.tmp-${randomBytes(8).toString("hex")}`);
  fs.writeFileSync(temp, data, { mode: 0o600 });
  try {
    fs.renameSync(temp, path.join(spool, name));
  } catch (e) {
    fs.rmSync(temp, { force: true });
    throw e;
  }
}

/** Reads `<spool>/<name>` as JSON; null when missing or not JSON (torn by a crash, say). */
export function readSpoolJson<T>(spool: string, name: string): T | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(spool, name), "utf8");
  } catch {
    return null;
  }
  try {
    const v = JSON.parse(text);
    return v !== null && typeof v === "object" ? v as T : null;
  } catch {
    return null;
  }
}

/** Removes `<spool>/<name>` if it exists. */
export function removeSpoolFile(spool: string, name: string): void {
  fs.rmSync(path.join(spool, name), { force: true });
}

/** The content of a background process's lock file. */
export interface SpoolLockInfo {
  readonly pid: number;
  readonly started: number;
  /** The repository it serves, as the command named it. */
  readonly repository: string;
}

/** `<wal>.req`: a foreground's request to push a file into a repository. */
export interface PushRequest {
  /** The file's absolute path. */
  readonly file: string;
  readonly repository: string;
}

/**
 * True when a live background process of `role` holds the spool: its lock
 * names a running process and was touched within {@linkcode SPOOL_LOCK_STALE_MS}.
 */
export function spoolLockLive(spool: string, role: SpoolRole, now = Date.now()): boolean {
  return spoolLockHolder(spool, role, now) !== null;
}

/**
 * The live holder of the background lock of `role` (see
 * {@linkcode spoolLockLive}), or null. A lock still being written counts as
 * live for a second, with an empty repository.
 */
export function spoolLockHolder(
  spool: string,
  role: SpoolRole,
  now = Date.now(),
): SpoolLockInfo | null {
  const file = path.join(spool, `${role}.lock`);
  let mtime: number;
  try {
    mtime = fs.statSync(file).mtimeMs;
  } catch {
    return null;
  }
  const info = readSpoolJson<SpoolLockInfo>(spool, `${role}.lock`);
  if (!info || typeof info.pid !== "number") {
    return now - mtime < 1_000 ? { pid: 0, started: mtime, repository: "" } : null;
  }
  return isAlive(info.pid) && now - mtime < SPOOL_LOCK_STALE_MS ? info : null;
}

/** A held background lock: touch it while working, release it at the end. */
export interface SpoolLock {
  /** Marks the lock fresh (call at least every {@linkcode SPOOL_HEARTBEAT_MS}). */
  touch(): void;
  /** Removes the lock if it is still this process's. */
  release(): void;
}

/**
 * Takes the background lock of `role`, or returns null when a live process
 * holds it. A stale lock (its process gone, or not touched for
 * {@linkcode SPOOL_LOCK_STALE_MS}) is taken over. Two processes taking over
 * the same stale lock at the same instant may both run: that costs work,
 * never correctness, since every push and fetch is safe to run twice.
 */
export function acquireSpoolLock(
  spool: string,
  role: SpoolRole,
  repository: string,
): SpoolLock | null {
  const file = path.join(spool, `${role}.lock`);
  const body = JSON.stringify(
    { pid: process.pid, started: Date.now(), repository } satisfies SpoolLockInfo,
  );
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, body, { flag: "wx", mode: 0o600 });
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
      if (spoolLockLive(spool, role)) return null;
      fs.rmSync(file, { force: true });
      continue;
    }
    const mine = () => readSpoolJson<SpoolLockInfo>(spool, `${role}.lock`)?.pid === process.pid;
    return {
      touch() {
        const t = new Date();
        try {
          fs.utimesSync(file, t, t);
        } catch {
          // removed (the spool deleted): the process notices when it next scans
        }
      },
      release() {
        if (mine()) fs.rmSync(file, { force: true });
      },
    };
  }
  return null;
}

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The identity of a file as a stat sees it: the inode and modification time as well as the size. */
export interface FileIdentity {
  readonly size: number;
  readonly dev: string;
  readonly ino: string;
  /** Modification time in nanoseconds, in decimal. */
  readonly mtimeNs: string;
}

/** The identity of `file` now (a `stat` with nanosecond times). */
export function fileIdentity(file: string): FileIdentity {
  const st = fs.statSync(file, { bigint: true });
  return {
    size: Number(st.size),
    dev: st.dev.toString(),
    ino: st.ino.toString(),
    mtimeNs: st.mtimeNs.toString(),
  };
}

/** The SHA-256 of a whole file, in hex, and its size. */
export function hashFile(file: string): { sha256: string; size: number } {
  const fd = fs.openSync(file, "r");
  try {
    const h = createHash("sha256");
    const buf = new Uint8Array(1 << 20);
    let size = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, size);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      size += n;
    }
    return { sha256: h.digest("hex"), size };
  } finally {
    fs.closeSync(fd);
  }
}

/** `<wal>.ok`: the pushed file is durable in the repository. */
export interface PushOk {
  readonly name: string;
  /** The repository as the command named it (`--to`). */
  readonly repository: string;
  readonly systemId: string;
  readonly size: number;
  /** SHA-256 of the pushed content, hex (the archive record's). */
  readonly sha256: string;
  /** The file's identity just before the pusher read it. */
  readonly identity: FileIdentity;
}

/** `<wal>.error` and `<wal>.fetch-error`: the one-line reason and the exit code it maps to. */
export interface SpoolError {
  readonly exit: number;
  readonly message: string;
}

function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.size === b.size && a.dev === b.dev && a.ino === b.ino && a.mtimeNs === b.mtimeNs;
}

/**
 * Whether an `.ok` status speaks for the content of `file` now. Cheap when
 * the file is the one the pusher read (same device, inode, size and
 * nanosecond modification time: PostgreSQL never rewrites a segment it
 * marked ready, and any rewrite moves the modification time); otherwise, with
 * `rehash`, the file is hashed and compared with the status's size and
 * SHA-256 (a recycled or restored file under the name). False when the file
 * cannot be read.
 */
export function pushOkTrusted(ok: PushOk, file: string, rehash = true): boolean {
  try {
    if (ok.identity && sameIdentity(ok.identity, fileIdentity(file))) return true;
    if (!rehash) return false;
    const h = hashFile(file);
    return h.size === ok.size && h.sha256 === ok.sha256;
  } catch {
    return false;
  }
}

/** `<wal>.meta`: a segment the prefetcher fetched and checked. */
export interface SpoolMeta {
  readonly name: string;
  /** The repository's location as the fetch named it. */
  readonly repository: string;
  readonly systemId: string;
  readonly size: number;
  /** SHA-256 of the content, hex (the archive record's). */
  readonly sha256: string;
  /**
   * The spooled file as the prefetcher wrote and checked it: while the file
   * still has this identity, serving it needs no second hash of its content.
   */
  readonly identity?: FileIdentity;
}

/** True while the data directory asks for recovery (or it cannot be told). */
export function inRecovery(pgData: string): boolean {
  if (!fs.existsSync(path.join(pgData, "global"))) return true; // not a data directory: keep
  return fs.existsSync(path.join(pgData, "recovery.signal")) ||
    fs.existsSync(path.join(pgData, "standby.signal"));
}

/** What {@linkcode serveFromSpool} expects of a spooled segment. */
export interface SpoolExpect {
  readonly repository: string;
  /** The system identifier, when the foreground knows it (pg_control). */
  readonly systemId?: string | null;
}

/**
 * Serves spooled segment `name` at `dest` when it is there and checks: its
 * `.meta` names the same repository (and system), and the file's size and
 * SHA-256 are the recorded ones (a spool file of another content is removed,
 * never served; so is one changed after it was served). `dest` appears
 * complete or not at all: a hard link renamed into place (the spool keeps
 * the segment, to serve it again), else the file moved there, or on another
 * file system a copy to a temporary file beside it, flushed, then renamed.
 * Returns the served file's `.meta`, or null when there is nothing to serve.
 */
export function serveFromSpool(
  spool: string,
  name: string,
  dest: string,
  expect: SpoolExpect,
): SpoolMeta | null {
  const meta = readSpoolJson<SpoolMeta>(spool, `${name}.meta`);
  const file = path.join(spool, name);
  if (!meta || !fs.existsSync(file)) return null;
  const discard = () => {
    removeSpoolFile(spool, name);
    removeSpoolFile(spool, `${name}.meta`);
  };
  if (
    meta.name !== name || meta.repository !== expect.repository ||
    (expect.systemId && meta.systemId !== expect.systemId)
  ) {
    discard();
    return null;
  }
  // The file the prefetcher checked against the archive record, untouched since (PostgreSQL
  // checks every WAL record's CRC as it replays, too); anything else is hashed again.
  try {
    if (!meta.identity || !sameIdentity(meta.identity, fileIdentity(file))) {
      const h = hashFile(file);
      if (h.size !== meta.size || h.sha256 !== meta.sha256) {
        discard();
        return null;
      }
    }
  } catch {
    return null; // taken by another foreground meanwhile
  }
  const dir = path.dirname(path.resolve(dest));
  if (linkInto(file, dest, dir)) {
    // The spool keeps it (and its .meta): PostgreSQL asks for the last segment it replayed again
    // at the end of recovery. The prefetcher removes the segments behind the newest request.
    syncDirectory(dir);
    return meta;
  }
  try {
    fs.renameSync(file, dest);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT") return null; // another foreground took it
    if (code !== "EXDEV") throw e;
    copyInto(file, dest, dir);
    removeSpoolFile(spool, name);
  }
  removeSpoolFile(spool, `${name}.meta`);
  syncDirectory(dir);
  return meta;
}

/**
 * Puts a hard link to `file` at `dest` through a temporary name beside it
 * (a rename over whatever is at `dest`); false when the file system makes
 * no link there (the caller moves or copies the file instead).
 */
function linkInto(file: string, dest: string, dir: string): boolean {
  const temp = tempBeside(dir);
  try {
    fs.linkSync(file, temp);
  } catch {
    return false;
  }
  try {
    fs.renameSync(temp, dest);
    return true;
  } catch (e) {
    fs.rmSync(temp, { force: true });
    throw e;
  }
}

/**
 * A fresh temporary name in directory `dir` (a WAL destination such as
 * `pg_wal/`), `.bendsave-<24 hex>.tmp`, renamed over the destination once
 * complete.
 */
export function tempBeside(dir: string): string {
  return path.join(dir, `.bendsave-${randomBytes(12).toString("hex")}.tmp`);
}

/** Copies `file` to `dest` through a flushed temporary file beside it. */
function copyInto(file: string, dest: string, dir: string): void {
  const temp = tempBeside(dir);
  try {
    fs.copyFileSync(file, temp);
    const fd = fs.openSync(temp, "r+");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, dest);
  } catch (e) {
    fs.rmSync(temp, { force: true });
    throw e;
  }
}

/**
 * The names of the spool's `*<suffix>` files, sorted (e.g. `.req`: the
 * pending requests).
 */
export function spoolNames(spool: string, suffix: string): string[] {
  return fs.readdirSync(spool).filter((f) => f.endsWith(suffix) && !f.startsWith("."))
    .map((f) => f.slice(0, -suffix.length)).sort();
}

/** Removes temporary files older than a minute (a process killed while writing one). */
export function removeStaleTemps(spool: string, now = Date.now()): void {
  for (const f of fs.readdirSync(spool)) {
    if (!f.startsWith(".tmp-")) continue;
    try {
      if (now - fs.statSync(path.join(spool, f)).mtimeMs > 60_000) {
        fs.rmSync(path.join(spool, f), { force: true });
      }
    } catch {
      // gone meanwhile
    }
  }
}
