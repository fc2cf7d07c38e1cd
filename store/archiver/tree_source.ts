/**
 * A tree source: what the archiver (archiver.ts) reads a backup part
 * through, whatever it is: a local directory (dir_tree.ts), the objects of
 * a blob store (blob_tree.ts), a single stream (stream_tree.ts), or an
 * in-memory tree (mem_tree.ts, for tests). It lists a directory, stats an
 * entry and opens an entry's bytes; {@linkcode entryChanged} is the one
 * change test against the parent backup's node.
 *
 * @module
 */
import type { BytePath } from "../_byte_path.ts";
import { NodeType, type TreeNode } from "../../formats/tree.ts";

/** The name of an entry: `name`, and its exact bytes when they are not valid UTF-8. */
export interface EntryName {
  readonly name: string;
  /** The exact name when it is not valid UTF-8 (`name` is then lossy). */
  readonly nameBytes?: Uint8Array;
}

/** What {@linkcode TreeSource.stat} says about an entry: the fields its tree node records. */
export interface TreeEntry extends EntryName {
  readonly type: "file" | "dir" | "symlink" | "other";
  /** Bytes (files; 0 otherwise, and 0 for a stream, whose size is known once read). */
  readonly size: number;
  /** Permission bits (mode & 0o7777). */
  readonly mode: number;
  readonly mtimeMs: number;
  readonly inode: number;
  readonly device: number;
  readonly uid: number;
  readonly gid: number;
  /** Links to the file, when above 1 (a hard link, format 1.2). */
  readonly nlink?: number;
  /** Entity tag, when the store has one (S3 `ETag`). */
  readonly etag?: string;
  /** A symlink's target. */
  readonly linkTarget?: string;
}

/**
 * How an entry's bytes are read:
 * - `file`: a local file that the reader threads open themselves (every
 *   core reads, cuts, hashes and compresses);
 * - `ranges`: bytes this thread loads, whole or in ranges (a blob store),
 *   then cut, hashed and compressed on the reader threads; with `stat`, a
 *   large entry is read in ranges and checked afterwards for a change while
 *   it was read;
 * - `stream`: chunks this thread receives, cut, hashed and compressed on a
 *   reader thread. A stream that throws fails the backup.
 */
export type EntryBytes =
  | { readonly kind: "file"; readonly path: BytePath }
  | {
    readonly kind: "ranges";
    read(range?: { offset: number; length: number }): Promise<Uint8Array>;
    stat?(): Promise<TreeEntry>;
  }
  | { readonly kind: "stream"; open(): Promise<AsyncIterable<Uint8Array>> };

/** Receives a problem a source found while listing (counted as an error, listed in the manifest). */
export type ListProblem = (path: string, message: string) => void;

/**
 * A tree to back up, read one directory at a time. `D` is the source's
 * handle of a directory (a path, a prefix...). Calls may return values or
 * promises; a throw of `list` or `stat` is reported for that directory or
 * entry, which is left out (an error carrying `code: "ENOENT"` counts as
 * vanished, see {@linkcode ArchiveOptions.vanishedOk}).
 */
export interface TreeSource<D> {
  /** Where the tree is, for messages. */
  readonly location: string;
  /** The root directory. */
  readonly root: D;
  /** The names in directory `dir`, in the order they should be read. */
  list(dir: D, problem: ListProblem): EntryName[] | Promise<EntryName[]>;
  /** The entry `name` of `dir`. Throw {@linkcode EntryUnreadable} to say what failed. */
  stat(dir: D, name: EntryName): TreeEntry | Promise<TreeEntry>;
  /** The handle of subdirectory `entry` of `dir`. */
  child(dir: D, entry: TreeEntry): D;
  /** How the bytes of file `entry` of `dir` are read. */
  open(dir: D, entry: TreeEntry): EntryBytes;
  /** The path of `dir`, or of its entry `name`, for messages. */
  display(dir: D, name?: EntryName): string;
}

/** Options of the archiver that a part sets (see archiver.ts). */
export interface ArchiveOptions {
  /** True for a path (relative to the root, `/`-separated) that is left out with everything below. */
  readonly exclude?: (rel: string) => boolean;
  /** An entry that vanishes (ENOENT) while it is read is left out without a warning. */
  readonly vanishedOk?: boolean;
  /** Which fields the change test ignores. */
  readonly changeTest?: ChangeTestOptions;
  /** The section size of large local files (archiver.ts `SECTION_BYTES`; smaller in tests). */
  readonly sectionBytes?: number;
}

/** Fields {@linkcode entryChanged} leaves out of the comparison. */
export interface ChangeTestOptions {
  /** Do not compare inodes (a file system whose inode numbers are not stable). */
  readonly ignoreInode?: boolean;
}

/** An entry that could not be stat'ed or read; `message` says what failed ("cannot read symlink: ..."). */
export class EntryUnreadable extends Error {
  /** The error code of the cause (ENOENT...), when it had one. */
  readonly code: string | undefined;
  /** `what` failed ("cannot stat") because of `cause`. */
  constructor(what: string, cause: unknown) {
    super(`${what}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = "EntryUnreadable";
    this.code = (cause as { code?: string } | null)?.code;
  }
}

/**
 * The change test (restic's `fileChanged`): true when file `entry` must be
 * read again rather than take the blocks of `prev`, the parent backup's
 * node of the same name. A file is unchanged when it was a file with the
 * same size, the same entity tag (when both have one; otherwise the same
 * mtime) and the same inode. The format records no ctime, so unlike
 * restic's test this one cannot compare it.
 *
 * @example
 * ```ts
 * import { entryChanged } from "./tree_source.ts";
 * import { NodeType } from "../../formats/tree.ts";
 * const node = { name: "a", type: NodeType.file, mode: 0o644, mtimeMs: 5, size: 3, blocks: [], inode: 7, device: 1, uid: 0, gid: 0 };
 * entryChanged(node, { ...node, type: "file" }); // false
 * entryChanged(node, { ...node, type: "file", inode: 8 }); // true
 * entryChanged(node, { ...node, type: "file", inode: 8 }, { ignoreInode: true }); // false
 * ```
 */
export function entryChanged(
  prev: TreeNode | undefined,
  entry: TreeEntry,
  options: ChangeTestOptions = {},
): boolean {
  if (!prev || prev.type !== NodeType.file || entry.type !== "file") return true;
  if (prev.size !== entry.size) return true;
  if (prev.etag !== undefined && entry.etag !== undefined) {
    if (prev.etag !== entry.etag) return true;
  } else if (prev.mtimeMs !== entry.mtimeMs) {
    return true;
  }
  return !options.ignoreInode && prev.inode !== entry.inode;
}
