import assert from "node:assert/strict";
import { syncfsIsSafe } from "./pg_restore.ts";

Deno.test("syncfsIsSafe holds on Linux 5.8 and later only", () => {
  for (const r of ["5.8.0", "5.10.102-generic", "6.18.44-fc-v1045", "10.0"]) {
    assert.equal(syncfsIsSafe("linux", r), true, r);
  }
  for (const r of ["5.7.19", "4.19.0-26-amd64", "3.10.0", "", "x"]) {
    assert.equal(syncfsIsSafe("linux", r), false, r);
  }
  assert.equal(syncfsIsSafe("darwin", "23.1.0"), false);
  assert.equal(syncfsIsSafe("freebsd", "14.0-RELEASE"), false);
});
