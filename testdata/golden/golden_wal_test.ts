/**
 * The format 1.2 golden WAL archive (`testdata/golden/v1.2-wal/`, written
 * once by make_golden_wal.ts, never regenerated) must list with the recorded
 * fields and fetch every file byte for byte, and verify clean; so must the
 * format 2.0 encrypted one (`v2.0-wal/`, make_golden_wal.ts --encrypted)
 * with its test passphrase, and verify clean without it too.
 *
 * The fixture is never written to: the test copies `repo/` first.
 *
 * @module
 */
import { Repository } from "../../store/repository.ts";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { FsStore } from "../../store/drivers/fs.ts";
import { StagedStore } from "../../store/drivers/staged.ts";
import { verify } from "../../store/verify.ts";
import { fetchWal, listWal } from "../../store/wal_archive.ts";
import { PassphraseError } from "../../store/errors.ts";
import { passphraseSource, setPassphraseSource } from "../../store/passphrase_source.ts";

interface WalEntry {
  systemId: string;
  name: string;
  size: number;
  sha256: string;
  blocks: number;
  pushTimeMs: number;
  timeline: number;
  startLsn: string;
  segmentSize: number;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE = path.join(HERE, "v1.2-wal");

function sha256File(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const file = path.join(e.parentPath, e.name);
    out.set(path.relative(dir, file), sha256File(file));
  }
  return out;
}

Deno.test("golden v1.2-wal archive lists its records and fetches every file byte for byte", async () => {
  const expected = JSON.parse(fs.readFileSync(path.join(FIXTURE, "expected.json"), "utf8")) as {
    formatMinor: number;
    entries: WalEntry[];
  };
  assert.equal(expected.formatMinor, 2);
  const before = snapshot(path.join(FIXTURE, "repo"));
  const work = await Deno.makeTempDir({ prefix: "bendsave-golden-wal-" });
  try {
    const repo = path.join(work, "repo");
    fs.cpSync(path.join(FIXTURE, "repo"), repo, { recursive: true });
    const out = path.join(work, "out");
    fs.mkdirSync(out);
    for (const store of [await FsStore.open(repo), await StagedStore.open([repo])]) {
      const records = await listWal(await Repository.open(store));
      assert.deepEqual(
        records.map((r) => ({
          systemId: r.systemId,
          name: r.name,
          size: r.size,
          sha256: Buffer.from(r.sha256).toString("hex"),
          blocks: r.blocks.length,
          pushTimeMs: r.pushTimeMs,
          timeline: r.timeline,
          startLsn: r.startLsn.toString(),
          segmentSize: r.segmentSize,
        })),
        expected.entries,
        store.capabilities.name,
      );
      for (const e of expected.entries) {
        const dest = path.join(out, `${store.capabilities.name}-${e.systemId}-${e.name}`);
        const f = await fetchWal(store, e.name, dest, { systemId: e.systemId });
        assert.equal(f.size, e.size);
        assert.equal(sha256File(dest), e.sha256, `${e.systemId}/${e.name}`);
      }
    }
    const report = await verify(await FsStore.open(repo), { readData: true });
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.equal(report.checked.walFiles, expected.entries.length);
    assert.deepEqual(report.reclaimable, { packs: 0, bytes: 0 });
  } finally {
    await Deno.remove(work, { recursive: true });
  }
  assert.deepEqual(snapshot(path.join(FIXTURE, "repo")), before, "the fixture is unchanged");
});

const ENCRYPTED = path.join(HERE, "v2.0-wal");
/** The fixture's test passphrase (v2.0-wal/README.md). */
const ENCRYPTED_PASSPHRASE = "golden WAL fixture passphrase v2.0";

Deno.test("golden v2.0-wal encrypted archive lists its sealed records and fetches every file byte for byte", async () => {
  const expected = JSON.parse(fs.readFileSync(path.join(ENCRYPTED, "expected.json"), "utf8")) as {
    formatVersion: number;
    entries: (WalEntry & { id: string })[];
  };
  assert.equal(expected.formatVersion, 2);
  assert.ok(
    fs.readFileSync(path.join(ENCRYPTED, "README.md"), "utf8").includes(ENCRYPTED_PASSPHRASE),
  );
  const before = snapshot(path.join(ENCRYPTED, "repo"));
  const passphrase = () => Promise.resolve(ENCRYPTED_PASSPHRASE);
  const work = await Deno.makeTempDir({ prefix: "bendsave-golden-wal-enc-" });
  try {
    const repo = path.join(work, "repo");
    fs.cpSync(path.join(ENCRYPTED, "repo"), repo, { recursive: true });
    for (const e of expected.entries) {
      const record = fs.readFileSync(path.join(repo, "wal", e.systemId, e.name));
      assert.equal(record[4], 2, `${e.name} is a sealed record`);
    }
    const out = path.join(work, "out");
    fs.mkdirSync(out);
    for (const store of [await FsStore.open(repo), await StagedStore.open([repo])]) {
      const records = await listWal(await Repository.open(store, { passphrase }));
      assert.deepEqual(
        records.map((r) => ({
          systemId: r.systemId,
          name: r.name,
          size: r.size,
          id: Buffer.from(r.sha256).toString("hex"),
          blocks: r.blocks.length,
          pushTimeMs: r.pushTimeMs,
          timeline: r.timeline,
          startLsn: r.startLsn.toString(),
          segmentSize: r.segmentSize,
        })),
        expected.entries.map(({ sha256: _, ...e }) => e),
        store.capabilities.name,
      );
      for (const e of expected.entries) {
        assert.notEqual(e.id, e.sha256, "the record holds the keyed id, not the SHA-256");
        const dest = path.join(out, `${store.capabilities.name}-${e.systemId}-${e.name}`);
        const f = await fetchWal(store, e.name, dest, { systemId: e.systemId, passphrase });
        assert.equal(f.size, e.size);
        assert.equal(f.sha256, e.sha256);
        assert.equal(sha256File(dest), e.sha256, `${e.systemId}/${e.name}`);
      }
      await assert.rejects(
        fetchWal(store, expected.entries[0]!.name, path.join(out, "x"), {
          systemId: expected.entries[0]!.systemId,
          passphrase: () => Promise.resolve(null),
        }),
        PassphraseError,
      );
    }
    const previous = passphraseSource();
    try {
      setPassphraseSource(passphrase);
      const keyed = await verify(await FsStore.open(repo), { readData: true });
      assert.equal(keyed.ok, true, JSON.stringify(keyed.problems));
      assert.equal(keyed.checked.walFiles, expected.entries.length);
      setPassphraseSource(() => Promise.resolve(null));
      const keyless = await verify(await FsStore.open(repo), { readData: true });
      assert.equal(keyless.keyless, true);
      assert.equal(keyless.ok, true, JSON.stringify(keyless.problems));
      assert.equal(keyless.checked.walFiles, expected.entries.length);
    } finally {
      setPassphraseSource(previous);
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
  assert.deepEqual(snapshot(path.join(ENCRYPTED, "repo")), before, "the fixture is unchanged");
});
