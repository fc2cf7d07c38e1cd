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
  /** The name; for a name that is not valid UTF-8, its lossy form (U+FFFD for each bad sequence). */
  name: string;
  /**
   * The exact name bytes, set only when the name is not valid UTF-8 (format
   * 1.2): the name to create on restore, and the key of uniqueness and order.
   */
  nameBytes?: Uint8Array;
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
  /**
   * Files: the hard link count at backup time, set only when above 1 (format
   * 1.2). Files of one part with the same device, inode and blocks and an
   * `nlink` above 1 are restored as hard links of one file.
   */
  nlink?: number;
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lossyUtf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** True when `bytes` are valid UTF-8. */
export function isUtf8(bytes: Uint8Array): boolean {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * A node for the name `bytes` as listed by the file system: `name` is the
 * name decoded from UTF-8, lossily when it is not valid UTF-8, and only then
 * `nameBytes` keeps the exact bytes (FORMAT.md section 12).
 */
export function nameFields(bytes: Uint8Array): { name: string; nameBytes?: Uint8Array } {
  if (isUtf8(bytes)) return { name: strictUtf8.decode(bytes) };
  return { name: lossyUtf8.decode(bytes), nameBytes: new Uint8Array(bytes) };
}

/** The exact bytes of a node's name. */
export function nameBytesOf(node: Pick<TreeNode, "name" | "nameBytes">): Uint8Array {
  return node.nameBytes ?? utf8.encode(node.name);
}

function compareBytes(x: Uint8Array, y: Uint8Array): number {
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

/**
 * Byte-wise order of the exact names (bendsave.proto), which for UTF-8 is
 * code point order. `<` on strings compares UTF-16 code units, which puts
 * U+10000 and above before U+E000-U+FFFF; shifting those units fixes that at
 * the first difference.
 */
function compareNames(a: TreeNode, b: TreeNode): number {
  if (a.nameBytes || b.nameBytes) return compareBytes(nameBytesOf(a), nameBytesOf(b));
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

/** A string equal for two nodes exactly when their exact name bytes are equal. */
export function nameKey(n: Pick<TreeNode, "name" | "nameBytes">): string {
  if (!n.nameBytes) return n.name;
  // NUL never occurs in a name, so this cannot equal a UTF-8 name's key.
  return isUtf8(n.nameBytes)
    ? strictUtf8.decode(n.nameBytes)
    : "\0" + String.fromCharCode(...n.nameBytes);
}

/** The name as a message quotes it: JSON, with the exact bytes in hex when not UTF-8. */
function quoted(n: Pick<TreeNode, "name" | "nameBytes">): string {
  if (!n.nameBytes) return JSON.stringify(n.name);
  return `${JSON.stringify(n.name)} (bytes ${
    [...n.nameBytes].map((b) => b.toString(16).padStart(2, "0")).join("")
  })`;
}

function unsafeBytes(b: Uint8Array): boolean {
  return b.length === 0 || (b.length === 1 && b[0] === 0x2e) ||
    (b.length === 2 && b[0] === 0x2e && b[1] === 0x2e) || b.includes(0x2f) || b.includes(0);
}

/** Sorts nodes by name and encodes them; throws TypeError on a duplicate or invalid name. */
export function encodeTree(nodes: TreeNode[]): Uint8Array {
  const sorted = [...nodes].sort(compareNames);
  for (let i = 0; i < sorted.length; i++) {
    const n = sorted[i]!;
    if (
      n.nameBytes
        ? unsafeBytes(n.nameBytes)
        : n.name === "" || n.name === "." || n.name === ".." || n.name.includes("/")
    ) {
      throw new TypeError(`invalid file name ${quoted(n)} in a tree`);
    }
    if (i > 0 && nameKey(sorted[i - 1]!) === nameKey(n)) {
      throw new TypeError(`duplicate file name ${quoted(n)} in a tree`);
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
      nlink: n.nlink ?? 0,
      nameBytes: n.nameBytes ?? new Uint8Array(0),
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
  nlink?: number;
  nameBytes?: Uint8Array;
}

/**
 * Decodes a tree; throws SyntaxError when the bytes are not a valid tree: a
 * node of unknown type, an unsafe name, or two nodes with the same name
 * (FORMAT.md section 12). Node order is not checked.
 */
export function decodeTree(bytes: Uint8Array): TreeNode[] {
  let raw: { nodes?: RawNode[] };
  try {
    raw = TreeType.decode(bytes) as unknown as { nodes?: RawNode[] };
  } catch (e) {
    throw new SyntaxError(`tree does not decode (${(e as Error).message})`);
  }
  const seen = new Set<string>();
  return (raw.nodes ?? []).map((r) => {
    const type = r.type ?? 0;
    if (type !== NodeType.file && type !== NodeType.dir && type !== NodeType.symlink) {
      throw new SyntaxError(`tree node "${r.name}" has unknown type ${type}`);
    }
    // name_bytes, when set, is the name (format 1.2); name is then only its lossy form.
    const exact = r.nameBytes && r.nameBytes.length > 0 ? new Uint8Array(r.nameBytes) : null;
    const name = exact ? lossyUtf8.decode(exact) : r.name ?? "";
    if (
      exact
        ? unsafeBytes(exact)
        : name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")
    ) {
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
    if (type === NodeType.file && r.nlink && r.nlink > 1) node.nlink = r.nlink;
    if (exact && !isUtf8(exact)) node.nameBytes = exact;
    else if (exact) node.name = strictUtf8.decode(exact);
    const key = nameKey(node);
    if (seen.has(key)) throw new SyntaxError(`tree holds two entries named ${quoted(node)}`);
    seen.add(key);
    return node;
  });
}
