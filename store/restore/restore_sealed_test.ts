import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { MemStore } from "../drivers/mem.ts";
import { backup } from "../backup/backup.ts";
import { Repository } from "../repository.ts";
import { RestoreIncomplete } from "../errors.ts";
import { passphraseSource, setPassphraseSource } from "../passphrase_source.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { randomBytes, tempDir, textBytes } from "../../testing/mod.ts";
import { restore } from "./restore.ts";
import { damageFirstBlock } from "./_damage_test_helper.ts";

const CHEAP = { memoryKiB: 64, iterations: 1, parallelism: 1 };

/** An encrypted repository holding a small file, a large one (written by every lane) and another. */
async function fixture(dir: string) {
  const src = path.join(dir, "src");
  fs.mkdirSync(src);
  const files = new Map<string, Uint8Array>([
    ["one", textBytes(30_000, 1)],
    ["large", randomBytes(20 << 20, 2)],
    ["three", textBytes(50_000, 3)],
  ]);
  for (const [name, data] of files) fs.writeFileSync(path.join(src, name), data);
  const store = new MemStore();
  const r = await backup(store, dirSource(src), { init: { passphrase: "p", kdf: CHEAP } });
  return { store, files, manifest: r.name };
}

/** Runs `fn` with the passphrase source answering "p". */
async function withPassphrase<T>(fn: () => Promise<T>): Promise<T> {
  const before = passphraseSource();
  setPassphraseSource(() => Promise.resolve("p"));
  try {
    return await fn();
  } finally {
    setPassphraseSource(before);
  }
}

for (const workers of [0, 2]) {
  Deno.test(`restore of an encrypted repository into a directory is byte for byte, a large file on every lane too (workers ${workers})`, async () => {
    await using t = await tempDir();
    const f = await fixture(t.dir);
    const out = path.join(t.dir, "out");
    const r = await withPassphrase(() => restore(f.store, out, { workers }));
    assert.equal(r.filesWritten, 3);
    for (const [name, data] of f.files) {
      assert.ok(Buffer.compare(fs.readFileSync(path.join(out, name)), data) === 0, name);
    }
  });
}

for (const workers of [0, 2]) {
  Deno.test(`restore of an encrypted repository leaves out a file whose sealed block does not authenticate, and restores the others (${workers} writer threads)`, async () => {
    await using t = await tempDir();
    const f = await fixture(t.dir);
    const repo = await withPassphrase(() => Repository.open(f.store));
    await damageFirstBlock(repo, f.manifest, "three", 20, 0x01);
    const out = path.join(t.dir, "out");
    const e = await withPassphrase(() => restore(f.store, out, { workers })).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(e instanceof RestoreIncomplete, String(e));
    assert.deepEqual(e.failed.map((x) => x.path), ["three"]);
    assert.match(
      e.failed[0]!.message,
      /needed by file three does not authenticate: it is damaged.*nothing was written/,
    );
    assert.equal(fs.existsSync(path.join(out, "three")), false);
    for (const name of ["one", "large"]) {
      assert.ok(Buffer.compare(fs.readFileSync(path.join(out, name)), f.files.get(name)!) === 0);
    }
    assert.deepEqual(fs.readdirSync(out).sort(), ["large", "one"], "no temporary file is left");
  });
}
