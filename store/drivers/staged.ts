/**
 * A read-only blob store over local directories that hold repository files
 * staged back from tape, in whatever directory structure the operator used:
 * the repository layout, one directory per tape, or everything flat
 * (`staged:/mnt/tape1,/mnt/tape2`).
 *
 * {@linkcode StagedStore.open} walks every directory once and finds each
 * file by its name, wherever it is. The rules, first match wins, for a file
 * at `<dir>/<path>/<parent>/<name>` (a file directly in a staged directory
 * `<dir>` has no `<parent>`):
 *
 * | rule                                                               | kind       |
 * |--------------------------------------------------------------------|------------|
 * | `<name>` starts with `.tmp-` (an interrupted copy)                 | ignored    |
 * | `<parent>` is `manifests`                                          | `manifest` |
 * | `<parent>` is `index`                                              | `index`    |
 * | `<parent>` is `locks`                                              | `lock`     |
 * | `<parent>` is `keys`                                               | `key`      |
 * | `wal/<system id>/<WAL file name>`, or `<system id>/<WAL file name>` starting with `BSWL` | `wal` |
 * | 64 hex digits in `packs/` or in a fan-out directory `packs/<ab>/`  | `pack`     |
 * | `<name>` is `config` / `bendsave.md`                               | `config` / `guide` |
 * | `<name>` is `YYYYMMDD_HHMMSS[_N].manifest`                         | `manifest` |
 * | `<name>` is 64 hex digits and the file starts with `BSPK`          | `pack`     |
 * | `<name>` is 64 hex digits and the file starts with `BSIX`          | `index`    |
 * | `<name>` is 64 hex digits and the file starts with `{`             | `key`      |
 * | `<name>` is 64 hex digits and the file starts with anything else   | ignored, with a warning |
 *
 * Packs, index files and key files (an encrypted repository's `keys/`) all
 * have 64-hex names, so in a flat dump only their first bytes tell them
 * apart: the magic (FORMAT.md sections 9 and 10), or the `{` of a key file's
 * JSON (section 21.1);
 * the magic is read only where the directory does not already say which it
 * is, so a repository staged in its own layout is scanned without opening a
 * file. Locks are listed for the blob-store contract but never taken: the
 * engine holds no lock on a read-only store.
 *
 * When one name is found more than once (overlapping tapes, a copy made
 * twice), the copies are taken in the order of the directories given, then
 * in path order. Copies with the same bytes are one object (packs, which can
 * be gigabytes, are compared by size only: every block read from a pack is
 * checked against its hash anyway). When they differ, the first copy whose
 * content matches its name is used (a pack, an index file or a key file:
 * its SHA-256 is its name; a manifest: its checksum holds) and a warning
 * names the copies set aside; `config`, `bendsave.md` and locks cannot be
 * checked, so the first copy is used, with a warning. When no copy matches, the first is used, with
 * a warning, and reading it reports the damage.
 *
 * Every file below a directory is also a `raw` object under its path relative
 * to that directory (the first directory wins).
 *
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import {
  AccessDenied,
  BendsaveError,
  InvalidInput,
  NotFound,
  ReadOnlyError,
  RepositoryNotFound,
} from "../errors.ts";
import type { BlobStore, ByteRange, Capabilities, FileInfo, FileKind, Handle } from "./types.ts";
import {
  canonicalName,
  checkKind,
  checkRange,
  describeHandle,
  FAN_OUT_DIR,
  FILE_KINDS,
  isWalRecordName,
  KIND_DIRS,
  objectKey,
  PACK_NAME,
  SINGLETONS,
  TEMP_PREFIX,
  WAL_DIR,
} from "./_layout.ts";
import { isManifestName, openManifestFile } from "../../formats/manifest.ts";
import { openWalRecordFile } from "../../formats/wal.ts";
import { errorCode, readRange } from "./_fs_io.ts";

const PACK_MAGIC = "BSPK";
const INDEX_MAGIC = "BSIX";
/** The first byte of a key file, which is JSON (FORMAT.md section 21.1). */
const KEY_FILE_START = "{";
const WAL_MAGIC = "BSWL";
const HASH_CHUNK = 4 * 1024 * 1024;

