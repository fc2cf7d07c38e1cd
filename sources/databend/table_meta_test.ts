import assert from "node:assert/strict";
import { decodeTableMeta } from "./table_meta.ts";

function str(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [b.length, ...b];
}
function entry(k: string, v: string): number[] {
  const inner = [10, ...str(k), 18, ...str(v)];
  return [42, inner.length, ...inner];
}

Deno.test("options and drop_on are read, other fields skipped", () => {
  const bytes = new Uint8Array([
    10,
    2,
    8,
    1, // field 1 (schema), length-delimited
    ...entry("database_id", "8"),
    ...entry("storage_prefix", "8/32"),
    50,
    ...str("FUSE"), // field 6
    194,
    1,
    ...str("2025-11-01 00:00:00 UTC"), // field 24 drop_on
    160,
    6,
    121,
    168,
    6,
    24, // ver, min_reader_ver
    9,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8, // field 1 fixed64 (skipped)
    21,
    1,
    2,
    3,
    4, // field 2 fixed32 (skipped)
  ]);
  const m = decodeTableMeta(bytes);
  assert.deepEqual([...m.options], [["database_id", "8"], ["storage_prefix", "8/32"]]);
  assert.equal(m.dropOn, "2025-11-01 00:00:00 UTC");
  assert.deepEqual(decodeTableMeta(new Uint8Array()), { options: new Map(), dropOn: null });
});

Deno.test("damaged bytes give a RangeError", () => {
  assert.throws(() => decodeTableMeta(new Uint8Array([42, 10, 1])), RangeError);
  assert.throws(() => decodeTableMeta(new Uint8Array([0x80])), RangeError);
  assert.throws(() => decodeTableMeta(new Uint8Array([11])), RangeError); // wire type 3
  assert.throws(() => decodeTableMeta(new Uint8Array([0, 1])), RangeError);
});
