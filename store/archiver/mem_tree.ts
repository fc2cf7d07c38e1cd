/**
 * An in-memory {@linkcode TreeSource} (tests, examples): directories of
 * files and symlinks held in maps, whose reads are counted.
 *
 * @module
 */
import type { EntryBytes, TreeEntry, TreeSource } from "./tree_source.ts";

/** A file of a {@linkcode MemTree}. */
export interface MemFile {
  readonly type: "file";
  data: Uint8Array;
  mtimeMs: number;
  /** Default 0. */
  inode?: number;
}

/** A directory of a {@linkcode MemTree}: entries by name. */
export interface MemDir {
  readonly type: "dir";
  readonly entries: Map<string, MemNode>;
}

/** A symlink of a {@linkcode MemTree}. */
export interface MemLink {
  readonly type: "symlink";
  readonly target: string;
}

/** An entry of a {@linkcode MemTree}. */
export type MemNode = MemFile | MemDir | MemLink;

/** A directory of a {@linkcode MemTree} and its path, the tree's directory handle. */
export interface MemHandle {
  readonly node: MemDir;
  readonly path: string;
}

/** A new empty directory. */
export function memDir(entries: Record<string, MemNode> = {}): MemDir {
  return { type: "dir", entries: new Map(Object.entries(entries)) };
}

/**
 * A tree held in memory; a directory's handle is its {@linkcode MemDir} and
 * its path. Files are read whole on the main thread (`ranges` without
 * `stat`), like the objects of a blob store without ranged reads.
 *
 * @example
 * ```ts
 * import { MemTree, memDir } from "./mem_tree.ts";
 * const tree = new MemTree(memDir({ a: { type: "file", data: new Uint8Array(3), mtimeMs: 1 } }));
 * tree.list(tree.root, () => {}); // [{ name: "a" }]
 * ```
 */
export class MemTree implements TreeSource<MemHandle> {
  readonly location = "mem:";
  readonly root: MemHandle;
  /** Paths of the files read, in order. */
  readonly reads: string[] = [];

  /** The tree whose root directory is `root`. */
  constructor(root: MemDir) {
    this.root = { node: root, path: "" };
  }

  /** The names of `dir`, sorted. */
  list(dir: MemHandle): { name: string }[] {
    return [...dir.node.entries.keys()].sort().map((name) => ({ name }));
  }

  /** The entry `name` of `dir`; throws for a missing one. */
  stat(dir: MemHandle, { name }: { name: string }): TreeEntry {
    const n = dir.node.entries.get(name);
    if (!n) throw new Error(`no entry ${this.display(dir, { name })}`);
    const base = { name, mode: 0o644, inode: 0, device: 0, uid: 0, gid: 0, mtimeMs: 0, size: 0 };
    if (n.type === "file") {
      return {
        ...base,
        type: "file",
        size: n.data.length,
        mtimeMs: n.mtimeMs,
        inode: n.inode ?? 0,
      };
    }
    if (n.type === "dir") return { ...base, type: "dir", mode: 0o755 };
    return { ...base, type: "symlink", mode: 0o777, linkTarget: n.target };
  }

  /** The handle of subdirectory `entry` of `dir`. */
  child(dir: MemHandle, entry: TreeEntry): MemHandle {
    return { node: dir.node.entries.get(entry.name) as MemDir, path: this.display(dir, entry) };
  }

  /** Reads file `entry` of `dir` whole (the read is counted). */
  open(dir: MemHandle, entry: TreeEntry): EntryBytes {
    const where = this.display(dir, entry);
    const file = dir.node.entries.get(entry.name) as MemFile;
    return {
      kind: "ranges",
      read: () => {
        this.reads.push(where);
        return Promise.resolve(file.data.slice());
      },
    };
  }

  /** `a/b/c` below the root. */
  display(dir: MemHandle, name?: { name: string }): string {
    if (!name) return dir.path;
    return dir.path === "" ? name.name : `${dir.path}/${name.name}`;
  }
}
