import assert from "node:assert/strict";
import nodeCrypto from "node:crypto";
import { Buffer } from "node:buffer";
import { fromHex, toHex } from "./hash.ts";
import {
  importSealKey,
  NONCE_LENGTH,
  seal,
  SEAL_OVERHEAD,
  sealContext,
  SealError,
  SMALL_OBJECT,
  unseal,
} from "./seal.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("unseal opens the AES-256-GCM test vector of McGrew and Viega (test case 14)", async () => {
  const key = await importSealKey(new Uint8Array(32));
  const sealed = fromHex(
    "000000000000000000000000" + "cea7403d4d606b6e074ec5d3baf39d18" +
      "d0d1c8a799996bf0265b98b5d48ab919",
  );
  const plain = await unseal(key, sealed, new Uint8Array(0), "vector");
  assert.equal(toHex(plain), "00000000000000000000000000000000");
});

Deno.test("seal round-trips and adds exactly the nonce and the tag", async () => {
  const key = await importSealKey(crypto.getRandomValues(new Uint8Array(32)));
  const aad = sealContext("bendsave block", new Uint8Array([1, 2, 3]));
  for (const size of [0, 1, 4096, 100_000]) {
    const data = crypto.getRandomValues(new Uint8Array(Math.min(size, 65536)));
    const sealed = await seal(key, data, aad);
    assert.equal(sealed.length, data.length + SEAL_OVERHEAD);
    assert.deepEqual(await unseal(key, sealed, aad, "x"), data);
  }
});

Deno.test("seal draws a new nonce each time, so equal plaintexts seal differently", async () => {
  const key = await importSealKey(new Uint8Array(32).fill(7));
  const aad = sealContext("bendsave block");
  const nonces = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const s = await seal(key, enc("same bytes"), aad);
    nonces.add(toHex(s.subarray(0, NONCE_LENGTH)));
  }
  assert.equal(nonces.size, 200);
});

Deno.test("unseal refuses a flipped byte anywhere, another role, another key and a truncation", async () => {
  const key = await importSealKey(new Uint8Array(32).fill(1));
  const other = await importSealKey(new Uint8Array(32).fill(2));
  const aad = sealContext("bendsave tree", enc("id"));
  const sealed = await seal(key, enc("the tree of a directory"), aad);
  for (let i = 0; i < sealed.length; i++) {
    const bad = sealed.slice();
    bad[i]! ^= 0x01;
    await assert.rejects(unseal(key, bad, aad, `byte ${i}`), SealError);
  }
  await assert.rejects(
    unseal(key, sealed, sealContext("bendsave block", enc("id")), "r"),
    SealError,
  );
  await assert.rejects(
    unseal(key, sealed, sealContext("bendsave tree", enc("ie")), "c"),
    SealError,
  );
  await assert.rejects(unseal(other, sealed, aad, "k"), SealError);
  await assert.rejects(unseal(key, sealed.subarray(0, SEAL_OVERHEAD - 1), aad, "t"), SealError);
  await assert.rejects(
    unseal(key, sealed.subarray(0, sealed.length - 1), aad, "pack 5f3a block 3"),
    /^SealError: pack 5f3a block 3 does not authenticate: it is damaged, or was sealed with another key$/,
  );
});

Deno.test("sealContext separates role and context with a zero byte and refuses non-ASCII roles", () => {
  assert.equal(toHex(sealContext("ab", new Uint8Array([0xff]))), "616200ff");
  assert.notDeepEqual(sealContext("ab", enc("c")), sealContext("abc"));
  assert.throws(() => sealContext("bl\u00f6ck"), TypeError);
});

Deno.test("importSealKey refuses a key that is not 32 bytes", async () => {
  await assert.rejects(importSealKey(new Uint8Array(16)), RangeError);
});

Deno.test("seal and unseal give the same layout through node:crypto (small objects) and WebCrypto (large)", async () => {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const key = await importSealKey(raw);
  const aad = sealContext("bendsave test", new Uint8Array([1, 2, 3]));
  for (const n of [0, 1, 5000, SMALL_OBJECT, SMALL_OBJECT + 1, 300_000]) {
    const plain = crypto.getRandomValues(new Uint8Array(Math.min(n, 65536)));
    const data = new Uint8Array(n).map((_, i) => plain[i % plain.length]!);
    const sealed = await seal(key, data, aad);
    assert.equal(sealed.length, n + SEAL_OVERHEAD);
    // Opened by each implementation independently of this module: nonce || ciphertext || tag.
    const web = new Uint8Array(
      await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: sealed.slice(0, 12), additionalData: aad.slice(), tagLength: 128 },
        key.web,
        sealed.slice(12),
      ),
    );
    assert.deepEqual(web, data, `${n} bytes through WebCrypto`);
    const d = nodeCrypto.createDecipheriv("aes-256-gcm", raw, sealed.subarray(0, 12));
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    const viaNode = Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
    assert.deepEqual(new Uint8Array(viaNode), data, `${n} bytes through node:crypto`);
    assert.deepEqual(await unseal(key, sealed, aad, "x"), data);
    const bad = sealed.slice();
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 1;
    await assert.rejects(unseal(key, bad, aad, "the test object"), SealError);
  }
});
