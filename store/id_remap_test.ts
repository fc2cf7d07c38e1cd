import assert from "node:assert/strict";
import { sha256 } from "../formats/hash.ts";
import { BlobKind } from "../formats/pack.ts";
import { BlockIndex } from "./block_index.ts";
import { IdRemap } from "./id_remap.ts";

const id = (n: number) => sha256(new TextEncoder().encode(`block ${n}`));

function indexOf(n: number): BlockIndex {
  const index = new BlockIndex();
  const p = index.addPack(new Uint8Array(32), 0);
  for (let i = 0; i < n; i++) {
    index.add(p, {
      id: id(i),
      kind: BlobKind.data,
      codec: 0,
      offset: 0,
      storedLength: 1,
      rawLength: 1,
    });
  }
  return index;
}

Deno.test("IdRemap maps indexed blocks across pages and leaves the others unmapped", () => {
  const map = new IdRemap(indexOf(3000));
  assert.equal(map.get(id(5)), undefined);
  for (const i of [0, 1023, 1024, 2999]) map.set(id(i), id(100_000 + i));
  map.set(id(1023), id(7));
  assert.equal(map.size, 4);
  assert.deepEqual(map.get(id(0)), id(100_000));
  assert.deepEqual(map.get(id(1023)), id(7), "a second set replaces the first");
  assert.deepEqual(map.get(id(1024)), id(101_024));
  assert.deepEqual(map.get(id(2999)), id(102_999));
  assert.equal(map.get(id(1)), undefined, "a neighbour in the same page is not mapped");
  assert.equal(map.get(id(5000)), undefined, "a block the index lacks is not mapped");
  assert.equal(map.memoryBytes(), 3 * 1024 * 33, "three pages of 1024 slots");
});

Deno.test("IdRemap refuses a block the index lacks and an id of the wrong length", () => {
  const map = new IdRemap(indexOf(10));
  assert.throws(() => map.set(id(50), id(1)), RangeError);
  assert.throws(() => map.set(id(1), new Uint8Array(31)), RangeError);
  assert.equal(map.size, 0);
});
