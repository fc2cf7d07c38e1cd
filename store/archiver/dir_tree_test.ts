import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { dirTree } from "./dir_tree.ts";
import { EntryUnreadable } from "./tree_source.ts";
import { tempDir } from "../../testing/mod.ts";

Deno.test("dirTree lists names sorted by bytes and stats each kind of entry without following links", async () => {
  await using t = await tempDir();
  fs.mkdirSync(path.join(t.dir, "sub"));
  fs.writeFileSync(path.join(t.dir, "b.txt"), "hello");
  fs.linkSync(path.join(t.dir, "b.txt"), path.join(t.dir, "B-hard"));
  fs.symlinkSync("b.txt", path.join(t.dir, "a-link"));
  fs.utimesSync(path.join(t.dir, "b.txt"), 1_600_000_000, 1_600_000_000.25);
  const tree = dirTree(t.dir);
  const names = await tree.list(tree.root, () => assert.fail("no problem expected"));
  assert.deepEqual(names.map((n) => n.name), ["B-hard", "a-link", "b.txt", "sub"]);
  const file = await tree.stat(tree.root, { name: "b.txt" });
  const st = fs.lstatSync(path.join(t.dir, "b.txt"));
  assert.deepEqual(
    [file.type, file.size, file.mtimeMs, file.inode, file.nlink, file.mode],
    ["file", 5, st.mtimeMs, st.ino, 2, st.mode & 0o7777],
  );
  const link = await tree.stat(tree.root, { name: "a-link" });
  assert.deepEqual([link.type, link.linkTarget, link.size], ["symlink", "b.txt", 0]);
  const sub = await tree.stat(tree.root, { name: "sub" });
  assert.equal(sub.type, "dir");
  assert.equal(tree.child(tree.root, sub), path.join(t.dir, "sub"));
  assert.deepEqual(tree.open(tree.root, file), { kind: "file", path: path.join(t.dir, "b.txt") });
  assert.equal(tree.display(tree.root, { name: "b.txt" }), path.join(t.dir, "b.txt"));
});

Deno.test("dirTree stat of a vanished entry throws EntryUnreadable with the cause's code", async () => {
  await using t = await tempDir();
  const tree = dirTree(t.dir);
  const err = await Promise.resolve().then(() => tree.stat(tree.root, { name: "gone" })).then(
    () => assert.fail("stat of a missing entry succeeded"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof EntryUnreadable);
  assert.equal(err.code, "ENOENT");
  assert.match(err.message, /^cannot stat: /);
});
