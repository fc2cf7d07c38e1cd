/**
 * A blob store in a local (or mounted) directory.
 *
 * Layout below the root:
 *
 * | kind       | path                                   |
 * |------------|----------------------------------------|
 * | `config`   | `config`                               |
 * | `guide`    | `bendsave.md`                          |
 * | `manifest` | `manifests/<name>`                     |
 * | `pack`     | `packs/<first two hex digits>/<name>`  |
 * | `index`    | `index/<name>`                         |
 * | `lock`     | `locks/<name>`                         |
 * | `wal`      | `wal/<system id>/<WAL file name>`      |
 * | `raw`      | the relative path itself               |
 *
 * Every save writes a temporary `.tmp-<random>` file beside its target,
 * flushes it, renames (or hard-links) it into place and flushes the
 * directory, so a crash leaves either the old object, the new one or nothing,
 * plus at most a stray temporary file that {@linkcode FsStore.cleanTemporaryFiles}
 * removes later.
 *
 * The implementation uses synchronous `node:fs` calls behind the async
 * interface: on small files they are several times faster than async calls.
 *
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import {
  AccessDenied,
  AlreadyExists,
  BendsaveError,
  InvalidInput,
  IoError,
  NotFound,
  ReadOnlyError,
  RepositoryNotFound,
  StorageFull,
} from "../errors.ts";
import type {
  BlobStore,
  ByteRange,
  Capabilities,
  FileInfo,
  FileKind,
  Handle,
  SaveOptions,
} from "./types.ts";
import {
  canonicalName,
  checkRange,
  checkStreamSize,
  describeHandle,
  FAN_OUT_DIR,
  isValidSegment,
  isWalRecordName,
  KIND_DIRS,
  objectKey,
  PACK_NAME,
  SINGLETONS,
  streamSizeError,
  TEMP_PREFIX,
  WAL_DIR,
} from "./_layout.ts";
import { errorCode, readRange } from "./_fs_io.ts";

const HOUR_MS = 60 * 60 * 1000;

/** The temporary file of a save in progress. */
interface TempFile {
  /** The target path. */
  readonly file: string;
  readonly dir: string;
  /** The temporary path beside the target. */
  readonly temp: string;
  readonly fd: number;
}

/** Options of {@linkcode FsStore.open}. */
export interface FsStoreOpenOptions {
  /** Create the root directory (and its parents) when it does not exist. Default false. */
  readonly create?: boolean;
}

/** Options of {@linkcode FsStore.cleanTemporaryFiles}. */
export interface CleanTemporaryFilesOptions {
  /**
   * Only remove temporary files last modified at least this many milliseconds
   * ago, so saves still in flight are left alone. Default one hour.
   */
  readonly olderThanMs?: number;
}

/**
 * A {@linkcode BlobStore} in a directory of the local file system.
 *
 * Names are checked before any file is touched: a pack name must be 64
 * lowercase hex digits; manifest, index and lock names a single path segment
 * (no `/`, not `.` or `..`, no NUL); a raw name a relative path without empty,
 * `.` or `..` segments. The name of a `config` or `guide` handle is ignored:
 * each is a single file, reported as `config` and `bendsave.md`. A bad name
 * throws a `TypeError`.
 *
 * @example
 * ```ts
 * import { FsStore } from "./fs.ts";
 *
 * const store = await FsStore.open("/backups/repo", { create: true });
 * await store.save({ kind: "lock", name: "host-1" }, new Uint8Array([1]), { exclusive: true });
 * const bytes = await store.load({ kind: "lock", name: "host-1" });
 * ```
 */
export class FsStore implements BlobStore {
  /** The absolute path of the root directory. */
  readonly root: string;
  /** What this driver can do. */
  readonly capabilities: Capabilities = {
    writable: true,
    exclusiveCreate: true,
    rangedRead: true,
    name: "fs",
  };
  /** The outermost directory `open` created for the root, or null. */
  #createdDirectory: string | null = null;

  private constructor(root: string) {
    this.root = root;
  }

  /** The root directory, for messages. */
  get location(): string {
    return this.root;
  }

