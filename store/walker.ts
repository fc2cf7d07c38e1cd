/**
 * One tree walk for every command that follows a backup's trees: restore,
 * verify, vacuum and copy. Depth first, entries in tree order, a directory's
 * entries before its next sibling (the order the recursive walks had), with
 * an explicit stack, so a tree thousands of directories deep cannot overflow
 * the call stack. What a walk does at each step is the caller's, through a
 * {@linkcode TreeWalk}; a context value travels down with each directory.
 *
 * @module
 */
import { NodeType, type TreeNode } from "../formats/tree.ts";

/** What a walk does; `C` is the context of a directory (its path, say). */
export interface TreeWalk<C> {
  /**
   * The entries of the tree `id` of a directory, or null to go past it (a
   * tree already walked, or one that cannot be read and is reported).
   */
  load(id: Uint8Array, dir: C): Promise<readonly TreeNode[] | null>;
  /**
   * One entry of directory `dir`. For a directory with a subtree, return
   * the context to walk it with, or undefined to leave it out.
   */
  enter(node: TreeNode, dir: C): C | undefined | Promise<C | undefined>;
  /** All of a directory's entries are done, its subdirectories included. */
  leave?(dir: C, nodes: readonly TreeNode[] | null): void | Promise<void>;
}

interface Frame<C> {
  readonly dir: C;
  readonly nodes: readonly TreeNode[] | null;
  next: number;
}

/**
 * Walks the tree `root` with `walk`, starting in the context `top`.
 *
 * @example
 * ```ts ignore
 * await walkTree(part.root, "", {
 *   load: (id) => repo.loadTree(id),
 *   enter: (node, dir) => (node.type === NodeType.dir ? `${dir}/${node.name}` : undefined),
 * });
 * ```
 */
export async function walkTree<C>(root: Uint8Array, top: C, walk: TreeWalk<C>): Promise<void> {
  const stack: Frame<C>[] = [{ dir: top, nodes: await walk.load(root, top), next: 0 }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const node = frame.nodes?.[frame.next++];
    if (node === undefined) {
      stack.pop();
      await walk.leave?.(frame.dir, frame.nodes);
      continue;
    }
    const inner = await walk.enter(node, frame.dir);
    if (inner !== undefined && node.type === NodeType.dir && node.subtree?.length) {
      stack.push({ dir: inner, nodes: await walk.load(node.subtree, inner), next: 0 });
    }
  }
}
