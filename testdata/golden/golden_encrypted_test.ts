/**
 * The format 2.0 golden encrypted repository (`testdata/golden/v2.0-encrypted/`,
 * written once by make_golden_encrypted.ts, never regenerated) must restore
 * byte for byte with its test passphrase, verify clean with and without it,
 * hold none of its source's text, and refuse a wrong passphrase.
 *
 * The fixture is never written to: the test copies `repo/` first.
 *
 * @module
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FsStore } from "../../store/drivers/fs.ts";
import { restore } from "../../store/restore/restore.ts";
import { verify } from "../../store/verify.ts";
import { Repository } from "../../store/repository.ts";
import { PassphraseError } from "../../store/errors.ts";
import { describe, type EncryptedEntry, GOLDEN_PASSPHRASE } from "./make_golden_encrypted.ts";

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), "v2.0-encrypted");
const EXPECTED: { formatVersion: number; manifest: string; entries: EncryptedEntry[] } = JSON
  .parse(fs.readFileSync(path.join(FIXTURE, "expected.json"), "utf8"));

Deno.test("golden v2.0-encrypted restores byte for byte with its passphrase", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "golden-enc-test-"));
  try {
    const repoDir = path.join(tmp, "repo");
    fs.cpSync(path.join(FIXTURE, "repo"), repoDir, { recursive: true });
    const readme = fs.readFileSync(path.join(FIXTURE, "README.md"), "utf8");
    assert.ok(readme.includes(GOLDEN_PASSPHRASE), "the README gives the test passphrase");
    for (const f of fs.readdirSync(repoDir, { recursive: true }) as string[]) {
      const p = path.join(repoDir, f);
      if (!fs.statSync(p).isFile() || f === "bendsave.md") continue;
      assert.equal(fs.readFileSync(p).indexOf("GOLDEN-ENCRYPTED"), -1, `plaintext in ${f}`);
    }
    const store = await FsStore.open(repoDir, { create: false });
    await assert.rejects(
      Repository.open(store, { passphrase: () => Promise.resolve("not it") }),
      PassphraseError,
    );
    const repository = await Repository.open(store, {
      passphrase: () => Promise.resolve(GOLDEN_PASSPHRASE),
    });
    assert.equal(repository.config.version, EXPECTED.formatVersion);
    const target = path.join(tmp, "out");
    await restore(store, target, { workers: 0, repository });
    assert.deepEqual(describe(target), EXPECTED.entries);

    const { setPassphraseSource } = await import("../../store/keys.ts");
    setPassphraseSource(() => Promise.resolve(GOLDEN_PASSPHRASE));
    try {
      const report = await verify(store, { readData: true });
      assert.equal(report.ok, true, JSON.stringify(report.problems));
      assert.equal(report.keyless, undefined);
      assert.ok(report.checked.files >= 4);
    } finally {
      setPassphraseSource(() => Promise.resolve(null));
    }
    const keyless = await verify(store, { readData: true });
    assert.equal(keyless.ok, true, JSON.stringify(keyless.problems));
    assert.equal(keyless.keyless, true);
    assert.equal(keyless.checked.packsRead, keyless.checked.packs);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
