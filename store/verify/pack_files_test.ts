import assert from "node:assert/strict";
import { sameEntries } from "./pack_files.ts";
import type { PackEntry } from "../../formats/pack.ts";

const entry = (n: number, over: Partial<PackEntry> = {}): PackEntry => ({
  id: new Uint8Array(32).fill(n),
  kind: 0,
  codec: 1,
  offset: 8 + n * 100,
  storedLength: 100,
  rawLength: 300,
  ...over,
});

Deno.test("sameEntries holds for the same entries in any order", () => {
  const a = [entry(1), entry(2), entry(3)];
  assert.equal(sameEntries(a, [entry(3), entry(1), entry(2)]), true);
  assert.equal(sameEntries([], []), true);
});

Deno.test("sameEntries fails when any field of one entry differs, or the counts differ", () => {
  const a = [entry(1), entry(2)];
  for (
    const changed of [
      { id: new Uint8Array(32).fill(9) },
      { kind: 1 as const },
      { codec: 0 },
      { offset: 9999 },
      { storedLength: 99 },
      { rawLength: 301 },
    ]
  ) {
    assert.equal(sameEntries(a, [entry(1), entry(2, changed)]), false, JSON.stringify(changed));
  }
  assert.equal(sameEntries(a, [entry(1)]), false);
  // The same entry twice is not two different entries.
  assert.equal(sameEntries(a, [entry(1), entry(1)]), false);
});
