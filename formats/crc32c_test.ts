import assert from "node:assert/strict";
import { crc32c } from "./crc32c.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("crc32c gives the standard check value 0xE3069283 for 123456789", () => {
  assert.equal(crc32c(enc("123456789")), 0xE3069283);
});

Deno.test("crc32c of empty input is 0", () => {
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

Deno.test("crc32c matches the RFC 3720 (iSCSI) test vectors", () => {
  assert.equal(crc32c(new Uint8Array(32)), 0x8A9136AA);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62A8AB43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46DD794E);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113FDB5C);
});

Deno.test("crc32c is unsigned and independent of earlier calls", () => {
  const data = enc("123456789");
  crc32c(enc("something else first"));
  assert.equal(crc32c(data), 0xE3069283);
  assert.ok(crc32c(data) > 0x7fffffff, "returned as an unsigned 32-bit number");
});

Deno.test("crc32c reads only the bytes of a subarray view", () => {
  const buf = enc("xx123456789yy");
  assert.equal(crc32c(buf.subarray(2, 11)), 0xE3069283);
});