/** Options of {@linkcode StagedStore.open}. */
export interface StagedStoreOpenOptions {
  /**
   * Receives each warning of the scan (conflicting copies of one name, a
   * 64-hex file that is neither a pack nor an index file), one sentence each.
   * They are also kept in {@linkcode StagedStore.warnings}.
   */
  readonly onWarning?: (message: string) => void;
}

/** A staged file: where it is and what the scan saw. */
interface Located {
  readonly file: string;
  readonly size: number;
  readonly mtimeMs: number;
}

/** What the scan found: the chosen file of each name, per kind. */
type Catalog = Map<FileKind, Map<string, Located>>;

/**
 * A read-only {@linkcode BlobStore} over directories of files staged back
 * from tape. See the module documentation for how files are found.
 *
 * `save` and `remove` throw `ReadOnlyError`. Names are checked as the fs
 * driver checks them (a `TypeError` for a bad name) and a name that was not
 * staged is `NotFound`.
 *
 * @example
 * ```ts ignore
 * import { StagedStore } from "./staged.ts";
 * import { planRestore } from "../restore/restore.ts";
 *
 * const store = await StagedStore.open(["/mnt/tape1", "/mnt/tape2"]);
 * const plan = await planRestore(store, "/srv/restore");
 * console.log(plan.missingPacks); // the packs still to be staged
 * ```
 */
export class StagedStore implements BlobStore {
  /** The staged directories, as absolute paths, in the order given. */
  readonly dirs: readonly string[];
  /** What this driver can do: read, with ranges; never write. */
  readonly capabilities: Capabilities = {
    writable: false,
    exclusiveCreate: false,
    rangedRead: true,
    name: "staged",
  };
  readonly #catalog: Catalog;
  readonly #warnings: readonly string[];

  private constructor(dirs: readonly string[], catalog: Catalog, warnings: readonly string[]) {
    this.dirs = dirs;
    this.#catalog = catalog;
    this.#warnings = warnings;
  }

  /** `staged:` and the directories joined by `,`, for messages. */
  get location(): string {
    return `staged:${this.dirs.join(",")}`;
  }

  /** The warnings of the scan, in the order they were found. */
  get warnings(): readonly string[] {
    return this.#warnings;
  }

  /**
   * Scans `dirs` (recursively, once) and opens the store over what they hold.
   *
   * Throws `TypeError` when `dirs` is empty, `RepositoryNotFound` when a
   * directory does not exist and `InvalidInput` when one is a file.
   */
  static open(dirs: readonly string[], options: StagedStoreOpenOptions = {}): Promise<StagedStore> {
    return Promise.try(() => StagedStore.#openSync(dirs, options));
  }

  static #openSync(dirs: readonly string[], options: StagedStoreOpenOptions): StagedStore {
    if (!Array.isArray(dirs) || dirs.length === 0) {
      throw new TypeError(
        "a staged repository needs at least one directory: use staged:/mnt/tape1,/mnt/tape2",
      );
    }
    const roots: string[] = [];
    for (const dir of dirs) {
      if (typeof dir !== "string" || dir === "") {
        throw new TypeError(
          `staged directory "${
            String(dir)
          }" is empty: give the directories that hold the staged files`,
        );
      }
      const root = path.resolve(dir);
      checkRoot(root);
      if (!roots.includes(root)) roots.push(root);
    }
    const warnings: string[] = [];
    const warn = (message: string) => {
      warnings.push(message);
      options.onWarning?.(message);
    };
    return new StagedStore(roots, scan(roots, warn), warnings);
  }

