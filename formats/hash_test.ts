import assert from "node:assert/strict";
import {
  equalBytes,
  fromHex,
  ID_LENGTH,
  isHexId,
  Sha256,
  sha256,
  sha256Hex,
  toHex,
} from "./hash.ts";

const enc = (s: string) => new TextEncoder().encode(s);

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

Deno.test("sha256 matches the FIPS 180-2 vectors for the empty string and abc", () => {
  assert.equal(toHex(sha256(new Uint8Array(0))), EMPTY_SHA256);
  assert.equal(toHex(sha256(enc("abc"))), ABC_SHA256);
  assert.equal(sha256(enc("abc")).length, ID_LENGTH);
});

Deno.test("sha256Hex matches sha256 as lowercase hex", () => {
  assert.equal(sha256Hex(new Uint8Array(0)), EMPTY_SHA256);
  assert.equal(sha256Hex(enc("abc")), ABC_SHA256);
});

Deno.test("sha256 returns a plain Uint8Array that can be compared with deepEqual", () => {
  const d = sha256(enc("abc"));
  assert.equal(Object.getPrototypeOf(d), Uint8Array.prototype);
  assert.deepEqual(d, fromHex(ABC_SHA256));
});

Deno.test("Sha256 hashed in pieces equals sha256 of the whole", () => {
  const h = new Sha256().update(enc("a")).update(new Uint8Array(0)).update(enc("bc"));
  assert.equal(toHex(h.digest()), ABC_SHA256);
  assert.equal(toHex(new Sha256().digest()), EMPTY_SHA256);
});

Deno.test("toHex and fromHex round trip every byte value", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const hex = toHex(all);
  assert.equal(hex.length, 512);
  assert.match(hex, /^[0-9a-f]+$/);
  assert.ok(hex.startsWith("000102"));
  assert.ok(hex.endsWith("fdfeff"));
  assert.deepEqual(fromHex(hex), all);
  assert.equal(toHex(new Uint8Array(0)), "");
  assert.deepEqual(fromHex(""), new Uint8Array(0));
});

Deno.test("fromHex accepts uppercase hex", () => {
  assert.deepEqual(fromHex("ABcdEF"), new Uint8Array([0xab, 0xcd, 0xef]));
});

Deno.test("fromHex throws SyntaxError on odd length or a non-hex character", () => {
  for (const bad of ["a", "abc", "zz", "0g", "  ", "0x00", "12 34", "é0"]) {
    assert.throws(() => fromHex(bad), SyntaxError, `fromHex(${JSON.stringify(bad)})`);
  }
});

Deno.test("fromHex quotes at most 80 characters of the offending value", () => {
  const long = "x".repeat(1000);
  assert.throws(() => fromHex(long), (e: unknown) => {
    assert.ok(e instanceof SyntaxError);
    assert.ok(e.message.includes(`"${"x".repeat(80)}"`), e.message);
    assert.ok(!e.message.includes("x".repeat(81)), e.message);
    return true;
  });
});

Deno.test("isHexId accepts exactly 64 lowercase hex characters", () => {
  assert.equal(isHexId(EMPTY_SHA256), true);
  assert.equal(isHexId("0".repeat(64)), true);
  assert.equal(isHexId(EMPTY_SHA256.toUpperCase()), false);
  assert.equal(isHexId(EMPTY_SHA256.slice(1)), false);
  assert.equal(isHexId(EMPTY_SHA256 + "0"), false);
  assert.equal(isHexId("g".repeat(64)), false);
  assert.equal(isHexId(""), false);
  assert.equal(isHexId(`${EMPTY_SHA256}\n`), false);
});

Deno.test("equalBytes compares length and every byte", () => {
  const a = sha256(enc("abc"));
  assert.equal(equalBytes(a, a.slice()), true);
  assert.equal(equalBytes(new Uint8Array(0), new Uint8Array(0)), true);
  assert.equal(equalBytes(a, a.subarray(0, 31)), false);
  const last = a.slice();
  last[31] = last[31]! ^ 1;
  assert.equal(equalBytes(a, last), false);
  const first = a.slice();
  first[0] = first[0]! ^ 0x80;
  assert.equal(equalBytes(a, first), false);
});
