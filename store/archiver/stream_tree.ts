/**
 * A single stream (a {@linkcode StreamPart}: a meta export, a backup label)
 * as a {@linkcode TreeSource}: a root directory holding one file, whose
 * bytes are the stream's (restic's stdin is likewise a file system of one
 * file).
 *
 * @module
 */
import type { StreamPart } from "../source.ts";
import type { TreeSource } from "./tree_source.ts";

/**
 * The tree of `part`: one file named `part.fileName`, mode 0600, modified
 * at `now()` (the time it is stat'ed), its size known once it is read.
 *
 * @example
 * ```ts
 * import { streamTree } from "./stream_tree.ts";
 * const tree = streamTree({
 *   name: "meta",
 *   kind: "stream",
 *   fileName: "meta.jsonl",
 *   open: () => Promise.resolve([new TextEncoder().encode("{}\n")]),
 * }, Date.now);
 * tree.list(tree.root, () => {}); // [{ name: "meta.jsonl" }]
 * ```
 */
export function streamTree(part: StreamPart, now: () => number): TreeSource<null> {
  return {
    location: part.name,
    root: null,
    list: () => [{ name: part.fileName }],
    stat: (_dir, { name }) => {
      if (name !== part.fileName) throw new Error(`no file ${name} in stream ${part.name}`);
      return {
        name,
        type: "file",
        mode: 0o600,
        mtimeMs: now(),
        size: 0,
        inode: 0,
        device: 0,
        uid: 0,
        gid: 0,
      };
    },
    child: () => {
      throw new TypeError(`stream ${part.name} holds no directory`);
    },
    open: () => ({ kind: "stream", open: () => part.open() }),
    display: (_dir, name) => name ? `${part.name}/${name.name}` : part.name,
  };
}