  /** Refused: a staged repository is read-only. */
  save(_h: Handle, _data: Uint8Array): Promise<void> {
    return Promise.reject(this.#readOnly());
  }

  /** Refused: a staged repository is read-only (nothing is read from `chunks`). */
  saveStream(_h: Handle, _chunks: AsyncIterable<Uint8Array>, _size: number): Promise<void> {
    return Promise.reject(this.#readOnly());
  }

  /** Refused: a staged repository is read-only. */
  remove(_h: Handle): Promise<void> {
    return Promise.reject(this.#readOnly());
  }

  /**
   * Reads the whole object, or `range` of it. A range reaching past the end
   * returns the bytes that exist (possibly none). Throws `NotFound` when the
   * name was not staged (or its file is gone) and `RangeError` for a negative
   * or fractional range.
   */
  load(h: Handle, range?: ByteRange): Promise<Uint8Array> {
    return Promise.try(() => {
      const located = this.#find(h);
      if (range !== undefined) checkRange(range);
      try {
        const fd = fs.openSync(located.file, "r");
        try {
          return readRange(fd, range ?? { offset: 0, length: Number.MAX_SAFE_INTEGER });
        } finally {
          fs.closeSync(fd);
        }
      } catch (err) {
        throw this.#readError(err, h, located.file);
      }
    });
  }

  /** Size and modification time of one object. Throws `NotFound` when it was not staged. */
  stat(h: Handle): Promise<FileInfo> {
    return Promise.try(() => {
      const located = this.#find(h);
      let stat: fs.Stats;
      try {
        stat = fs.statSync(located.file);
      } catch (err) {
        throw this.#readError(err, h, located.file);
      }
      return { kind: h.kind, name: canonicalName(h), size: stat.size, mtimeMs: stat.mtimeMs };
    });
  }

  /** Every staged object of a kind, as the scan found it, in no set order. */
  async *list(kind: FileKind): AsyncIterable<FileInfo> {
    checkKind(kind);
    for (const [name, { size, mtimeMs }] of this.#catalog.get(kind) ?? []) {
      yield { kind, name, size, mtimeMs };
    }
  }

  /** The staged file of a handle; TypeError on a bad name, NotFound when absent. */
  #find(h: Handle): Located {
    const key = objectKey(h);
    const located = this.#catalog.get(h.kind)?.get(h.kind === "raw" ? key : canonicalName(h));
    if (located === undefined) {
      throw new NotFound(
        `${
          describeHandle(h)
        } is not in ${this.location}: stage the tape that holds it and run again`,
      );
    }
    return located;
  }

  #readOnly(): ReadOnlyError {
    return new ReadOnlyError(
      `${this.location} is a read-only staged repository: restore from it, or copy it to a writable repository first`,
    );
  }

  #readError(err: unknown, h: Handle, file: string): Error {
    const code = errorCode(err);
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") {
      return new NotFound(
        `${
          describeHandle(h)
        } was staged at "${file}" but is gone: check that the staged directory is still mounted, or stage the file again`,
        { cause: err },
      );
    }
    return translateError(err, file, "read");
  }
}

/** Throws unless `root` is an existing directory. */
function checkRoot(root: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(root);
  } catch (err) {
    const code = errorCode(err);
    if (code === "ENOENT" || code === "ENOTDIR") {
      throw new RepositoryNotFound(
        `staged directory "${root}" does not exist: check the path, or stage the tape there first`,
        { cause: err },
      );
    }
    throw translateError(err, root, "open");
  }
  if (!stat.isDirectory()) {
    throw new InvalidInput(
      `staged location "${root}" is a file, not a directory: give the directories that hold the staged files`,
    );
  }
}

/** One copy of a name found by the scan. */
interface Copy extends Located {
  readonly kind: FileKind;
  readonly name: string;
}

/** Walks every root and builds the catalog, resolving names found more than once. */
function scan(roots: readonly string[], warn: (message: string) => void): Catalog {
  const copies = new Map<string, Copy[]>();
  const raw = new Map<string, Located>();
  const seen = new Set<string>();
  for (const root of roots) {
    for (const walked of walkFiles(root, warn)) {
      const { file, relative, stat } = walked;
      if (seen.has(file)) continue; // a directory given twice, or inside another one
      seen.add(file);
      const located = { file, size: stat.size, mtimeMs: stat.mtimeMs };
      if (!raw.has(relative)) raw.set(relative, located);
      const handle = classify(walked, warn);
      if (handle === null) continue;
      const key = `${handle.kind}/${handle.name}`;
      const list = copies.get(key) ?? [];
      list.push({ ...located, ...handle });
      copies.set(key, list);
    }
  }
  const catalog: Catalog = new Map(FILE_KINDS.map((kind) => [kind, new Map()]));
  catalog.set("raw", raw);
  for (const list of copies.values()) {
    const chosen = list.length === 1 ? list[0]! : chooseCopy(list, warn);
    const { file, size, mtimeMs } = chosen;
    catalog.get(chosen.kind)!.set(chosen.name, { file, size, mtimeMs });
  }
  return catalog;
}

