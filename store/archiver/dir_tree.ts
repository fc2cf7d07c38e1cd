/**
 * A local directory as a {@linkcode TreeSource}: names are bytes (one that
 * is not valid UTF-8 is kept exactly), entries are `lstat`ed (symlinks are
 * not followed), and files are read by the reader threads from their path.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type fs from "node:fs";
import {
  type BytePath,
  displayPath,
  joinPath,
  listNames,
  lstatPath,
  readlinkPath,
} from "../_byte_path.ts";
import { nameFields } from "../../formats/tree.ts";
import {
  type EntryBytes,
  type EntryName,
  EntryUnreadable,
  type TreeSource,
} from "./tree_source.ts";

/**
 * The tree below directory `root` (an absolute path); a directory's handle
 * is its exact path.
 *
 * @example
 * ```ts ignore
 * import { dirTree } from "./dir_tree.ts";
 * const tree = dirTree("/var/lib/app");
 * tree.list(tree.root, () => {}); // [{ name: "data" }, ...]
 * ```
 */
export function dirTree(root: string): TreeSource<BytePath> {
  return {
    location: root,
    root,
    list(dir) {
      return listNames(dir).sort(Buffer.compare).map(nameFields);
    },
    stat(dir, name) {
      const p = pathOf(dir, name);
      let st: fs.Stats;
      try {
        st = lstatPath(p);
      } catch (e) {
        throw new EntryUnreadable("cannot stat", e);
      }
      const entry = {
        name: name.name,
        ...(name.nameBytes ? { nameBytes: name.nameBytes } : {}),
        size: st.isFile() ? st.size : 0,
        mode: st.mode & 0o7777,
        mtimeMs: st.mtimeMs,
        inode: st.ino,
        device: st.dev,
        uid: st.uid,
        gid: st.gid,
      };
      if (st.isFile()) {
        return { ...entry, type: "file", ...(st.nlink > 1 ? { nlink: st.nlink } : {}) };
      }
      if (st.isDirectory()) return { ...entry, type: "dir" };
      if (!st.isSymbolicLink()) return { ...entry, type: "other" };
      let linkTarget: string;
      try {
        linkTarget = readlinkPath(p);
      } catch (e) {
        throw new EntryUnreadable("cannot read symlink", e);
      }
      return { ...entry, type: "symlink", linkTarget };
    },
    child: (dir, entry) => pathOf(dir, entry),
    open: (dir, entry): EntryBytes => ({ kind: "file", path: pathOf(dir, entry) }),
    display: (dir, name) => displayPath(name ? pathOf(dir, name) : dir),
  };
}

function pathOf(dir: BytePath, name: EntryName): BytePath {
  return joinPath(dir, name.nameBytes ?? name.name);
}
