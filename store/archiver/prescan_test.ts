import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { tempDir } from "../../testing/mod.ts";
import type { BytePath } from "../_byte_path.ts";
import { dirTree } from "./dir_tree.ts";
import { prescanTree } from "./prescan.ts";
import type { EntryName, TreeEntry, TreeSource } from "./tree_source.ts";

/** A tree of `dirs` directories of `files` files each, under `root`. */
function makeTree(root: string, dirs: number, files: number): void {
  for (let d = 0; d < dirs; d++) {
    const dir = path.join(root, `d${d}`, "inner");
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < files; f++) fs.writeFileSync(path.join(dir, `f${f}`), `${d}/${f}`);
  }
}

/** `tree` with its list and stat calls counted. */
function counted(tree: TreeSource<BytePath>) {
  const calls = { list: 0, stat: 0 };
  const wrapped: TreeSource<BytePath> = {
    ...tree,
    list: (dir, problem) => {
      calls.list++;
      return tree.list(dir, problem);
    },
    stat: (dir, name) => {
      calls.stat++;
      return tree.stat(dir, name);
    },
  };
  return { calls, tree: wrapped };
}

/** Every entry of `tree`, walked depth first as the archiver does: "path type size". */
async function walk(tree: TreeSource<BytePath>): Promise<string[]> {
  const out: string[] = [];
  const visit = async (dir: BytePath, rel: string) => {
    for (const name of await tree.list(dir, () => {})) {
      const e: TreeEntry = await tree.stat(dir, name);
      out.push(`${rel}${name.name} ${e.type} ${e.size} ${e.mtimeMs}`);
      if (e.type === "dir") await visit(tree.child(dir, e), `${rel}${name.name}/`);
    }
  };
  await visit(tree.root, "");
  return out;
}

Deno.test("prescanTree answers each list and stat once from its scan, and the walk sees what a plain walk sees", async () => {
  await using t = await tempDir();
  makeTree(t.dir, 5, 20);
  const plain = await walk(dirTree(t.dir));
  const { calls, tree } = counted(dirTree(t.dir));
  let release!: () => void;
  const until = new Promise<void>((r) => (release = r));
  const scan = prescanTree(tree, until);
  // Let the scan run (it stops by itself at the end of the tree).
  const found = await scan.done;
  assert.deepEqual(found, { lists: 11, stats: 110 }, "root, 5 dirs, 5 inner dirs; 110 entries");
  const before = { ...calls };
  assert.deepEqual(await walk(scan.tree), plain);
  assert.deepEqual(calls, before, "the walk was answered from the scan alone");
  // Each answer is given once: a second walk asks the tree again.
  assert.deepEqual(await walk(scan.tree), plain);
  assert.deepEqual(calls, { list: before.list + 11, stat: before.stat + 110 });
  release();
});

Deno.test("prescanTree stops when `until` settles and at maxEntries; the walk asks the tree for the rest", async () => {
  await using t = await tempDir();
  makeTree(t.dir, 5, 20);
  const plain = await walk(dirTree(t.dir));
  const limited = counted(dirTree(t.dir));
  const scan = prescanTree(limited.tree, new Promise(() => {}), { maxEntries: 30 });
  const found = await scan.done;
  assert.equal(found.lists + found.stats, 30);
  assert.deepEqual(await walk(scan.tree), plain);
  assert.deepEqual(limited.calls, { list: 11, stat: 110 }, "nothing asked twice");
  const settled = counted(dirTree(t.dir));
  const early = prescanTree(settled.tree, Promise.resolve());
  const none = await early.done;
  assert.ok(none.stats < 110, `stopped early: ${JSON.stringify(none)}`);
  assert.deepEqual(await walk(early.tree), plain);
});

Deno.test("prescanTree keeps no listing that reported a problem, nor a stat that failed", async () => {
  await using t = await tempDir();
  makeTree(t.dir, 2, 3);
  const base = dirTree(t.dir);
  const troubled = path.join(t.dir, "d1");
  let problems = 0;
  const flaky: TreeSource<BytePath> = {
    ...base,
    list: (dir, problem) => {
      const names = base.list(dir, problem) as EntryName[];
      if (dir === troubled) problem(String(dir), "one entry could not be listed");
      return names;
    },
    stat: (dir, name) => {
      if (name.name === "f2") throw new Error("cannot stat");
      return base.stat(dir, name);
    },
  };
  const scan = prescanTree(flaky, new Promise(() => {}));
  await scan.done;
  // The archiver's own calls see the problem and the failure again.
  await scan.tree.list(troubled, () => problems++);
  assert.equal(problems, 1);
  const inner = path.join(t.dir, "d0", "inner");
  const names = await scan.tree.list(inner, () => {});
  assert.deepEqual(names.map((n) => n.name), ["f0", "f1", "f2"]);
  assert.throws(() => scan.tree.stat(inner, names[2]!), /cannot stat/);
  assert.equal((await scan.tree.stat(inner, names[0]!)).type, "file");
});
