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
