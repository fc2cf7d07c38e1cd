/**
 * The WAL archive of an encrypted repository (FORMAT.md 21.11): sealed
 * records, keyed ids, blocks sealed like every block; keyless verify.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { Buffer } from "node:buffer";
import path from "node:path";
import { FsStore } from "./drivers/fs.ts";
import { IntegrityError, PassphraseError } from "./errors.ts";
import { Repository } from "./repository.ts";
import { passphraseSource, setPassphraseSource } from "./passphrase_source.ts";
import {
  fetchWal,
  listWal,
  pushWal,
  WalConflict,
  walLiveBlocks,
  WalNotArchived,
} from "./wal_archive.ts";
import { vacuum } from "./vacuum.ts";
import { verify } from "./verify.ts";
import { filesUnder, tempDir } from "../testing/mod.ts";
import { makeDataDir, makeSegment, TEST_SYSTEM_ID } from "../testing/wal_segment.ts";
import { sha256, sha256Hex, toHex } from "../formats/hash.ts";
import { keyedId } from "../formats/master_key.ts";
import { decodeWalRecord, encodeWalRecord } from "../formats/wal.ts";
import { ENGINE_JOBS } from "./worker_jobs.ts";
import { WorkerPool } from "./worker_pool.ts";

const MiB = 1 << 20;
const PASS = "wal test passphrase";
const CHEAP = { memoryKiB: 64, iterations: 1, parallelism: 1 };
const withKey = { passphrase: () => Promise.resolve(PASS) };
const noKey = { passphrase: () => Promise.resolve(null) };
const MARKER = new TextEncoder().encode("MARKER-wal-plaintext-4c1e");

/** An encrypted repository, a data directory with pg_control, a place to fetch to. */
async function setup(dir: string) {
  const repoDir = path.join(dir, "repo");
  const store = await FsStore.open(repoDir, { create: true });
  await Repository.init(store, { packSize: MiB, passphrase: PASS, kdf: CHEAP });
  const pgData = makeDataDir(path.join(dir, "data"));
  const out = path.join(dir, "restored");
  fs.mkdirSync(out);
  return { store, repoDir, pgData, out, open: () => Repository.open(store, withKey) };
}

/** A segment with the marker written through its used part, in pg_wal. */
function markedSegment(pgData: string, segno: number, segmentSize = 16 * MiB) {
  const seg = makeSegment({ segno, used: 2 * MiB, segmentSize });
  for (let at = 64; at + MARKER.length < 2 * MiB; at += 4096) seg.data.set(MARKER, at);
  const file = path.join(pgData, "pg_wal", seg.name);
  fs.writeFileSync(file, seg.data);
  return { ...seg, file };
}

/** Every file of the repository but locks, with its size. */
function repoFiles(repoDir: string): string[] {
  return filesUnder(repoDir).filter((f) => !f.startsWith("locks/")).map((f) =>
    `${f}:${fs.statSync(path.join(repoDir, f)).size}`
  );
}

