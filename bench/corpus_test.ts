import { deepStrictEqual, notDeepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { existsSync, lstatSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateCorpus, mutateCorpus } from "./corpus.ts";
import { compareManifests, manifestTree, summarizeTree } from "./tree.ts";

const SMALL = { totalBytes: 6e6, largeFiles: 3, largeFileBytes: 1.2 * 1024 * 1024 };

function withTemp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "bendsave-corpus-test-"));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

Deno.test("generateCorpus is deterministic for a seed", () => {
  withTemp((dir) => {
    generateCorpus(join(dir, "a"), { seed: 7, ...SMALL });
    generateCorpus(join(dir, "b"), { seed: 7, ...SMALL });
    generateCorpus(join(dir, "c"), { seed: 8, ...SMALL });
    const a = manifestTree(join(dir, "a"));
    const cmp = compareManifests(a, manifestTree(join(dir, "b")));
    ok(cmp.identical, JSON.stringify(cmp).slice(0, 500));
    strictEqual(cmp.mtimeDiffers, 0);
    notDeepStrictEqual(
      [...a.values()].map((e) => e.sha256),
      [...manifestTree(join(dir, "c")).values()].map((e) => e.sha256),
    );
  });
});

Deno.test("generateCorpus writes small and large files, empty dirs and symlinks", () => {
  withTemp((dir) => {
    const root = join(dir, "corpus");
    const s = generateCorpus(root, { seed: 1, ...SMALL });
    const tree = summarizeTree(root);
    strictEqual(tree.files, s.files);
    strictEqual(tree.bytes, s.bytes);
    strictEqual(tree.symlinks, 12);
    strictEqual(s.emptyDirs, 5);
    strictEqual(s.largeFiles, 3);
    ok(s.duplicateFiles > 0 && s.randomFiles > 0 && s.largeDuplicateBytes > 0);
    ok(s.bytes > 4e6 && s.bytes < 9e6, `size ${s.bytes}`);
    ok(existsSync(join(root, "large/db/table-2.dat")));
    ok(lstatSync(join(root, "large/db/table-0.dat")).size >= 1024 * 1024);
  });
});

Deno.test("generateCorpus refuses a non-empty directory", () => {
  withTemp((dir) => {
    generateCorpus(join(dir, "x"), { seed: 1, totalBytes: 1e5, largeFiles: 0 });
    let threw = false;
    try {
      generateCorpus(join(dir, "x"), { seed: 1, totalBytes: 1e5, largeFiles: 0 });
    } catch (error) {
      threw = error instanceof RangeError;
    }
    ok(threw);
  });
});

Deno.test("mutateCorpus changes about 1% of files, the same way for a seed", () => {
  withTemp((dir) => {
    const results = ["a", "b"].map((name) => {
      const root = join(dir, name);
      generateCorpus(root, { seed: 3, ...SMALL });
      const before = manifestTree(root);
      const summary = mutateCorpus(root, 3);
      const after = manifestTree(root);
      return { summary, cmp: compareManifests(before, after), after, files: before.size };
    });
    const [a, b] = results as [typeof results[0], typeof results[0]];
    deepStrictEqual(a.summary, b.summary);
    ok(compareManifests(a.after, b.after).identical);
    const changed = a.cmp.missing.length + a.cmp.extra.length + a.cmp.differing.length;
    ok(changed >= 2 && changed <= Math.ceil(a.files * 0.02) + 2, `changed ${changed}`);
    strictEqual(a.summary.largeEdited, 1);
  });
});