  /**
   * Opens the store rooted at directory `root`.
   *
   * Throws `InvalidInput` when `root` is a file, and `RepositoryNotFound` when
   * it does not exist and `create` is not set.
   */
  static open(root: string, options: FsStoreOpenOptions = {}): Promise<FsStore> {
    return Promise.try(() => FsStore.#openSync(root, options));
  }

  static #openSync(root: string, options: FsStoreOpenOptions): FsStore {
    if (typeof root !== "string" || root === "") {
      throw new TypeError("the repository location is empty: give a directory path");
    }
    const absolute = path.resolve(root);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(absolute);
    } catch (err) {
      const code = errorCode(err);
      if (code === "ENOENT" && options.create === true) {
        const top = topMissing(absolute);
        makeDirectories(absolute);
        const store = new FsStore(absolute);
        store.#createdDirectory = top;
        return store;
      }
      if (code === "ENOENT") {
        throw new RepositoryNotFound(
          `there is no repository at "${absolute}": check the path, or create the repository first`,
          { cause: err },
        );
      }
      if (code === "ENOTDIR") {
        throw new InvalidInput(
          `repository location "${absolute}" lies below a file, not a directory: give a directory path`,
          { cause: err },
        );
      }
      throw translateError(err, absolute, "open");
    }
    if (!stat.isDirectory()) {
      throw new InvalidInput(
        `repository location "${absolute}" is a file, not a directory: give a directory path`,
      );
    }
    return new FsStore(absolute);
  }

  /**
   * Stores `data` under `h` atomically and durably. With `exclusive`, fails
   * with `AlreadyExists` when the name exists. The bytes are written before
   * the promise settles; `data` may be reused afterwards.
   */
  save(h: Handle, data: Uint8Array, options: SaveOptions = {}): Promise<void> {
    return Promise.try(() => this.#save(h, data, options));
  }

  /**
   * Writes (a large object off the main thread, a small one at once), then
   * flushes off the main thread.
   */
  async #save(h: Handle, data: Uint8Array, options: SaveOptions): Promise<void> {
    const temp = this.#openTemp(h);
    try {
      if (data.length >= ASYNC_WRITE_BYTES) await writeAllAsync(temp.fd, data);
      else writeAll(temp.fd, data);
    } catch (err) {
      this.#discard(temp);
      throw translateError(err, temp.file, "save");
    }
    await this.#commit(h, temp, options);
  }

  /**
   * Stores the bytes of `chunks` (exactly `size` of them) under `h`: they are
   * written to a temporary file beside the target as they come, which is
   * flushed and renamed (or hard-linked, with `exclusive`) into place once
   * the last one is written. When `chunks` throws or holds another number of
   * bytes (`RangeError`), the temporary file is removed and nothing is stored.
   */
  async saveStream(
    h: Handle,
    chunks: AsyncIterable<Uint8Array>,
    size: number,
    options: SaveOptions = {},
  ): Promise<void> {
    checkStreamSize(size);
    const temp = this.#openTemp(h);
    try {
      let written = 0;
      for await (const chunk of chunks) {
        written += chunk.length;
        if (written > size) throw streamSizeError(h, written, size);
        try {
          writeAll(temp.fd, chunk);
        } catch (err) {
          throw translateError(err, temp.file, "save");
        }
      }
      if (written !== size) throw streamSizeError(h, written, size);
    } catch (err) {
      this.#discard(temp);
      throw err;
    }
    await this.#commit(h, temp, options);
  }

  /** Creates the temporary file of a save of `h` (and the directories it needs). */
  #openTemp(h: Handle): TempFile {
    const file = this.#path(h);
    const dir = path.dirname(file);
    const temp = path.join(dir, TEMP_PREFIX + randomBytes(12).toString("hex"));
    let fd: number;
    try {
      try {
        fd = fs.openSync(temp, "wx", 0o644);
      } catch (err) {
        if (errorCode(err) !== "ENOENT") throw err;
        makeDirectories(dir, this.root);
        fd = fs.openSync(temp, "wx", 0o644);
      }
    } catch (err) {
      throw translateError(err, file, "save");
    }
    return { file, dir, temp, fd };
  }

  /** Closes and removes the temporary file of a failed save, quietly. */
  #discard(temp: TempFile): void {
    closeQuietly(temp.fd);
    unlinkQuietly(temp.temp);
  }

  /**
   * Flushes the written temporary file and gives it its name; on failure
   * removes it. The two flushes (the file's, then its directory's) run on
   * the runtime's blocking threads: a WAL pusher or a backup goes on
   * hashing and compressing meanwhile.
   */
  async #commit(h: Handle, temp: TempFile, options: SaveOptions): Promise<void> {
    const { file, dir } = temp;
    let fd: number | undefined = temp.fd;
    let tempExists = true;
    try {
      await fsyncAsync(fd);
      fs.closeSync(fd);
      fd = undefined;
      if (options.exclusive === true) {
        try {
          fs.linkSync(temp.temp, file);
        } catch (err) {
          if (errorCode(err) === "EEXIST") {
            throw new AlreadyExists(
              `${
                describeHandle(h)
              } already exists in "${this.root}": choose another name or remove it first`,
              { cause: err },
            );
          }
          throw err;
        }
        fs.unlinkSync(temp.temp);
      } else {
        fs.renameSync(temp.temp, file);
      }
      tempExists = false;
      await syncDirectoryAsync(dir);
    } catch (err) {
      if (fd !== undefined) closeQuietly(fd);
      if (tempExists) unlinkQuietly(temp.temp);
      throw translateError(err, file, "save");
    }
  }

  /**
   * Reads the whole object, or `range` of it. A range reaching past the end
   * returns the bytes that exist (possibly none) rather than failing. Throws
   * `NotFound` when the object is absent and `RangeError` for a negative or
   * fractional range.
   */
  load(h: Handle, range?: ByteRange): Promise<Uint8Array> {
    return Promise.try(() => this.#loadSync(h, range));
  }

  #loadSync(h: Handle, range: ByteRange | undefined): Uint8Array {
    const file = this.#path(h);
    if (range !== undefined) checkRange(range);
    try {
      const fd = fs.openSync(file, "r");
      try {
        return readRange(fd, range ?? { offset: 0, length: Number.MAX_SAFE_INTEGER });
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      throw this.#readError(err, h, file);
    }
  }

  /** Size and modification time of one object. Throws `NotFound` when absent. */
  stat(h: Handle): Promise<FileInfo> {
    return Promise.try(() => this.#statSync(h));
  }

  #statSync(h: Handle): FileInfo {
    const file = this.#path(h);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch (err) {
      throw this.#readError(err, h, file);
    }
    if (!stat.isFile()) throw this.#notFound(h, file);
    return { kind: h.kind, name: canonicalName(h), size: stat.size, mtimeMs: stat.mtimeMs };
  }

  /**
   * Every object of a kind, in no set order. Temporary files, symbolic links
   * and files whose names are not valid for the kind are skipped; a missing
   * directory yields nothing. For `raw`, every regular file below the root,
   * as a relative path with `/`.
   */
  async *list(kind: FileKind): AsyncIterable<FileInfo> {
    switch (kind) {
      case "config":
      case "guide": {
        const name = SINGLETONS[kind];
        const stat = statFile(path.join(this.root, name));
        if (stat !== undefined) yield { kind, name, size: stat.size, mtimeMs: stat.mtimeMs };
        return;
      }
      case "manifest":
      case "index":
      case "lock":
      case "key": {
        const dir = path.join(this.root, KIND_DIRS[kind]);
        for (const name of readFileNames(dir)) {
          if (!isValidSegment(name)) continue;
          const stat = statFile(path.join(dir, name));
          if (stat !== undefined) yield { kind, name, size: stat.size, mtimeMs: stat.mtimeMs };
        }
        return;
      }
      case "pack": {
        const packs = path.join(this.root, "packs");
        for (const entry of readDirectory(packs)) {
          if (!entry.isDirectory() || !FAN_OUT_DIR.test(entry.name)) continue;
          const dir = path.join(packs, entry.name);
          for (const name of readFileNames(dir)) {
            if (!PACK_NAME.test(name) || !name.startsWith(entry.name)) continue;
            const stat = statFile(path.join(dir, name));
            if (stat !== undefined) yield { kind, name, size: stat.size, mtimeMs: stat.mtimeMs };
          }
        }
        return;
      }
      case "wal": {
        const wal = path.join(this.root, WAL_DIR);
        for (const entry of readDirectory(wal)) {
          if (!entry.isDirectory()) continue;
          const dir = path.join(wal, entry.name);
          for (const file of readFileNames(dir)) {
            const name = `${entry.name}/${file}`;
            if (!isWalRecordName(name)) continue;
            const stat = statFile(path.join(dir, file));
            if (stat !== undefined) yield { kind, name, size: stat.size, mtimeMs: stat.mtimeMs };
          }
        }
        return;
      }
      case "raw": {
        for (const relative of walkFiles(this.root, "")) {
          if (relative.split("/").some((segment) => segment.startsWith(TEMP_PREFIX))) continue;
          const stat = statFile(path.join(this.root, relative));
          if (stat !== undefined) {
            yield { kind, name: relative, size: stat.size, mtimeMs: stat.mtimeMs };
          }
        }
        return;
      }
      default:
        throw new TypeError(`unknown file kind "${String(kind)}"`);
    }
  }

  /**
   * Removes an object durably (the directory is flushed). Removing an absent
   * object, or a name that is a directory, does nothing. Empty directories
   * are left in place.
   */
  remove(h: Handle): Promise<void> {
    return Promise.try(() => this.#removeSync(h));
  }

  #removeSync(h: Handle): void {
    const file = this.#path(h);
    try {
      if (!fs.lstatSync(file).isDirectory()) {
        fs.unlinkSync(file);
        syncDirectory(path.dirname(file));
      }
    } catch (err) {
      const code = errorCode(err);
      if (code === "ENOENT" || code === "ENOTDIR") return;
      throw translateError(err, file, "remove");
    }
  }

  /**
   * When {@linkcode FsStore.open} created the root (with `create`), removes
   * it again with the empty directories below it and the parents it created,
   * provided no file is left below it. Returns true when it was removed.
   */
  removeCreatedDirectory(): Promise<boolean> {
    return Promise.try(() => {
      const top = this.#createdDirectory;
      if (top === null || [...walkFiles(this.root, "")].length > 0) return false;
      try {
        removeEmptyDirectories(this.root);
        for (let dir = this.root; dir !== top;) {
          dir = path.dirname(dir);
          fs.rmdirSync(dir);
        }
      } catch (err) {
        const code = errorCode(err);
        if (code === "ENOTEMPTY" || code === "EEXIST" || code === "ENOENT") return false;
        throw translateError(err, this.root, "remove");
      }
      this.#createdDirectory = null;
      return true;
    });
  }

  /**
   * Removes temporary files (`.tmp-*`) left anywhere below the root by saves
   * that were interrupted, when they are older than `olderThanMs` (one hour
   * by default, so saves in flight are not disturbed). Returns how many files
   * were removed.
   */
  cleanTemporaryFiles(options: CleanTemporaryFilesOptions = {}): Promise<number> {
    return Promise.try(() => this.#cleanTemporaryFilesSync(options));
  }

  #cleanTemporaryFilesSync(options: CleanTemporaryFilesOptions): number {
    const olderThanMs = options.olderThanMs ?? HOUR_MS;
    if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
      throw new RangeError(`olderThanMs must be a non-negative number, got ${olderThanMs}`);
    }
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const relative of walkFiles(this.root, "")) {
      const base = relative.slice(relative.lastIndexOf("/") + 1);
      if (!base.startsWith(TEMP_PREFIX)) continue;
      const file = path.join(this.root, relative);
      const stat = statFile(file);
      if (stat === undefined || stat.mtimeMs > cutoff) continue;
      try {
        fs.unlinkSync(file);
        removed++;
      } catch (err) {
        if (errorCode(err) !== "ENOENT") throw translateError(err, file, "remove");
      }
    }
    return removed;
  }

  /** The absolute path of a handle's file; throws `TypeError` on a bad name. */
  #path(h: Handle): string {
    return path.join(this.root, ...objectKey(h).split("/"));
  }

  #notFound(h: Handle, file: string, cause?: unknown): NotFound {
    return new NotFound(
      `${describeHandle(h)} was not found at "${file}": check the name`,
      cause === undefined ? undefined : { cause },
    );
  }

  #readError(err: unknown, h: Handle, file: string): Error {
    const code = errorCode(err);
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") {
      return this.#notFound(h, file, err);
    }
    return translateError(err, file, "read");
  }
}

