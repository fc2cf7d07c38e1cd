import assert from "node:assert/strict";
import { sha256, toHex } from "./hash.ts";
import { generateMasterKey, keyedId, MASTER_KEY_LENGTH, masterKeyFrom } from "./master_key.ts";
import { seal, sealContext, unseal } from "./seal.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("keyedId is HMAC-SHA-256 (RFC 4231 test case 2)", () => {
  assert.equal(
    toHex(keyedId(enc("Jefe"), enc("what do ya want for nothing?"))),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  );
});

Deno.test("keyedId differs from the plain SHA-256 and between keys", async () => {
  const a = await generateMasterKey();
  const b = await generateMasterKey();
  const data = enc("a known file");
  assert.notEqual(toHex(keyedId(a.idKey, data)), toHex(sha256(data)));
  assert.notEqual(toHex(keyedId(a.idKey, data)), toHex(keyedId(b.idKey, data)));
  assert.equal(toHex(keyedId(a.idKey, data)), toHex(keyedId(a.idKey, enc("a known file"))));
});

Deno.test("masterKeyFrom splits the 64 bytes into the sealing key and the id key", async () => {
  const raw = new Uint8Array(MASTER_KEY_LENGTH).map((_, i) => i);
  const k = await masterKeyFrom(raw);
  assert.deepEqual(k.idKey, raw.slice(32));
  assert.deepEqual(k.raw, raw);
  const again = await masterKeyFrom(raw);
  const aad = sealContext("bendsave test");
  const sealed = await seal(k.seal, enc("x"), aad);
  assert.deepEqual(await unseal(again.seal, sealed, aad, "x"), enc("x"));
  await assert.rejects(masterKeyFrom(new Uint8Array(32)), RangeError);
});
