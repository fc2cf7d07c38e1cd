import assert from "node:assert/strict";
import { walkTree } from "./walker.ts";
import { NodeType, type TreeNode } from "../formats/tree.ts";

const file = (name: string): TreeNode => ({
  name,
  type: NodeType.file,
  mode: 0o644,
  mtimeMs: 0,
  size: 0,
  blocks: [],
  inode: 0,
  device: 0,
  uid: 0,
  gid: 0,
});
const dir = (name: string, id: number): TreeNode => ({
  ...file(name),
  type: NodeType.dir,
  subtree: new Uint8Array([id]),
});

/** Trees by their one-byte id. */
const trees = new Map<number, TreeNode[]>([
  [0, [file("a"), dir("d", 1), file("z")]],
  [1, [dir("e", 2), file("b")]],
  [2, [file("c")]],
]);

Deno.test("walkTree visits depth first in tree order and leaves each directory after its entries", async () => {
  const log: string[] = [];
  await walkTree(new Uint8Array([0]), "", {
    load: (id) => Promise.resolve(trees.get(id[0]!) ?? null),
    enter: (node, d) => {
      const p = d ? `${d}/${node.name}` : node.name;
      log.push(`enter ${p}`);
      return node.type === NodeType.dir ? p : undefined;
    },
    leave: (d) => {
      log.push(`leave ${d || "/"}`);
    },
  });
  assert.deepEqual(log, [
    "enter a",
    "enter d",
    "enter d/e",
    "enter d/e/c",
    "leave d/e",
    "enter d/b",
    "leave d",
    "enter z",
    "leave /",
  ]);
});

Deno.test("walkTree goes past a tree load returns null and a directory enter leaves out", async () => {
  const entered: string[] = [];
  const left: [string, boolean][] = [];
  await walkTree(new Uint8Array([0]), "", {
    load: (id) => Promise.resolve(id[0] === 2 ? null : trees.get(id[0]!)!),
    enter: (node, d) => {
      const p = d ? `${d}/${node.name}` : node.name;
      entered.push(p);
      return node.type === NodeType.dir ? p : undefined;
    },
    leave: (d, nodes) => {
      left.push([d || "/", nodes !== null]);
    },
  });
  assert.deepEqual(entered, ["a", "d", "d/e", "d/b", "z"]);
  assert.deepEqual(left, [["d/e", false], ["d", true], ["/", true]]);
});

Deno.test("walkTree walks a tree 20,000 directories deep without overflowing the stack", async () => {
  const depth = 20_000;
  let deepest = 0;
  await walkTree(new Uint8Array(4), 0, {
    load: (id) => {
      const n = new DataView(id.buffer).getUint32(0);
      if (n >= depth) return Promise.resolve([]);
      const next = new Uint8Array(4);
      new DataView(next.buffer).setUint32(0, n + 1);
      return Promise.resolve([{ ...dir("x", 0), subtree: next }]);
    },
    enter: (_node, d) => {
      deepest = Math.max(deepest, d + 1);
      return d + 1;
    },
  });
  assert.equal(deepest, depth);
});
