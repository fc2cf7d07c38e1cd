/**
 * Directory-tree helpers for the benchmark: a synchronous walk, summaries,
 * apparent size (what `du --apparent-size` reports), a warm-up read, SHA-256
 * manifests and the comparison of a restored tree with its source.
 *
 * Synchronous `node:fs` calls are used on purpose: they are several times
 * faster than async ones for many small files (see PERFORMANCE-NOTES.md).
 *
 * @module
 */

import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";

/** The kind of a tree entry. */
export type EntryType = "file" | "dir" | "symlink" | "other";

/** One entry of a walked tree; `path` is relative to the root, with `/` separators. */
export interface TreeEntry {
  /** Path relative to the root, `/`-separated, never empty. */
  path: string;
  /** What the entry is (symlinks are not followed). */
  type: EntryType;
  /** Size in bytes for files, 0 otherwise. */
  size: number;
  /** Permission bits (`mode & 0o7777`). */
  mode: number;
  /** Modification time in milliseconds. */
  mtimeMs: number;
  /** Link target for symlinks. */
  target?: string;
  /** Hex SHA-256 of the contents for files, when hashed. */
  sha256?: string;
}

/** Counts and bytes of a tree. */
export interface TreeSummary {
  /** Regular files. */
  files: number;
  /** Directories below the root. */
  dirs: number;
  /** Symbolic links. */
  symlinks: number;
  /** Anything else (fifos, sockets, devices). */
  others: number;
  /** Sum of regular file sizes. */
  bytes: number;
}

/**
 * Walks a tree depth-first in sorted order without following symlinks.
 *
 * @example
 * ```ts
 * for (const entry of walkTree("/usr/share/doc")) console.log(entry.path);
 * ```
 */
export function* walkTree(root: string): Generator<TreeEntry> {
  yield* walkDir(root, "");
}

function* walkDir(root: string, rel: string): Generator<TreeEntry> {
  const names = readdirSync(rel === "" ? root : join(root, rel)).sort();
  for (const name of names) {
    const path = rel === "" ? name : `${rel}/${name}`;
    const full = join(root, path);
    const st = lstatSync(full);
    let type: EntryType = "other";
    if (st.isFile()) type = "file";
    else if (st.isDirectory()) type = "dir";
    else if (st.isSymbolicLink()) type = "symlink";
    const entry: TreeEntry = {
      path,
      type,
      size: type === "file" ? st.size : 0,
      mode: st.mode & 0o7777,
      mtimeMs: st.mtimeMs,
    };
    if (type === "symlink") entry.target = readlinkSync(full);
    yield entry;
    if (type === "dir") yield* walkDir(root, path);
  }
}

/** Counts the files, directories, symlinks and file bytes of a tree. */
export function summarizeTree(root: string): TreeSummary {
  const summary: TreeSummary = { files: 0, dirs: 0, symlinks: 0, others: 0, bytes: 0 };
  for (const entry of walkTree(root)) {
    if (entry.type === "file") {
      summary.files++;
      summary.bytes += entry.size;
    } else if (entry.type === "dir") summary.dirs++;
    else if (entry.type === "symlink") summary.symlinks++;
    else summary.others++;
  }
  return summary;
}

/** Returns the apparent size of the regular files under `root` (like `du -sb`, less directory blocks). */
export function treeBytes(root: string): number {
  let bytes = 0;
  for (const entry of walkTree(root)) {
    if (entry.type === "file") bytes += entry.size;
  }
  return bytes;
}

const BUFFER = new Uint8Array(8 << 20);

function readWhole(path: string, visit: (chunk: Uint8Array) => void): number {
  const fd = openSync(path, "r");
  let total = 0;
  try {
    for (;;) {
      const n = readSync(fd, BUFFER, 0, BUFFER.length, null);
      if (n === 0) break;
      visit(BUFFER.subarray(0, n));
      total += n;
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

/** Reads every file of a tree once (to warm the page cache); returns bytes read. */
export function warmTree(root: string): number {
  let bytes = 0;
  for (const entry of walkTree(root)) {
    if (entry.type === "file") bytes += readWhole(join(root, entry.path), () => {});
  }
  return bytes;
}

/** Hashes one file with SHA-256 and returns the hex digest. */
export function hashFile(path: string): string {
  const hash = createHash("sha256");
  readWhole(path, (chunk) => hash.update(chunk));
  return hash.digest("hex");
}

/** Walks a tree and hashes every regular file; returns entries keyed by path. */
export function manifestTree(root: string): Map<string, TreeEntry> {
  const manifest = new Map<string, TreeEntry>();
  for (const entry of walkTree(root)) {
    if (entry.type === "file") entry.sha256 = hashFile(join(root, entry.path));
    manifest.set(entry.path, entry);
  }
  return manifest;
}

/** The result of comparing a restored tree with its source. */
export interface TreeComparison {
  /** True when paths, types, file contents and link targets all match. */
  identical: boolean;
  /** Files compared by content. */
  files: number;
  /** Bytes of the source files. */
  bytes: number;
  /** Paths in the source but not in the restored tree. */
  missing: string[];
  /** Paths in the restored tree but not in the source. */
  extra: string[];
  /** Paths whose type, contents or link target differ. */
  differing: string[];
  /** Files whose permission bits differ (informational). */
  modeDiffers: number;
  /** Files whose modification time differs by a second or more (informational). */
  mtimeDiffers: number;
}

/**
 * Compares two manifests (source first). Contents, types and link targets
 * decide `identical`; modes and file mtimes are only counted.
 */
export function compareManifests(
  source: Map<string, TreeEntry>,
  restored: Map<string, TreeEntry>,
): TreeComparison {
  const result: TreeComparison = {
    identical: true,
    files: 0,
    bytes: 0,
    missing: [],
    extra: [],
    differing: [],
    modeDiffers: 0,
    mtimeDiffers: 0,
  };
  for (const [path, want] of source) {
    if (want.type === "file") {
      result.files++;
      result.bytes += want.size;
    }
    const got = restored.get(path);
    if (got === undefined) {
      result.missing.push(path);
      continue;
    }
    if (
      got.type !== want.type || got.sha256 !== want.sha256 || got.target !== want.target ||
      got.size !== want.size
    ) {
      result.differing.push(path);
      continue;
    }
    if (want.type === "file") {
      if (got.mode !== want.mode) result.modeDiffers++;
      if (Math.abs(got.mtimeMs - want.mtimeMs) >= 1000) result.mtimeDiffers++;
    }
  }
  for (const path of restored.keys()) {
    if (!source.has(path)) result.extra.push(path);
  }
  result.identical = result.missing.length === 0 && result.extra.length === 0 &&
    result.differing.length === 0;
  return result;
}
