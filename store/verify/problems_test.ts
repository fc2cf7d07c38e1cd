import assert from "node:assert/strict";
import { addAffectedFile, attachProblem, FILES_PER_PROBLEM, Problems } from "./problems.ts";

Deno.test("Problems keeps the order found", () => {
  const list = new Problems();
  list.add("tree", "t", "tree damaged");
  const p = list.add("pack", "p", "pack damaged");
  assert.deepEqual(list.list.map((x) => x.kind), ["tree", "pack"]);
  assert.deepEqual(p, {
    kind: "pack",
    id: "p",
    message: "pack damaged",
    manifests: [],
    files: [],
    filesTotal: 0,
  });
});

Deno.test("attachProblem names each manifest once and at most FILES_PER_PROBLEM files, counting all", () => {
  const p = new Problems().add("block", "b", "damaged");
  for (let i = 0; i < FILES_PER_PROBLEM + 5; i++) attachProblem(p, "m1", `f${i}`);
  attachProblem(p, "m2", null);
  addAffectedFile(p, "wal:1/000000010000000000000003");
  assert.deepEqual(p.manifests, ["m1", "m2"]);
  assert.equal(p.files.length, FILES_PER_PROBLEM);
  assert.equal(p.filesTotal, FILES_PER_PROBLEM + 6);
});