/**
 * Objects at least this large are written on the runtime's blocking
 * threads: a backup's 32 MiB pack took the main thread about 0.1 s to copy
 * into the page cache, while the reader threads' results waited.
 */
const ASYNC_WRITE_BYTES = 1024 * 1024;

async function writeAllAsync(fd: number, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) {
    done += await new Promise<number>((resolve, reject) =>
      fs.write(fd, data, done, data.length - done, null, (err, n) => err ? reject(err) : resolve(n))
    );
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.length) {
    done += fs.writeSync(fd, data, done, data.length - done);
  }
}

/**
 * Creates `dir` and its missing parents, then flushes the parent of each
 * created directory so the new entries survive a crash. With `floor`, refuses
 * to recreate `floor` itself (the store root vanished under us).
 */
function makeDirectories(dir: string, floor?: string): void {
  const missing: string[] = [];
  let current = dir;
  while (!fs.existsSync(current)) {
    if (current === floor) {
      throw new RepositoryNotFound(
        `the store root "${floor}" no longer exists: check that the disk is mounted and run again`,
      );
    }
    missing.push(current);
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (const created of missing.reverse()) {
    try {
      fs.mkdirSync(created);
    } catch (err) {
      if (errorCode(err) !== "EEXIST") throw err;
      continue; // a concurrent save created it
    }
    syncDirectory(path.dirname(created));
  }
}

/** Flushes a directory's entries (a rename or create in it) to disk. */
export function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** `fsync(2)` of `fd` off the main thread. */
function fsyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => err ? reject(err) : resolve()));
}

