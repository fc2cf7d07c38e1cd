import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { FsStore } from "../drivers/fs.ts";
import { backup } from "./backup.ts";
import type { DirPart, Source } from "../../sources/types.ts";
import { tempDir } from "../../testing/mod.ts";

/** A one-part source over `dir` with the given DirPart options. */
function partSource(dir: string, part: Partial<DirPart>): Source {
  return {
    info: { type: "test", key: "part-options", description: "test", settings: {} },
    parts: () => Promise.resolve([{ name: "files", kind: "tree", path: dir, ...part }]),
  };
}

Deno.test("backup leaves out a DirPart's own exclusions on top of --exclude", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  for (const f of ["keep", "own/skip", "own/keep", "glob.tmp", "sub/x"]) {
    fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
    fs.writeFileSync(path.join(src, f), f);
  }
  const store = await FsStore.open(path.join(t.dir, "repo"), { create: true });
  const seen: string[] = [];
  const r = await backup(
    store,
    partSource(src, {
      exclude: (rel) => {
        seen.push(rel);
        return rel === "own/skip" || rel === "sub";
      },
    }),
    { workers: 0, exclude: ["*.tmp"] },
  );
  assert.equal(r.manifest.stats.files, 2); // keep, own/keep
  assert.equal(r.manifest.stats.dirs, 1); // own
  assert.ok(!seen.includes("sub/x"), "a directory left out is not entered");
});

Deno.test("backup with DirPart.vanishedOk leaves out files that vanish during the backup, without a warning", async () => {
  for (const vanishedOk of [true, false]) {
    await using t = await tempDir();
    const src = path.join(t.dir, "src");
    fs.mkdirSync(path.join(src, "dir"), { recursive: true });
    for (const f of ["a", "b", "c", "d"]) fs.writeFileSync(path.join(src, f), f.repeat(1000));
    const store = await FsStore.open(path.join(t.dir, "repo"), { create: true });
    const warnings: string[] = [];
    const r = await backup(
      store,
      partSource(src, {
        vanishedOk,
        // When the walk reaches "c": "b" is walked and waits to be read, "d" and "dir" are not
        // walked yet.
        exclude: (rel) => {
          if (rel === "c") {
            fs.rmSync(path.join(src, "b"));
            fs.rmSync(path.join(src, "d"));
          }
          return false;
        },
      }),
      {
        workers: 0,
        onEvent: (e) => {
          if (e.type === "warning") warnings.push(e.message);
        },
      },
    );
    const m = r.manifest;
    assert.equal(m.stats.files, 2, `${vanishedOk}`); // a, c
    if (vanishedOk) {
      assert.equal(m.incomplete, false);
      assert.deepEqual(warnings, []);
    } else {
      assert.equal(m.incomplete, true);
      assert.equal(m.stats.errors, 2, m.warnings.join("\n"));
    }
  }
});
