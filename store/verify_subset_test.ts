import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { FsStore } from "./drivers/fs.ts";
import { backup } from "./backup/backup.ts";
import { verify } from "./verify.ts";
import { dirSource } from "../sources/dir/dir_source.ts";
import { tempDir } from "../testing/mod.ts";

async function smallRepository(dir: string): Promise<FsStore> {
  const src = path.join(dir, "src");
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, "a.txt"), "a small file");
  const store = await FsStore.open(path.join(dir, "repo"), { create: true });
  await backup(store, dirSource(src), { workers: 0 });
  return store;
}

Deno.test("verify subset reads at least one pack when no pack falls in it", async () => {
  await using t = await tempDir();
  const store = await smallRepository(t.dir);
  const packs = (await verify(store)).checked.packs;
  assert.ok(packs >= 1 && packs < 7, `packs: ${packs}`);
  // 10% of a few packs with an unlucky draw, and slices of a week: each reads one pack.
  const percent = await verify(store, {
    subset: { kind: "percent", percent: 10 },
    random: () => 0.99,
  });
  assert.equal(percent.checked.packsRead, 1);
  assert.equal(percent.scope.packsInScope, packs);
  assert.equal(percent.ok, true);
  for (let n = 1; n <= 7; n++) {
    const slice = await verify(store, { subset: { kind: "slice", n, t: 7 } });
    assert.ok(slice.checked.packsRead >= 1, `slice ${n}/7 read no pack`);
  }
});
