import assert from "node:assert/strict";
import { ownerOf, ownership, parseIdMap } from "./owner.ts";

const node = { uid: 1000, gid: 1001 };

Deno.test("parseIdMap reads FROM:TO lists, several strings and the * entry", () => {
  assert.deepEqual([...parseIdMap("1000:26, 1001:26")], [[1000, 26], [1001, 26]]);
  assert.deepEqual([...parseIdMap(["0:0", "*:999"])], [[0, 0], ["*", 999]]);
});

Deno.test("parseIdMap refuses malformed entries with a RangeError quoting them", () => {
  for (const bad of ["1000", "a:1", "1:b", "1:2:3", "-1:2", "1:4294967295", "", "1:2,"]) {
    assert.throws(() => parseIdMap(bad), RangeError, bad);
  }
  assert.throws(() => parseIdMap("5:1,5:2"), /id 5 is mapped twice/);
});

Deno.test("ownerOf maps uid and gid separately, * for the rest, and is null when off", () => {
  const uidMap = parseIdMap("1000:26");
  const gidMap = parseIdMap("*:27");
  assert.deepEqual(ownerOf(node, { owner: true }), [1000, 1001]);
  assert.deepEqual(ownerOf(node, { owner: true, uidMap }), [26, 1001]);
  assert.deepEqual(ownerOf(node, { owner: true, uidMap, gidMap }), [26, 27]);
  assert.deepEqual(ownerOf({ uid: 5, gid: 5 }, { owner: true, uidMap }), [5, 5]);
  assert.equal(ownerOf(node, { owner: false, uidMap }), null);
});

Deno.test("ownership defaults to set as root and not-root otherwise", () => {
  const root = Deno.uid() === 0;
  assert.equal(ownership({}), root ? "set" : "not-root");
  assert.equal(ownership({ owner: false }), "off");
  assert.equal(ownership({ owner: true }), "set");
});