/** A regular file found by the walk. */
interface Walked {
  readonly file: string;
  readonly relative: string;
  readonly stat: fs.Stats;
}

/**
 * Every regular file below `root` (symbolic links to files included, links
 * to directories not followed), in path order, skipping `.tmp-*` names. A
 * subdirectory that cannot be read (a `lost+found` owned by root) is left
 * out with a warning; the root itself must be readable.
 */
function* walkFiles(root: string, warn: (message: string) => void): Generator<Walked> {
  function* walk(prefix: string): Generator<Walked> {
    const dir = prefix === "" ? root : path.join(root, prefix);
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      const code = errorCode(err);
      if (prefix === "" || (code !== "EACCES" && code !== "EPERM")) {
        throw translateError(err, dir, "list");
      }
      warn(`directory "${dir}" cannot be read (${code}): its files are left out`);
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.startsWith(TEMP_PREFIX)) continue;
      const relative = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        yield* walk(relative);
        continue;
      }
      if (!entry.isFile() && !entry.isSymbolicLink()) continue;
      let stat: fs.Stats;
      try {
        stat = fs.statSync(file);
      } catch (err) {
        if (entry.isSymbolicLink()) continue; // a dangling link
        throw translateError(err, file, "read");
      }
      if (stat.isFile()) yield { file, relative, stat };
    }
  }
  yield* walk("");
}

/**
 * The handle a staged file stands for (the rules of the module
 * documentation), or null when it is not a repository file.
 */
function classify({ relative, file }: Walked, warn: (message: string) => void): Handle | null {
  const parts = relative.split("/");
  const name = parts[parts.length - 1]!;
  const parent = parts.length >= 2 ? parts[parts.length - 2]! : null;
  const grandparent = parts.length >= 3 ? parts[parts.length - 3]! : null;
  if (parent === KIND_DIRS.manifest) return { kind: "manifest", name };
  if (parent === KIND_DIRS.index) return { kind: "index", name };
  if (parent === KIND_DIRS.lock) return { kind: "lock", name };
  if (parent === KIND_DIRS.key) return { kind: "key", name };
  if (parent !== null && isWalRecordName(`${parent}/${name}`)) {
    // wal/<system id>/<WAL file name>, or <system id>/<WAL file name> holding a record
    const wal: Handle = { kind: "wal", name: `${parent}/${name}` };
    if (grandparent === WAL_DIR) return wal;
    try {
      if (readMagic(file) === WAL_MAGIC) return wal;
    } catch {
      return null;
    }
  }
  const isHex = PACK_NAME.test(name);
  if (
    isHex && (parent === "packs" ||
      (parent !== null && FAN_OUT_DIR.test(parent) && grandparent === "packs" &&
        name.startsWith(parent)))
  ) {
    return { kind: "pack", name };
  }
  if (name === SINGLETONS.config) return { kind: "config", name };
  if (name === SINGLETONS.guide) return { kind: "guide", name };
  if (isManifestName(name)) return { kind: "manifest", name };
  if (!isHex) return null;
  let magic: string;
  try {
    magic = readMagic(file);
  } catch (err) {
    warn(`could not read "${file}" (${describeError(err)}): it is left out; check its permissions`);
    return null;
  }
  if (magic === PACK_MAGIC) return { kind: "pack", name };
  if (magic === INDEX_MAGIC) return { kind: "index", name };
  if (magic.startsWith(KEY_FILE_START)) return { kind: "key", name };
  warn(
    `"${file}" has a pack-like name but starts with neither BSPK, BSIX nor "{" (a key file): it is left out; stage a good copy if a restore needs it`,
  );
  return null;
}