Deno.test("pushWal and fetchWal on an encrypted repository: sealed records, keyed ids, no plaintext, byte for byte", async () => {
  await using t = await tempDir();
  const { store, repoDir, pgData, out, open } = await setup(t.dir);
  const one = markedSegment(pgData, 3); // one block
  const cut = markedSegment(pgData, 2, 32 * MiB); // cut by the chunker: four blocks
  const history = path.join(pgData, "pg_wal", "00000002.history");
  fs.writeFileSync(history, "1\t0/3000000\tMARKER-wal-plaintext-4c1e\n");
  const pushed = [];
  for (const file of [one.file, cut.file, history]) {
    pushed.push(await pushWal(store, file, { pgData, ...withKey }));
  }
  assert.deepEqual(pushed.map((r) => [r.status, r.blocks]), [
    ["archived", 1],
    ["archived", 4],
    ["archived", 1],
  ]);
  // The result's SHA-256 is the plain one (the async pusher's spool compares it with the file).
  assert.equal(pushed[0]!.sha256, sha256Hex(one.data));
  assert.equal(pushed[1]!.sha256, sha256Hex(cut.data));

  const marker = Buffer.from(MARKER);
  for (const f of filesUnder(repoDir)) {
    if (f === "bendsave.md") continue;
    assert.equal(fs.readFileSync(path.join(repoDir, f)).indexOf(marker), -1, `marker in ${f}`);
  }
  const recordFile = path.join(repoDir, "wal", TEST_SYSTEM_ID, one.name);
  const stored = fs.readFileSync(recordFile);
  assert.deepEqual([...stored.subarray(0, 8)], [0x42, 0x53, 0x57, 0x4c, 2, 0, 0, 0]);
  assert.throws(() => decodeWalRecord(stored), /sealed record/);

  const repo = await open();
  const records = await listWal(repo, { systemId: TEST_SYSTEM_ID });
  assert.deepEqual(records.map((r) => r.name), [cut.name, one.name, "00000002.history"]);
  const idKey = repo.crypto!.key.idKey;
  for (const [r, data] of [[records[1]!, one.data], [records[0]!, cut.data]] as const) {
    assert.equal(toHex(r.sha256), toHex(keyedId(idKey, data)), "the record holds the keyed id");
    assert.notEqual(toHex(r.sha256), sha256Hex(data));
  }
  assert.deepEqual(records[1]!.blocks, [records[1]!.sha256], "one block: its id is the file's");
  await repo.loadIndex();
  for (const r of records) for (const b of r.blocks) assert.ok(repo.index.has(b));

  for (
    const [name, data] of [
      [one.name, one.data],
      [cut.name, cut.data],
      ["00000002.history", fs.readFileSync(history)],
    ] as const
  ) {
    const dest = path.join(out, name);
    const f = await fetchWal(store, name, dest, { pgData, ...withKey });
    assert.equal(f.sha256, sha256Hex(data));
    assert.deepEqual(fs.readFileSync(dest), Buffer.from(data));
  }
});

Deno.test("pushWal on an encrypted repository: the same content again succeeds, other content is refused (keyed ids compared)", async () => {
  await using t = await tempDir();
  const { store, repoDir, pgData, out } = await setup(t.dir);
  const seg = markedSegment(pgData, 7);
  await pushWal(store, seg.file, { pgData, ...withKey });
  const before = repoFiles(repoDir);
  const again = await pushWal(store, seg.file, { pgData, ...withKey });
  assert.equal(again.status, "already-archived");
  assert.equal(again.sha256, sha256Hex(seg.data));
  assert.deepEqual(repoFiles(repoDir), before);
  fs.writeFileSync(seg.file, makeSegment({ segno: 7, seed: 99 }).data);
  await assert.rejects(
    pushWal(store, seg.file, { pgData, ...withKey }),
    (e: Error) =>
      e instanceof WalConflict && /already archived with other content/.test(e.message) &&
      /keyed id/.test(e.message),
  );
  assert.deepEqual(repoFiles(repoDir), before);
  await fetchWal(store, seg.name, path.join(out, "x"), { pgData, ...withKey });
  assert.equal(sha256Hex(fs.readFileSync(path.join(out, "x"))), sha256Hex(seg.data));
});

