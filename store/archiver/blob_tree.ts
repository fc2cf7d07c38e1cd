/**
 * The objects of a blob store (an {@linkcode ObjectsPart}: a Databend
 * cluster's storage) as a {@linkcode TreeSource}: each `/`-separated name
 * becomes directories and a file. The listing is taken once, when the root
 * is first listed; an object whose name other objects use as a folder is
 * left out and reported. Objects are loaded on the main thread (large ones
 * in ranges checked afterwards with `stat`) and cut, hashed and compressed
 * on the reader threads. (A cluster on fs storage is backed up as a
 * directory part, read by the reader threads themselves.)
 *
 * @module
 */
import type { ObjectsPart, SourceObject } from "../source.ts";
import type { EntryBytes, TreeEntry, TreeSource } from "./tree_source.ts";

/** A directory of the listing (a name prefix). */
export interface BlobDir {
  /** Its path below the root, `/`-separated ("" for the root). */
  readonly rel: string;
  readonly files: Map<string, SourceObject>;
  readonly dirs: Map<string, BlobDir>;
}

function newDir(rel: string): BlobDir {
  return { rel, files: new Map(), dirs: new Map() };
}

const join = (rel: string, name: string) => rel === "" ? name : `${rel}/${name}`;

/**
 * The tree of the objects `part` lists.
 *
 * @example
 * ```ts ignore
 * import { blobTree } from "./blob_tree.ts";
 * const tree = blobTree(part);
 * await tree.list(tree.root, console.warn); // [{ name: "1" }, { name: "2" }, ...]
 * ```
 */
export function blobTree(part: ObjectsPart): TreeSource<BlobDir> {
  const root = newDir("");
  let listed = false;
  const where = (rel: string) => rel === "" ? part.location : `${part.location}/${rel}`;
  const entryOf = (o: SourceObject, name: string): TreeEntry => ({
    name,
    type: "file",
    mode: 0o644,
    mtimeMs: o.mtimeMs,
    size: o.size,
    inode: 0,
    device: 0,
    uid: 0,
    gid: 0,
    ...(o.etag !== undefined ? { etag: o.etag } : {}),
  });
  return {
    location: part.location,
    root,
    async list(dir, problem) {
      if (!listed) {
        listed = true;
        for await (const o of part.list()) place(root, o, (name) => problem(where(name), CLASH));
      }
      return [...dir.dirs.keys(), ...dir.files.keys()].map((name) => ({ name }));
    },
    stat(dir, { name }) {
      const o = dir.files.get(name);
      if (o) return entryOf(o, name);
      if (!dir.dirs.has(name)) throw new Error(`no object or folder ${where(join(dir.rel, name))}`);
      // A prefix has no mode or mtime of its own in a blob store.
      return {
        name,
        type: "dir",
        mode: 0o755,
        mtimeMs: 0,
        size: 0,
        inode: 0,
        device: 0,
        uid: 0,
        gid: 0,
      };
    },
    child: (dir, entry) => dir.dirs.get(entry.name)!,
    open(dir, entry): EntryBytes {
      const name = join(dir.rel, entry.name);
      const stat = part.stat;
      return {
        kind: "ranges",
        read: (range) => part.read(name, range),
        ...(stat ? { stat: async () => entryOf(await stat(name), entry.name) } : {}),
      };
    },
    display: (dir, name) => where(name ? join(dir.rel, name.name) : dir.rel),
  };
}

const CLASH = "skipped: other objects use this name as a folder";

/** Files an object under its directories; reports a name that is also a folder. */
function place(root: BlobDir, o: SourceObject, clash: (name: string) => void): void {
  const segments = o.name.split("/");
  const leaf = segments.pop()!;
  let dir = root;
  for (const s of segments) {
    const file = dir.files.get(s);
    if (file) {
      dir.files.delete(s);
      clash(file.name);
    }
    let next = dir.dirs.get(s);
    if (!next) dir.dirs.set(s, next = newDir(join(dir.rel, s)));
    dir = next;
  }
  if (dir.dirs.has(leaf)) {
    clash(o.name);
    return;
  }
  dir.files.set(leaf, o);
}
