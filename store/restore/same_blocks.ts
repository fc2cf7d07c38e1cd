/**
 * The `--overwrite` comparison: whether bytes already in a restore target
 * are exactly a backed-up file, cut the way the backup cut it.
 *
 * @module
 */
import { type ChunkerParams, splitAll } from "../../formats/chunker.ts";
import { equalBytes, sha256 } from "../../formats/hash.ts";
import type { TreeNode } from "../../formats/tree.ts";

/** True when `data` cut by `chunker` gives exactly the blocks of `node`. */
export function sameBlocks(data: Uint8Array, node: TreeNode, chunker: ChunkerParams): boolean {
  if (data.length !== node.size) return false;
  const lens = splitAll(chunker, data);
  if (lens.length !== node.blocks.length) return false;
  let pos = 0;
  for (let i = 0; i < lens.length; i++) {
    if (!equalBytes(sha256(data.subarray(pos, pos + lens[i]!)), node.blocks[i]!)) return false;
    pos += lens[i]!;
  }
  return true;
}

/** Files up to this size are read whole for the comparison; larger ones block by block. */
export const COMPARE_WHOLE_MAX = 16 * 1024 * 1024;

/**
 * True when the bytes `read` gives, one block-sized range at a time, hash
 * to `ids` in order, with `lengths` the blocks' sizes adding up to `size`:
 * a large file or object is compared without ever being held whole.
 */
export async function sameRanges(
  ids: readonly Uint8Array[],
  lengths: readonly number[],
  size: number,
  read: (offset: number, length: number) => Promise<Uint8Array>,
): Promise<boolean> {
  let pos = 0;
  for (const [i, id] of ids.entries()) {
    const length = lengths[i]!;
    const part = await read(pos, length);
    if (part.length !== length || !equalBytes(sha256(part), id)) return false;
    pos += length;
  }
  return pos === size;
}