Deno.test("pushWal and fetchWal on an encrypted repository without its passphrase: PassphraseError, nothing written", async () => {
  await using t = await tempDir();
  const { store, repoDir, pgData, out } = await setup(t.dir);
  const seg = markedSegment(pgData, 4);
  await pushWal(store, seg.file, { pgData, ...withKey });
  const before = repoFiles(repoDir);
  const other = markedSegment(pgData, 5);
  await assert.rejects(pushWal(store, other.file, { pgData, ...noKey }), PassphraseError);
  await assert.rejects(
    pushWal(store, other.file, { pgData, passphrase: () => Promise.resolve("wrong") }),
    (e: Error) => e instanceof PassphraseError && !e.message.includes("wrong"),
  );
  await assert.rejects(
    fetchWal(store, seg.name, path.join(out, "x"), { pgData, ...noKey }),
    PassphraseError,
  );
  await assert.rejects(
    listWal(await Repository.open(store, { ...noKey, keyOptional: true })),
    PassphraseError,
  );
  assert.deepEqual(repoFiles(repoDir), before);
  assert.deepEqual(fs.readdirSync(out), []);
});

Deno.test("a WAL record of an encrypted repository moved to another name, or a plain one put there, is damaged", async () => {
  await using t = await tempDir();
  const { store, repoDir, pgData, out, open } = await setup(t.dir);
  const seg = markedSegment(pgData, 1);
  await pushWal(store, seg.file, { pgData, ...withKey });
  const dir = path.join(repoDir, "wal", TEST_SYSTEM_ID);
  const [real] = await listWal(await open(), { systemId: TEST_SYSTEM_ID });
  // The sealed body is bound to its name: the record of segment 1 passed off as segment 2.
  const moved = "000000010000000000000002";
  fs.copyFileSync(path.join(dir, seg.name), path.join(dir, moved));
  await assert.rejects(
    fetchWal(store, moved, path.join(out, moved), { pgData, ...withKey }),
    (e: Error) => e instanceof IntegrityError && /does not authenticate/.test(e.message),
  );
  // A plain (version 1) record naming the real blocks is refused in an encrypted repository.
  const forged = "000000010000000000000003";
  fs.writeFileSync(path.join(dir, forged), encodeWalRecord({ ...real!, name: forged }));
  await assert.rejects(
    fetchWal(store, forged, path.join(out, forged), { pgData, ...withKey }),
    (e: Error) => e instanceof IntegrityError && /records are version 2/.test(e.message),
  );
  assert.deepEqual(fs.readdirSync(out), []);
  const damaged: string[] = [];
  await listWal(await open(), { onDamaged: (name) => damaged.push(name) });
  assert.deepEqual(damaged, [`${TEST_SYSTEM_ID}/${moved}`, `${TEST_SYSTEM_ID}/${forged}`]);
});

Deno.test("verify of an encrypted WAL archive: keyless by hashes, keyed through the blocks; vacuum keeps its blocks", async () => {
  await using t = await tempDir();
  const { store, repoDir, pgData, out, open } = await setup(t.dir);
  const segs = [1, 2, 3].map((n) => markedSegment(pgData, n));
  for (const s of segs) await pushWal(store, s.file, { pgData, ...withKey });
  const previous = passphraseSource();
  try {
    setPassphraseSource(() => Promise.resolve(PASS));
    const keyed = await verify(store);
    assert.equal(keyed.ok, true, JSON.stringify(keyed.problems));
    assert.equal(keyed.checked.walFiles, 3);
    assert.equal(keyed.keyless, undefined);
    assert.equal((await walLiveBlocks(await open())).length, 3);
    const v = await vacuum(store, { keepLast: 1 });
    assert.deepEqual([v.deletePacks, v.repackPacks], [[], []]);
    for (const s of segs) {
      await fetchWal(store, s.name, path.join(out, s.name), { pgData });
      assert.equal(sha256Hex(fs.readFileSync(path.join(out, s.name))), sha256Hex(s.data));
    }

    setPassphraseSource(() => Promise.resolve(null));
    const keyless = await verify(store);
    assert.equal(keyless.keyless, true);
    assert.equal(keyless.ok, true, JSON.stringify(keyless.problems));
    assert.equal(keyless.checked.walFiles, 3);
    // A flipped byte in a record: keyless verify finds it by the envelope's checksum.
    const rec = path.join(repoDir, "wal", TEST_SYSTEM_ID, segs[1]!.name);
    const good = fs.readFileSync(rec);
    const bad = Buffer.from(good);
    bad[20] = bad[20]! ^ 1;
    fs.writeFileSync(rec, bad);
    const found = await verify(store);
    assert.deepEqual(found.problems.map((p) => [p.kind, p.id]), [
      ["wal", `${TEST_SYSTEM_ID}/${segs[1]!.name}`],
    ]);
    assert.match(found.problems[0]!.message, /checksum mismatch/);
    // The same flip with the checksum made right again: only the key finds it.
    const resummed = Buffer.concat([
      bad.subarray(0, bad.length - 32),
      sha256(bad.subarray(0, bad.length - 32)),
    ]);
    fs.writeFileSync(rec, resummed);
    assert.equal((await verify(store)).ok, true, "keyless verify checks hashes only");
    setPassphraseSource(() => Promise.resolve(PASS));
    const authenticated = await verify(store);
    assert.deepEqual(authenticated.problems.map((p) => [p.kind, p.id]), [
      ["wal", `${TEST_SYSTEM_ID}/${segs[1]!.name}`],
    ]);
    assert.match(authenticated.problems[0]!.message, /does not authenticate/);
    await assert.rejects(vacuum(store, { keepLast: 1 }), IntegrityError);
  } finally {
    setPassphraseSource(previous);
  }
});