/** {@linkcode syncDirectory} with the flush off the main thread. */
async function syncDirectoryAsync(dir: string): Promise<void> {
  const fd = fs.openSync(dir, "r");
  try {
    await fsyncAsync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already failing; the first error is the one to report
  }
}

function unlinkQuietly(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    // already failing; the first error is the one to report
  }
}

/** Stats of a regular file, or undefined when it is absent or not a regular file. */
function statFile(file: string): fs.Stats | undefined {
  try {
    const stat = fs.lstatSync(file);
    return stat.isFile() ? stat : undefined;
  } catch (err) {
    const code = errorCode(err);
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw translateError(err, file, "read");
  }
}

/** Entries of a directory; none when it is absent. */
function readDirectory(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    const code = errorCode(err);
    if (code === "ENOENT" || code === "ENOTDIR") return [];
    throw translateError(err, dir, "list");
  }
}

/** Names of the regular files in a directory, without temporary files. */
function readFileNames(dir: string): string[] {
  return readDirectory(dir)
    .filter((entry) => entry.isFile() && !entry.name.startsWith(TEMP_PREFIX))
    .map((entry) => entry.name);
}

/** The outermost directory of `dir`'s path that does not exist yet (`dir` itself at most). */
function topMissing(dir: string): string {
  let top = dir;
  for (let up = path.dirname(top); up !== top && !fs.existsSync(up); up = path.dirname(up)) {
    top = up;
  }
  return top;
}

