import assert from "node:assert/strict";
import { MemStore } from "./drivers/mem.ts";
import { addKeySlot, listKeySlots, unlock } from "./keys.ts";
import { PassphraseError } from "./errors.ts";
import { sha256, toHex } from "../formats/hash.ts";
import { Repository } from "./repository.ts";
import { RepoCrypto } from "./repo_crypto.ts";
import { blockIdOf } from "../formats/block_seal.ts";

const ID = "ab".repeat(32);
const CHEAP = { memoryKiB: 64, iterations: 1, parallelism: 1 };
const MASTER = crypto.getRandomValues(new Uint8Array(64));

Deno.test("addKeySlot names the key file by its SHA-256 and unlock opens it", async () => {
  const store = new MemStore();
  const name = await addKeySlot(store, ID, MASTER, "pass one", { kdf: CHEAP });
  assert.equal(toHex(sha256(await store.load({ kind: "key", name }))), name);
  const u = await unlock(store, ID, "pass one");
  assert.deepEqual(u.masterKey, MASTER);
  assert.equal(u.slot, name);
});

Deno.test("unlock tries every slot and rejects a passphrase that opens none", async () => {
  const store = new MemStore();
  await addKeySlot(store, ID, MASTER, "first", { kdf: CHEAP });
  await addKeySlot(store, ID, MASTER, "second", { kdf: CHEAP });
  assert.deepEqual((await unlock(store, ID, "second")).masterKey, MASTER);
  assert.deepEqual((await unlock(store, ID, "first")).masterKey, MASTER);
  await assert.rejects(unlock(store, ID, "third"), (e: unknown) => {
    assert.ok(e instanceof PassphraseError);
    assert.match(e.message, /does not open/);
    assert.ok(!e.message.includes("third"));
    return true;
  });
});

Deno.test("unlock skips a damaged key file with a warning", async () => {
  const store = new MemStore();
  const bad = await addKeySlot(store, ID, MASTER, "p", { kdf: CHEAP });
  const bytes = await store.load({ kind: "key", name: bad });
  bytes[10]! ^= 1;
  await store.save({ kind: "key", name: bad }, bytes);
  await addKeySlot(store, ID, MASTER, "p", { kdf: CHEAP });
  const warnings: string[] = [];
  assert.deepEqual((await unlock(store, ID, "p", (m) => warnings.push(m))).masterKey, MASTER);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, new RegExp(`key file ${bad} does not match its name`));
  assert.equal((await listKeySlots(store, ID)).filter((s) => s.problem === null).length, 1);
});

Deno.test("Repository.init with a passphrase writes format 2 and keyed block ids", async () => {
  const store = new MemStore();
  const repo = await Repository.init(store, { passphrase: "p", kdf: CHEAP });
  assert.equal(repo.config.version, 2);
  assert.equal(repo.encrypted, true);
  const data = new TextEncoder().encode("some block");
  assert.notDeepEqual(repo.blockId(data), sha256(data));
  assert.deepEqual(repo.blockId(data), blockIdOf(data, repo.crypto!.key.idKey));
  const again = await Repository.open(store, { passphrase: () => Promise.resolve("p") });
  assert.deepEqual(again.blockId(data), repo.blockId(data));
  const keyless = await Repository.open(store, {
    passphrase: () => Promise.resolve(null),
    keyOptional: true,
  });
  assert.equal(keyless.crypto, null);
  await assert.rejects(keyless.loadIndex(), PassphraseError);
  await assert.rejects(
    Repository.open(store, { passphrase: () => Promise.resolve(null) }),
    /is encrypted: give its passphrase/,
  );
});

Deno.test("RepoCrypto binds a sealed block to its id and a manifest to its name", async () => {
  const c = await RepoCrypto.from(MASTER);
  const id = c.blockId(new Uint8Array([1]));
  const sealed = await c.sealBlock(id, new Uint8Array([9, 9]));
  assert.deepEqual(await c.openBlock(id, sealed, "b"), new Uint8Array([9, 9]));
  await assert.rejects(
    c.openBlock(c.blockId(new Uint8Array([2])), sealed, "b"),
    /does not authenticate/,
  );
  const m = await c.sealManifest("20260101_000000.manifest", new Uint8Array([5]));
  await assert.rejects(c.openManifest("20260102_000000.manifest", m), /does not authenticate/);
  const plain = new Uint8Array([0x42, 0x53, 0x49, 0x58, 1, 0, 0, 0, 7, 7]);
  const idx = await c.sealIndexFile(plain);
  assert.equal(idx[4], 2);
  assert.deepEqual(await c.openIndexFile(idx, "x"), plain);
});

Deno.test("unlock runs the KDF once per process for a slot and passphrase it opened before", async () => {
  const store = new MemStore();
  // The default cost (64 MiB, t=3): the first unlock takes a measurable time.
  await addKeySlot(store, ID, MASTER, "costly");
  let t0 = performance.now();
  assert.deepEqual((await unlock(store, ID, "costly")).masterKey, MASTER);
  const first = performance.now() - t0;
  t0 = performance.now();
  assert.deepEqual((await unlock(store, ID, "costly")).masterKey, MASTER);
  const again = performance.now() - t0;
  assert.ok(first > 30, `the first unlock ran Argon2id (${first.toFixed(0)} ms)`);
  assert.ok(
    again < first / 5,
    `the second did not (${again.toFixed(1)} ms, first ${first.toFixed(0)} ms)`,
  );
  // A wrong passphrase is not remembered as right, and a removed slot opens nothing.
  await assert.rejects(unlock(store, ID, "other"), PassphraseError);
  for await (const f of store.list("key")) await store.remove({ kind: "key", name: f.name });
  await assert.rejects(unlock(store, ID, "costly"), PassphraseError);
});