Deno.test("pushWal on an encrypted repository with encodeFile on a worker thread seals there, and the file reads back", async () => {
  await using t = await tempDir();
  const { store, pgData, out, open } = await setup(t.dir);
  const pool = await WorkerPool.start(ENGINE_JOBS, { workers: 1 });
  try {
    const seg = markedSegment(pgData, 6);
    let keyed = false;
    const r = await pushWal(store, seg.file, {
      pgData,
      ...withKey,
      encodeFile: (input) => {
        keyed = input.masterKey !== undefined;
        return pool.run("wal.encode", input);
      },
    });
    assert.equal(keyed, true, "the push hands the worker the master key");
    assert.equal(r.sha256, sha256Hex(seg.data));
    const [rec] = await listWal(await open());
    assert.equal(toHex(rec!.sha256), toHex(keyedId((await open()).crypto!.key.idKey, seg.data)));
    const dest = path.join(out, seg.name);
    await fetchWal(store, seg.name, dest, { pgData, ...withKey });
    assert.equal(sha256Hex(fs.readFileSync(dest)), sha256Hex(seg.data));
  } finally {
    await pool.close();
  }
});

Deno.test("fetchWal of a file an encrypted archive does not hold answers 'not archived' without asking for the passphrase", async () => {
  await using t = await tempDir();
  const { store, pgData, out } = await setup(t.dir);
  const seg = markedSegment(pgData, 4);
  await pushWal(store, seg.file, { pgData, ...withKey });
  let asked = 0;
  const counting = {
    passphrase: () => {
      asked++;
      return Promise.resolve(PASS);
    },
  };
  // Recovery probes the next timeline's history file at every start: no key derivation for it.
  await assert.rejects(
    fetchWal(store, "00000002.history", path.join(out, "h"), { pgData, ...counting }),
    WalNotArchived,
  );
  assert.equal(asked, 0);
  const dest = path.join(out, seg.name);
  await fetchWal(store, seg.name, dest, { pgData, ...counting });
  assert.equal(asked, 1);
  assert.equal(sha256Hex(fs.readFileSync(dest)), sha256Hex(seg.data));
  assert.deepEqual(fs.readdirSync(out), [seg.name]);
  // A path that holds no repository is never "not archived".
  await assert.rejects(
    fetchWal(
      await FsStore.open(path.join(t.dir, "empty"), { create: true }),
      "00000002.history",
      path.join(out, "h"),
      {
        pgData,
        ...counting,
      },
    ),
    (e: Error) => !(e instanceof WalNotArchived),
  );
});
