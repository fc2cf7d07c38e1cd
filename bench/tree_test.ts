import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compareManifests, manifestTree, summarizeTree, treeBytes, walkTree } from "./tree.ts";

function withTemp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "bendsave-tree-test-"));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function build(root: string, files: Record<string, string>): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), content);
  }
}

Deno.test("walkTree lists entries in sorted depth-first order without following links", () => {
  withTemp((dir) => {
    build(dir, { "b/x.txt": "x", "a.txt": "aa", "b/c/y.txt": "yyy" });
    symlinkSync("b", join(dir, "link"));
    deepStrictEqual(
      [...walkTree(dir)].map((e) => `${e.type}:${e.path}`),
      ["file:a.txt", "dir:b", "dir:b/c", "file:b/c/y.txt", "file:b/x.txt", "symlink:link"],
    );
    deepStrictEqual(summarizeTree(dir), { files: 3, dirs: 2, symlinks: 1, others: 0, bytes: 6 });
    strictEqual(treeBytes(dir), 6);
  });
});

Deno.test("compareManifests reports missing, extra and differing entries", () => {
  withTemp((dir) => {
    build(join(dir, "src"), { "same.txt": "s", "gone.txt": "g", "changed.txt": "one" });
    build(join(dir, "dst"), { "same.txt": "s", "new.txt": "n", "changed.txt": "two" });
    const cmp = compareManifests(manifestTree(join(dir, "src")), manifestTree(join(dir, "dst")));
    ok(!cmp.identical);
    deepStrictEqual(cmp.missing, ["gone.txt"]);
    deepStrictEqual(cmp.extra, ["new.txt"]);
    deepStrictEqual(cmp.differing, ["changed.txt"]);
    strictEqual(cmp.files, 3);
  });
});

Deno.test("compareManifests sees a changed symlink target", () => {
  withTemp((dir) => {
    mkdirSync(join(dir, "src"));
    mkdirSync(join(dir, "dst"));
    symlinkSync("a", join(dir, "src", "l"));
    symlinkSync("b", join(dir, "dst", "l"));
    const cmp = compareManifests(manifestTree(join(dir, "src")), manifestTree(join(dir, "dst")));
    deepStrictEqual(cmp.differing, ["l"]);
  });
});
