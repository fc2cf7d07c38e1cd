import assert from "node:assert/strict";
import { backup } from "./backup/backup.ts";
import { MemStore } from "./drivers/mem.ts";
import { verify } from "./verify.ts";
import type { Source } from "../sources/types.ts";

/** A source of one object 3000 directories deep (an objects part: no PATH_MAX). */
function deepSource(depth: number): Source {
  const name = "d/".repeat(depth) + "f";
  const data = new TextEncoder().encode("the deep file");
  return {
    info: { type: "test", key: "test:deep", description: "deep objects", settings: {} },
    parts: () =>
      Promise.resolve([{
        name: "objects",
        kind: "objects",
        location: "mem://deep",
        async *list() {
          yield { name, size: data.length, mtimeMs: 0 };
        },
        read: () => Promise.resolve(data),
      }]),
  };
}

Deno.test("verify of a damaged tree 3000 directories deep reports the damage, no stack overflow", async () => {
  const store = new MemStore();
  await backup(store, deepSource(3000), { workers: 0 });
  assert.equal((await verify(store)).ok, true);
  // Lose the data pack (the small one; the other holds the 3001 trees).
  const packs: { name: string; size: number }[] = [];
  for await (const f of store.list("pack")) packs.push(f);
  assert.equal(packs.length, 2);
  packs.sort((a, b) => a.size - b.size);
  await store.remove({ kind: "pack", name: packs[0]!.name });
  const report = await verify(store);
  assert.equal(report.ok, false);
  assert.equal(report.checked.trees, 3001);
  const files = report.problems.flatMap((p) => p.files);
  assert.ok(
    files.some((f) => f.endsWith(":" + "d/".repeat(3000) + "f")),
    JSON.stringify(report.problems.map((p) => p.message)),
  );
});
