import assert from "node:assert/strict";
import { describeSubset, parseSubset, pickSubset } from "./subset.ts";
import { InvalidInput } from "../errors.ts";

Deno.test("parseSubset reads n/t and N%, and refuses anything else with InvalidInput", () => {
  assert.deepEqual(parseSubset("2/7"), { kind: "slice", n: 2, t: 7 });
  assert.deepEqual(parseSubset("12.5%"), { kind: "percent", percent: 12.5 });
  for (const bad of ["0/3", "4/3", "0%", "101%", "half"]) {
    assert.throws(() => parseSubset(bad), InvalidInput, bad);
  }
  assert.equal(describeSubset(parseSubset("1/7")), "subset 1/7");
  assert.equal(describeSubset(parseSubset("10%")), "subset 10%");
});

Deno.test("pickSubset slices cover every pack once over t runs, and never pick none", () => {
  const packs = ["00000001", "00000002", "00000003", "00000004", "00000005"].map((p) =>
    p.padEnd(64, "0")
  ).sort();
  const seen = [1, 2, 3].flatMap((n) => pickSubset(packs, { kind: "slice", n, t: 3 }, Math.random));
  assert.deepEqual([...seen].sort(), packs);
  assert.equal(pickSubset(packs, { kind: "percent", percent: 1 }, () => 0.99).length, 1);
  assert.deepEqual(pickSubset([], { kind: "slice", n: 1, t: 2 }, Math.random), []);
});
