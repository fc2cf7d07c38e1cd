/**
 * Trees: content-addressed directory listings (FORMAT.md, "Trees"). A tree
 * is the protobuf `bendsave.v1.Tree`; its id is the SHA-256 of the encoded
 * bytes, so an unchanged directory encodes to the same id and costs nothing
 * in the next backup.
 *
 * @module
 */
import { toNumber, TreeType } from "../proto/mod.ts";

/** Node types. Never renumber. */
export const NodeType = { file: 1, dir: 2, symlink: 3 } as const;
/** A node type number. */
export type NodeType = typeof NodeType[keyof typeof NodeType];

/** One entry of a directory. */
export interface TreeNode {
  name: string;
  type: NodeType;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  /** Modification time in milliseconds since the epoch (may be fractional). */
  mtimeMs: number;
  /** File size in bytes (0 for others). */
  size: number;
  /** File block ids, in order. */
  blocks: Uint8Array[];
  /** Directory subtree id. */
  subtree?: Uint8Array;
  /** Symlink target. */
  linkTarget?: string;
  inode: number;
  device: number;
  uid: number;
  gid: number;
  /** Entity tag of a file that came from an object store (change detection only; format 1.1). */
  etag?: string;
}

/**
 * Byte-wise UTF-8 order (bendsave.proto), which is code point order. `<` on
 * strings compares UTF-16 code units, which puts U+10000 and above before
 * U+E000-U+FFFF; shifting those units fixes that at the first difference.
 */
function compareNames(a: TreeNode, b: TreeNode): number {
  const x = a.name;
  const y = b.name;
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    let cx = x.charCodeAt(i);
    let cy = y.charCodeAt(i);
    if (cx === cy) continue;
    if (cx >= 0xd800) cx += cx >= 0xe000 ? -0x800 : 0x2000;
    if (cy >= 0xd800) cy += cy >= 0xe000 ? -0x800 : 0x2000;
    return cx - cy;
  }
  return x.length - y.length;
}

/** Sorts nodes by name and encodes them; throws TypeError on a duplicate or invalid name. */
export function encodeTree(nodes: TreeNode[]): Uint8Array {
  const sorted = [...nodes].sort(compareNames);
  for (let i = 0; i < sorted.length; i++) {
    const n = sorted[i]!;
    if (n.name === "" || n.name === "." || n.name === ".." || n.name.includes("/")) {
      throw new TypeError(`invalid file name "${n.name}" in a tree`);
    }
    if (i > 0 && sorted[i - 1]!.name === n.name) {
      throw new TypeError(`duplicate file name "${n.name}" in a tree`);
    }
  }
  const msg = TreeType.fromObject({
    nodes: sorted.map((n) => ({
      name: n.name,
      type: n.type,
      mode: n.mode,
      mtimeMs: n.mtimeMs,
      size: n.size,
      blocks: n.blocks,
      subtree: n.subtree ?? new Uint8Array(0),
      linkTarget: n.linkTarget ?? "",
      inode: n.inode,
      device: n.device,
      uid: n.uid,
      gid: n.gid,
      etag: n.etag ?? "",
    })),
  });
  return TreeType.encode(msg).finish();
}

interface RawNode {
  name?: string;
  type?: number;
  mode?: number;
  mtimeMs?: number;
  size?: unknown;
  blocks?: Uint8Array[];
  subtree?: Uint8Array;
  linkTarget?: string;
  inode?: unknown;
  device?: unknown;
  uid?: number;
  gid?: number;
  etag?: string;
}

/** Decodes a tree; throws SyntaxError when the bytes are not a valid tree. */
export function decodeTree(bytes: Uint8Array): TreeNode[] {
  let raw: { nodes?: RawNode[] };
  try {
    raw = TreeType.decode(bytes) as unknown as { nodes?: RawNode[] };
  } catch (e) {
    throw new SyntaxError(`tree does not decode (${(e as Error).message})`);
  }
  return (raw.nodes ?? []).map((r) => {
    const type = r.type ?? 0;
    if (type !== NodeType.file && type !== NodeType.dir && type !== NodeType.symlink) {
      throw new SyntaxError(`tree node "${r.name}" has unknown type ${type}`);
    }
    const name = r.name ?? "";
    if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
      throw new SyntaxError(`tree holds an unsafe file name ${JSON.stringify(name)}`);
    }
    const node: TreeNode = {
      name,
      type,
      mode: r.mode ?? 0,
      mtimeMs: r.mtimeMs ?? 0,
      size: toNumber(r.size),
      blocks: (r.blocks ?? []).map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)),
      inode: toNumber(r.inode),
      device: toNumber(r.device),
      uid: r.uid ?? 0,
      gid: r.gid ?? 0,
    };
    if (r.subtree && r.subtree.length > 0) node.subtree = new Uint8Array(r.subtree);
    if (type === NodeType.symlink) node.linkTarget = r.linkTarget ?? "";
    if (r.etag) node.etag = r.etag;
    return node;
  });
}
