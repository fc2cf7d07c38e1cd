import assert from "node:assert/strict";
import { freeBuffer, freeWhole } from "./free_buffer.ts";

Deno.test("freeWhole frees a buffer a view covers, and leaves a view of part of one", () => {
  const whole = new Uint8Array(1 << 20).fill(1);
  freeWhole(whole);
  assert.equal(whole.buffer.byteLength, 0);
  assert.equal(whole.length, 0);
  const big = new Uint8Array(1000).fill(2);
  const part = big.subarray(10, 20);
  freeWhole(part);
  assert.equal(big.buffer.byteLength, 1000);
  assert.deepEqual([...part], new Array(10).fill(2));
  freeWhole(whole); // already freed: nothing happens
});

Deno.test("freeBuffer frees an ArrayBuffer and leaves shared memory alone", () => {
  const b = new ArrayBuffer(4096);
  freeBuffer(b);
  assert.equal(b.byteLength, 0);
  const shared = new SharedArrayBuffer(64);
  freeBuffer(shared);
  assert.equal(shared.byteLength, 64);
});