/** The first four bytes of a file, as Latin-1 text (fewer for a shorter file). */
function readMagic(file: string): string {
  const fd = fs.openSync(file, "r");
  try {
    const buffer = Buffer.alloc(4);
    const n = fs.readSync(fd, buffer, 0, 4, 0);
    return buffer.toString("latin1", 0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** Picks one of several copies of a name (the rule of the module documentation). */
function chooseCopy(list: readonly Copy[], warn: (message: string) => void): Copy {
  const first = list[0]!;
  const what = describeHandle(first);
  const paths = (copies: readonly Copy[]) => copies.map((c) => `"${c.file}"`).join(", ");
  if (sameCopies(list)) return first;
  const matches = nameCheck(first.kind);
  if (matches === null) {
    warn(
      `${list.length} different copies of ${what} were staged: using "${first.file}" and leaving out ${
        paths(list.slice(1))
      }; remove the wrong ones to choose another`,
    );
    return first;
  }
  const good = list.filter((c) => matches(c));
  const chosen = good[0];
  if (chosen === undefined) {
    warn(
      `no staged copy of ${what} matches its name (${
        paths(list)
      } are all damaged): using "${first.file}"; stage a good copy`,
    );
    return first;
  }
  const bad = list.filter((c) => !good.includes(c));
  if (bad.length > 0) {
    warn(
      `the staged ${bad.length === 1 ? "copy" : "copies"} ${paths(bad)} of ${what} ${
        bad.length === 1 ? "does" : "do"
      } not match its name (damaged): using "${chosen.file}"`,
    );
  }
  const others = good.slice(1).filter((c) => !sameBytes(c.file, chosen.file));
  if (others.length > 0) {
    warn(
      `${what} was staged in different valid copies: using "${chosen.file}" and leaving out ${
        paths(others)
      }; check that the directories hold one repository`,
    );
  }
  return chosen;
}

/** True when every copy holds the same bytes (packs: the same size). */
function sameCopies(list: readonly Copy[]): boolean {
  const first = list[0]!;
  if (list.some((c) => c.size !== first.size)) return false;
  if (first.kind === "pack") return true;
  return list.every((c) => c === first || sameBytes(c.file, first.file));
}

function sameBytes(a: string, b: string): boolean {
  try {
    return Buffer.compare(fs.readFileSync(a), fs.readFileSync(b)) === 0;
  } catch {
    return false;
  }
}

/** How to check that a copy's content matches its name, or null when it cannot be checked. */
function nameCheck(kind: FileKind): ((copy: Copy) => boolean) | null {
  switch (kind) {
    case "pack":
    case "index":
    case "key":
      return (copy) => hashFile(copy.file) === copy.name;
    case "wal":
      return (copy) => {
        try {
          openWalRecordFile(fs.readFileSync(copy.file)); // the envelope: checked without a key
          return true;
        } catch {
          return false;
        }
      };
    case "manifest":
      return (copy) => {
        try {
          openManifestFile(fs.readFileSync(copy.file));
          return true;
        } catch {
          return false;
        }
      };
    default:
      return null;
  }
}

/** The SHA-256 of a file in hex, read in chunks; "" when it cannot be read. */
function hashFile(file: string): string {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return "";
  }
  try {
    const hash = createHash("sha256");
    const buffer = Buffer.alloc(HASH_CHUNK);
    for (;;) {
      const n = fs.readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
    }
    return hash.digest("hex");
  } catch {
    return "";
  } finally {
    fs.closeSync(fd);
  }
}

function describeError(err: unknown): string {
  const code = errorCode(err);
  return code ?? (err instanceof Error ? err.message : String(err));
}

/** Maps a file-system error to a domain error, or an `Error` that names the path. */
function translateError(err: unknown, file: string, action: string): Error {
  if (err instanceof TypeError || err instanceof RangeError || err instanceof BendsaveError) {
    return err;
  }
  const code = errorCode(err);
  if (code === "EACCES" || code === "EPERM") {
    return new AccessDenied(
      `permission to ${action} "${file}" was denied: check the owner and mode of the staged files`,
      { cause: err },
    );
  }
  const reason = err instanceof Error ? err.message : String(err);
  return new Error(`could not ${action} "${file}": ${reason}`, { cause: err });
}