/** Removes `dir` and every directory below it; throws ENOTEMPTY when anything else is there. */
function removeEmptyDirectories(dir: string): void {
  for (const entry of readDirectory(dir)) {
    if (entry.isDirectory()) removeEmptyDirectories(path.join(dir, entry.name));
  }
  fs.rmdirSync(dir);
}

/** Relative paths (with `/`) of every regular file below `dir`, depth first. */
function* walkFiles(root: string, prefix: string): Generator<string> {
  const dir = prefix === "" ? root : path.join(root, prefix);
  for (const entry of readDirectory(dir)) {
    const relative = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) yield* walkFiles(root, relative);
    else if (entry.isFile()) yield relative;
  }
}

const REASONS: Readonly<Record<string, string>> = {
  ENOTDIR: "a parent of the path is a file, not a directory",
  EISDIR: "the path is a directory",
  EIO: "the device reported an I/O error",
  EMFILE: "too many files are open",
  ENAMETOOLONG: "the path is too long",
};

/** Maps a file-system error to a domain error, or an `Error` that names the path. */
function translateError(err: unknown, file: string, action: string): Error {
  if (err instanceof TypeError || err instanceof RangeError) return err;
  if (err instanceof BendsaveError) return err;
  const code = errorCode(err);
  switch (code) {
    case "ENOSPC":
    case "EDQUOT":
      return new StorageFull(
        `the disk holding "${file}" is full: free space and run again`,
        { cause: err },
      );
    case "EROFS":
      return new ReadOnlyError(
        `could not ${action} "${file}": the file system is read-only (EROFS), mount it read-write or use a writable repository`,
        { cause: err },
      );
    case "EACCES":
    case "EPERM":
      return new AccessDenied(
        `permission to ${action} "${file}" was denied: check the owner and mode of the directory`,
        { cause: err },
      );
  }
  if (code === "ENAMETOOLONG") {
    return new InvalidInput(
      `could not ${action} "${file}": the path is too long (ENAMETOOLONG), use a shorter path`,
      { cause: err },
    );
  }
  const reason = (code !== undefined ? REASONS[code] : undefined) ??
    (err instanceof Error ? err.message : String(err));
  const message = `could not ${action} "${file}": ${reason}${
    code !== undefined ? ` (${code})` : ""
  }`;
  // A system error (EIO, EMFILE...) is a condition of the machine, not a bug of bendsave.
  return code !== undefined
    ? new IoError(message, { cause: err })
    : new Error(message, { cause: err });
}
