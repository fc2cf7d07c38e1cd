import assert from "node:assert/strict";
import { entryChanged, type TreeEntry } from "./tree_source.ts";
import { NodeType, type TreeNode } from "../../formats/tree.ts";

const node: TreeNode = {
  name: "f",
  type: NodeType.file,
  mode: 0o644,
  mtimeMs: 1_000,
  size: 10,
  blocks: [],
  inode: 42,
  device: 1,
  uid: 0,
  gid: 0,
};
const entry: TreeEntry = { ...node, type: "file" };

Deno.test("entryChanged is false for a file with the same size, mtime and inode", () => {
  assert.equal(entryChanged(node, entry), false);
  // Mode, owner and device are not part of the test (as in the directory backup before it).
  assert.equal(entryChanged(node, { ...entry, mode: 0o600, uid: 5, device: 2 }), false);
});

Deno.test("entryChanged is true for a new size, mtime or inode, or no file in the parent", () => {
  assert.equal(entryChanged(node, { ...entry, size: 11 }), true);
  assert.equal(entryChanged(node, { ...entry, mtimeMs: 1_001 }), true);
  assert.equal(entryChanged(node, { ...entry, inode: 43 }), true);
  assert.equal(entryChanged(undefined, entry), true);
  assert.equal(entryChanged({ ...node, type: NodeType.dir }, entry), true);
  assert.equal(entryChanged({ ...node, type: NodeType.symlink }, entry), true);
});

Deno.test("entryChanged compares entity tags instead of mtimes when both have one", () => {
  const tagged = { ...node, etag: '"a"' };
  assert.equal(entryChanged(tagged, { ...entry, etag: '"a"', mtimeMs: 9 }), false);
  assert.equal(entryChanged(tagged, { ...entry, etag: '"b"' }), true);
  // Only one side has a tag: the mtimes decide.
  assert.equal(entryChanged(tagged, { ...entry, mtimeMs: 9 }), true);
  assert.equal(entryChanged(node, { ...entry, etag: '"a"' }), false);
});

Deno.test("entryChanged with ignoreInode leaves inodes out", () => {
  assert.equal(entryChanged(node, { ...entry, inode: 7 }, { ignoreInode: true }), false);
  assert.equal(entryChanged(node, { ...entry, inode: 7, size: 3 }, { ignoreInode: true }), true);
});
