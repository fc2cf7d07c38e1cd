import assert from "node:assert/strict";
import {
  deriveKey,
  encodeKeyFile,
  type KdfParams,
  parseKeyFile,
  unwrapMasterKey,
  wrapMasterKey,
  WrongPassphrase,
} from "./key_file.ts";
import { toHex } from "./hash.ts";

const REPO = "ab".repeat(32);
const OTHER = "cd".repeat(32);
/** A cheap KDF so that the tests run fast; the default is tested once. */
const FAST = { memoryKiB: 64, iterations: 1, parallelism: 1 };
const master = () => crypto.getRandomValues(new Uint8Array(64));

Deno.test("wrapMasterKey then unwrapMasterKey returns the master key through the file's bytes", async () => {
  const key = master();
  const f = await wrapMasterKey(key, "correct horse", REPO, { kdf: FAST, label: "dr-site" });
  const back = parseKeyFile(encodeKeyFile(f));
  assert.equal(back.label, "dr-site");
  assert.equal(back.repository, REPO);
  assert.deepEqual(back.kdf, f.kdf);
  assert.deepEqual(await unwrapMasterKey(back, "correct horse"), key);
});

Deno.test("unwrapMasterKey refuses a wrong passphrase and a key file moved to another repository", async () => {
  const f = await wrapMasterKey(master(), "correct horse", REPO, { kdf: FAST });
  await assert.rejects(unwrapMasterKey(f, "correct hors"), WrongPassphrase);
  await assert.rejects(
    unwrapMasterKey({ ...f, repository: OTHER }, "correct horse"),
    WrongPassphrase,
  );
  const e = await unwrapMasterKey(f, "s3cr3t-typo").then(() => null, (x: Error) => x);
  assert.ok(e instanceof WrongPassphrase);
  assert.ok(!e.message.includes("s3cr3t"), "the message never repeats the passphrase");
});

Deno.test("wrapMasterKey records the default Argon2id cost and a fresh salt", async () => {
  const key = master();
  const a = await wrapMasterKey(key, "pw", REPO);
  const b = await wrapMasterKey(key, "pw", REPO, { kdf: FAST });
  assert.equal(a.kdf.memoryKiB, 65536);
  assert.equal(a.kdf.iterations, 3);
  assert.equal(a.kdf.parallelism, 1);
  assert.notEqual(toHex(a.kdf.salt), toHex(b.kdf.salt));
  assert.deepEqual(await unwrapMasterKey(a, "pw"), key);
});

Deno.test("deriveKey depends on the passphrase, the salt and every cost parameter", async () => {
  const base: KdfParams = { name: "argon2id", ...FAST, salt: new Uint8Array(16).fill(3) };
  const ref = toHex(await deriveKey("pw", base));
  const variants: KdfParams[] = [
    { ...base, salt: new Uint8Array(16).fill(4) },
    { ...base, memoryKiB: 128 },
    { ...base, iterations: 2 },
    { ...base, parallelism: 2 },
  ];
  for (const v of variants) assert.notEqual(toHex(await deriveKey("pw", v)), ref);
  assert.notEqual(toHex(await deriveKey("pw2", base)), ref);
  // Unicode passphrases are normalized (NFC): the two spellings of "é" are one passphrase.
  assert.equal(
    toHex(await deriveKey("caf\u00e9", base)),
    toHex(await deriveKey("cafe\u0301", base)),
  );
});

Deno.test("parseKeyFile names what is wrong in a damaged or foreign file", async () => {
  const good = JSON.parse(
    new TextDecoder().decode(
      encodeKeyFile(await wrapMasterKey(master(), "pw", REPO, { kdf: FAST })),
    ),
  );
  const bad = (patch: Record<string, unknown>) =>
    new TextEncoder().encode(JSON.stringify({ ...good, ...patch }));
  assert.throws(() => parseKeyFile(new TextEncoder().encode("{")), /not UTF-8 JSON/);
  assert.throws(() => parseKeyFile(bad({ format: "x" })), /not a bendsave key file/);
  assert.throws(() => parseKeyFile(bad({ version: 2 })), /newer than this bendsave reads/);
  assert.throws(() => parseKeyFile(bad({ repository: "xyz" })), /repository id/);
  assert.throws(() => parseKeyFile(bad({ kdf: { ...good.kdf, name: "scrypt" } })), /KDF "scrypt"/);
  assert.throws(
    () => parseKeyFile(bad({ kdf: { ...good.kdf, memoryKiB: 2 ** 40 } })),
    /kdf.memoryKiB must be an integer/,
  );
  assert.throws(() => parseKeyFile(bad({ wrapped: "@@@@" })), /wrapped is not base64/);
});

Deno.test("wrapMasterKey refuses an empty passphrase and a key of the wrong length", async () => {
  await assert.rejects(wrapMasterKey(master(), "", REPO, { kdf: FAST }), TypeError);
  await assert.rejects(wrapMasterKey(new Uint8Array(32), "pw", REPO, { kdf: FAST }), RangeError);
});
