import assert from "node:assert/strict";
import fs from "node:fs";
import { Buffer } from "node:buffer";
import path from "node:path";
import { FsStore } from "./drivers/fs.ts";
import { StagedStore } from "./drivers/staged.ts";
import { IntegrityError, InvalidInput, LockedError } from "./errors.ts";
import { RepositoryLock } from "./lock.ts";
import { Repository } from "./repository.ts";
import {
  fetchWal,
  listWal,
  pushWal,
  walArchived,
  walBlockLengths,
  walCompression,
  WalConflict,
  walLiveBlocks,
  WalNotArchived,
} from "./wal_archive.ts";
import { vacuum } from "./vacuum.ts";
import { verify } from "./verify.ts";
import { filesUnder, tempDir } from "../testing/mod.ts";
import { makeDataDir, makeSegment, TEST_SYSTEM_ID } from "../testing/wal_segment.ts";
import { sha256, sha256Hex, toHex } from "../formats/hash.ts";
import { DEFAULT_FIXED } from "../formats/chunker.ts";
import { ENGINE_JOBS } from "./worker_jobs.ts";
import { WorkerPool } from "./worker_pool.ts";

const MiB = 1 << 20;

/** A repository, a data directory with pg_control, and a place to fetch to. */
async function setup(dir: string) {
  const repoDir = path.join(dir, "repo");
  const store = await FsStore.open(repoDir, { create: true });
  await Repository.init(store, { packSize: MiB });
  const pgData = makeDataDir(path.join(dir, "data"));
  const out = path.join(dir, "restored");
  fs.mkdirSync(out);
  return { store, repoDir, pgData, out };
}

/** Writes a segment into pg_wal and returns its path. */
function writeSegment(pgData: string, seg: { name: string; data: Uint8Array }): string {
  const file = path.join(pgData, "pg_wal", seg.name);
  fs.writeFileSync(file, seg.data);
  return file;
}

/** Every file of the repository but locks, with its size. */
function repoFiles(repoDir: string): string[] {
  return filesUnder(repoDir).filter((f) => !f.startsWith("locks/")).map((f) =>
    `${f}:${fs.statSync(path.join(repoDir, f)).size}`
  );
}

Deno.test("pushWal and fetchWal round-trip a segment byte for byte", async () => {
  await using t = await tempDir();
  const { store, pgData, out } = await setup(t.dir);
  const seg = makeSegment({ segno: 3, used: 3 * MiB });
  const r = await pushWal(store, writeSegment(pgData, seg), { pgData });
  assert.equal(r.status, "archived");
  assert.equal(r.systemId, TEST_SYSTEM_ID);
  assert.equal(r.size, 16 * MiB);
  assert.ok(r.newBlocks >= 1);
  assert.ok(r.packBytes < 4 * MiB, `zeros compress: ${r.packBytes}`);
  assert.ok(await walArchived(store, TEST_SYSTEM_ID, seg.name));
  assert.equal(await walArchived(store, TEST_SYSTEM_ID, "000000010000000000000004"), false);

  const dest = path.join(out, "RECOVERYXLOG");
  const f = await fetchWal(store, seg.name, dest, { pgData });
  assert.equal(f.size, 16 * MiB);
  assert.equal(sha256Hex(fs.readFileSync(dest)), sha256Hex(seg.data));
  assert.deepEqual(fs.readdirSync(out), ["RECOVERYXLOG"], "no temporary file is left");

  const [rec] = await listWal(await Repository.open(store), { systemId: TEST_SYSTEM_ID });
  assert.equal(rec?.name, seg.name);
  assert.equal(rec?.startLsn, 3n * 16n * BigInt(MiB));
  assert.equal(rec?.segmentSize, 16 * MiB);
  assert.equal(rec?.timeline, 1);
  assert.equal(sha256Hex(seg.data), Buffer.from(rec!.sha256).toString("hex"));
  assert.deepEqual(await listWal(await Repository.open(store), { systemId: "42" }), []);
});

Deno.test("pushWal archives history and backup files under pg_control's system identifier", async () => {
  await using t = await tempDir();
  const { store, pgData, out } = await setup(t.dir);
  const history = path.join(pgData, "pg_wal", "00000002.history");
  fs.writeFileSync(history, "1\t0/3000000\tno recovery target specified\n");
  const backup = path.join(pgData, "pg_wal", "000000010000000000000002.00000028.backup");
  fs.writeFileSync(
    backup,
    "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTOP WAL LOCATION: 0/2000100\n",
  );
  assert.equal((await pushWal(store, history, { pgData })).status, "archived");
  assert.equal((await pushWal(store, backup, { pgData })).status, "archived");
  const records = await listWal(await Repository.open(store));
  assert.deepEqual(records.map((r) => r.name), [
    "000000010000000000000002.00000028.backup",
    "00000002.history",
  ]);
  assert.equal(records[0]!.startLsn, 0x2000028n);
  assert.equal(records[1]!.timeline, 2);
  // A fetch without pg_control finds the archive's only system.
  const dest = path.join(out, "00000002.history");
  await fetchWal(store, "00000002.history", dest, {});
  assert.equal(fs.readFileSync(dest, "utf8"), fs.readFileSync(history, "utf8"));
});

Deno.test("pushWal of the same name and content again succeeds and writes nothing", async () => {
  await using t = await tempDir();
  const { store, repoDir, pgData } = await setup(t.dir);
  const file = writeSegment(pgData, makeSegment({ segno: 7 }));
  await pushWal(store, file, { pgData });
  const before = repoFiles(repoDir);
  const again = await pushWal(store, file, { pgData });
  assert.equal(again.status, "already-archived");
  assert.equal(again.newBlocks, 0);
  assert.deepEqual(repoFiles(repoDir), before);
});

Deno.test("pushWal of the same name with other content is refused and overwrites nothing", async () => {
  await using t = await tempDir();
  const { store, repoDir, pgData, out } = await setup(t.dir);
  const first = makeSegment({ segno: 7, seed: 1 });
  const file = writeSegment(pgData, first);
  await pushWal(store, file, { pgData });
  const before = repoFiles(repoDir);
  fs.writeFileSync(file, makeSegment({ segno: 7, seed: 2 }).data);
  await assert.rejects(
    pushWal(store, file, { pgData }),
    (e: Error) =>
      e instanceof WalConflict && /already archived with other content/.test(e.message) &&
      !e.message.includes("\n"),
  );
  assert.deepEqual(repoFiles(repoDir), before);
  const dest = path.join(out, "x");
  await fetchWal(store, first.name, dest, { pgData });
  assert.equal(sha256Hex(fs.readFileSync(dest)), sha256Hex(first.data));
});

Deno.test("fetchWal of a file the archive lacks throws WalNotArchived and leaves no file", async () => {
  await using t = await tempDir();
  const { store, pgData, out } = await setup(t.dir);
  await pushWal(store, writeSegment(pgData, makeSegment({ segno: 1 })), { pgData });
  const dest = path.join(out, "RECOVERYXLOG");
  await assert.rejects(
    fetchWal(store, "000000010000000000000002", dest, { pgData }),
    WalNotArchived,
  );
  await assert.rejects(fetchWal(store, "00000002.history", dest, { pgData }), WalNotArchived);
  assert.deepEqual(fs.readdirSync(out), []);
});

Deno.test("pushWal refuses a segment of the wrong size or of another system, writing nothing", async () => {
  await using t = await tempDir();
  const { store, repoDir, pgData } = await setup(t.dir);
  const before = repoFiles(repoDir);
  const seg = makeSegment({ segno: 2 });
  const short = path.join(pgData, "pg_wal", seg.name);
  fs.writeFileSync(short, seg.data.subarray(0, 8 * MiB));
  await assert.rejects(pushWal(store, short, { pgData }), /a segment of the wrong size/);
  const other = makeSegment({ segno: 2, systemId: "42" });
  fs.writeFileSync(short, other.data);
  await assert.rejects(
    pushWal(store, short, { pgData }),
    (e: Error) => e instanceof InvalidInput && /belongs to database system 42/.test(e.message),
  );
  // Named as another segment than its header says.
  const moved = path.join(pgData, "pg_wal", "000000010000000000000009");
  fs.writeFileSync(moved, makeSegment({ segno: 2 }).data);
  await assert.rejects(pushWal(store, moved, { pgData }), /not 0\/9000000 as its name says/);
  const notWal = path.join(pgData, "pg_wal", "RECOVERYXLOG");
  fs.writeFileSync(notWal, "x");
  await assert.rejects(pushWal(store, notWal, { pgData }), /is not a WAL file name/);
  assert.deepEqual(repoFiles(repoDir), before);
});

Deno.test("pushWal refuses a read-only (staged) repository before reading anything", async () => {
  await using t = await tempDir();
  const { repoDir, pgData } = await setup(t.dir);
  const staged = await StagedStore.open([repoDir]);
  const file = writeSegment(pgData, makeSegment({ segno: 6 }));
  await assert.rejects(pushWal(staged, file, { pgData }), /read-only \(staged\) repository/);
});

Deno.test("pushWal takes the system identifier from the segment without pg_control, or from --system-id", async () => {
  await using t = await tempDir();
  const { store } = await setup(t.dir);
  const seg = makeSegment({ segno: 4, systemId: "42", segmentSize: MiB });
  const file = path.join(t.dir, seg.name);
  fs.writeFileSync(file, seg.data);
  const cwd = Deno.cwd();
  Deno.chdir(t.dir); // no global/pg_control here
  try {
    assert.equal((await pushWal(store, file)).systemId, "42");
  } finally {
    Deno.chdir(cwd);
  }
  await assert.rejects(pushWal(store, file, { systemId: "43" }), /belongs to database system 42/);
  await assert.rejects(pushWal(store, file, { systemId: "042" }), InvalidInput);
});

Deno.test("pushWal stores a segment of 16 MiB as one block named by the segment's SHA-256, compressed at zstd level 3", async () => {
  await using t = await tempDir();
  const { store, pgData } = await setup(t.dir);
  const a = makeSegment({ segno: 1, used: MiB });
  const ra = await pushWal(store, writeSegment(pgData, a), { pgData });
  assert.equal(ra.blocks, 1);
  assert.equal(ra.newBlocks, 1);
  const repo = await Repository.open(store);
  await repo.loadIndex();
  const id = sha256(a.data);
  assert.equal(ra.sha256, toHex(id));
  assert.ok(repo.index.has(id), "the block's id is the segment's hash");
  // The repository's default is zstd level 1; its WAL is written at level 3.
  assert.equal(repo.config.compression.level, 1);
  assert.deepEqual(walCompression(repo.config.compression), {
    ...repo.config.compression,
    level: 3,
  });
  assert.deepEqual(walCompression({ codec: "zstd", level: 9, minSaving: 0.03 }).level, 9);
  assert.deepEqual(walCompression({ codec: "deflate", level: 1, minSaving: 0.03 }).level, 1);
});

Deno.test("pushWal cuts a segment larger than 16 MiB by the repository's chunker and stores a block the repository holds only once", async () => {
  await using t = await tempDir();
  const { store, pgData } = await setup(t.dir);
  // The same content (zeros) in the last three quarters of two 32 MiB segments (8 MiB blocks).
  const a = makeSegment({ segno: 1, used: MiB, segmentSize: 32 * MiB });
  const b = makeSegment({ segno: 2, used: MiB, segmentSize: 32 * MiB });
  const ra = await pushWal(store, writeSegment(pgData, a), { pgData });
  const rb = await pushWal(store, writeSegment(pgData, b), { pgData });
  assert.equal(ra.blocks, 4);
  assert.equal(rb.blocks, 4);
  assert.equal(ra.newBlocks, 2, "the three zero blocks are one");
  assert.equal(rb.newBlocks, 1, "the zero blocks are stored once");
  assert.deepEqual(walBlockLengths(DEFAULT_FIXED, a.data), [8 * MiB, 8 * MiB, 8 * MiB, 8 * MiB]);
  assert.deepEqual(walBlockLengths(DEFAULT_FIXED, new Uint8Array(0)), []);
});

Deno.test("fetchWal refuses a damaged block and leaves nothing at the destination", async () => {
  await using t = await tempDir();
  const { store, repoDir, pgData, out } = await setup(t.dir);
  const seg = makeSegment({ segno: 5, used: 15 * MiB });
  await pushWal(store, writeSegment(pgData, seg), { pgData });
  const pack = filesUnder(path.join(repoDir, "packs"))[0]!;
  const file = path.join(repoDir, "packs", pack);
  const bytes = fs.readFileSync(file);
  bytes[100] = bytes[100]! ^ 0xff;
  fs.writeFileSync(file, bytes);
  const dest = path.join(out, "RECOVERYXLOG");
  await assert.rejects(fetchWal(store, seg.name, dest, { pgData }), IntegrityError);
  assert.deepEqual(fs.readdirSync(out), []);
});

Deno.test("vacuum keeps every block of archived WAL and verify checks the records", async () => {
  await using t = await tempDir();
  const { store, repoDir, pgData, out } = await setup(t.dir);
  const segs = [1, 2, 3].map((segno) => makeSegment({ segno, used: 2 * MiB }));
  for (const s of segs) await pushWal(store, writeSegment(pgData, s), { pgData });
  assert.equal((await walLiveBlocks(await Repository.open(store))).length, 3); // one block per 16 MiB segment
  const clean = await verify(store);
  assert.equal(clean.ok, true, JSON.stringify(clean.problems));
  assert.equal(clean.checked.walFiles, 3);
  assert.deepEqual(clean.reclaimable, { packs: 0, bytes: 0 });
  const v = await vacuum(store, { keepLast: 1 });
  assert.deepEqual([v.deletePacks, v.repackPacks, v.unindexedPacks], [[], [], []]);
  for (const s of segs) {
    const dest = path.join(out, s.name);
    await fetchWal(store, s.name, dest, { pgData });
    assert.equal(sha256Hex(fs.readFileSync(dest)), sha256Hex(s.data));
  }
  // A garbled record is damage that verify names, and vacuum stops on it.
  const rec = path.join(repoDir, "wal", TEST_SYSTEM_ID, segs[1]!.name);
  const bytes = fs.readFileSync(rec);
  fs.writeFileSync(rec, bytes.subarray(0, bytes.length - 1));
  const damaged = await verify(store);
  assert.equal(damaged.ok, false);
  assert.deepEqual(damaged.problems.map((p) => [p.kind, p.id]), [
    ["wal", `${TEST_SYSTEM_ID}/${segs[1]!.name}`],
  ]);
  await assert.rejects(vacuum(store, { keepLast: 1 }), IntegrityError);
});

Deno.test("pushWal of one file by two pushes at once archives it once and both succeed", async () => {
  await using t = await tempDir();
  const { store, repoDir, pgData, out } = await setup(t.dir);
  const seg = makeSegment({ segno: 8, used: 2 * MiB });
  const file = writeSegment(pgData, seg);
  const results = await Promise.all([
    pushWal(store, file, { pgData }),
    pushWal(store, file, { pgData }),
  ]);
  assert.deepEqual(results.map((r) => r.status).sort(), ["already-archived", "archived"]);
  assert.deepEqual(filesUnder(path.join(repoDir, "wal")), [`${TEST_SYSTEM_ID}/${seg.name}`]);
  await fetchWal(store, seg.name, path.join(out, "x"), { pgData });
  assert.equal(sha256Hex(fs.readFileSync(path.join(out, "x"))), sha256Hex(seg.data));
  assert.equal((await verify(store)).ok, true);
});

Deno.test("pushWal waits for a vacuum's exclusive lock, or fails with LockedError past --lock-wait", async () => {
  await using t = await tempDir();
  const { store, pgData } = await setup(t.dir);
  const file = writeSegment(pgData, makeSegment({ segno: 9 }));
  const vacuumLock = await RepositoryLock.acquire(store, "exclusive", { operation: "vacuum" });
  await assert.rejects(pushWal(store, file, { pgData, lockWaitMs: 0 }), LockedError);
  const warnings: string[] = [];
  const pending = pushWal(store, file, {
    pgData,
    lockWaitMs: 30_000,
    onEvent: (e) => e.type === "warning" && warnings.push(e.message),
  });
  await new Promise((r) => setTimeout(r, 300));
  await vacuumLock.release();
  assert.equal((await pending).status, "archived");
  assert.match(warnings.join("\n"), /locked by vacuum.*waiting for it/);
});

Deno.test("fetchWal reads a WAL archive staged back from tape in another layout", async () => {
  await using t = await tempDir();
  const { store, repoDir, pgData, out } = await setup(t.dir);
  const seg = makeSegment({ segno: 12, used: 3 * MiB });
  await pushWal(store, writeSegment(pgData, seg), { pgData });
  // One tape with everything flat but the records, kept in their system's directory.
  const tape = path.join(t.dir, "tape");
  fs.mkdirSync(path.join(tape, TEST_SYSTEM_ID), { recursive: true });
  for (const f of filesUnder(repoDir)) {
    if (f.startsWith("locks/")) continue;
    const to = f.startsWith("wal/")
      ? path.join(tape, TEST_SYSTEM_ID, path.basename(f))
      : path.join(tape, path.basename(f));
    fs.copyFileSync(path.join(repoDir, f), to);
  }
  const staged = await StagedStore.open([tape]);
  assert.deepEqual((await listWal(await Repository.open(staged))).map((r) => r.name), [seg.name]);
  const dest = path.join(out, "RECOVERYXLOG");
  await fetchWal(staged, seg.name, dest, {});
  assert.equal(sha256Hex(fs.readFileSync(dest)), sha256Hex(seg.data));
});

Deno.test("pushWal with encodeFile on a worker thread stores the record and blocks the in-thread push does", async () => {
  await using t = await tempDir();
  const a = await setup(path.join(t.dir, "a"));
  const b = await setup(path.join(t.dir, "b"));
  const pool = await WorkerPool.start(ENGINE_JOBS, { workers: 1 });
  try {
    const seg = makeSegment({ segno: 3, used: 2 * MiB });
    const handed: string[] = [];
    const ra = await pushWal(a.store, writeSegment(a.pgData, seg), { pgData: a.pgData });
    const fileB = writeSegment(b.pgData, seg);
    const rb = await pushWal(b.store, fileB, {
      pgData: b.pgData,
      encodeFile: (input) => {
        handed.push(input.file);
        return pool.run("wal.encode", input);
      },
    });
    assert.deepEqual(handed, [fileB]);
    assert.deepEqual(
      [rb.sha256, rb.blocks, rb.newBlocks, rb.size],
      [ra.sha256, ra.blocks, ra.newBlocks, ra.size],
    );
    assert.equal(rb.packBytes, ra.packBytes);
    const dest = path.join(b.out, seg.name);
    await fetchWal(b.store, seg.name, dest, { pgData: b.pgData });
    assert.equal(sha256Hex(fs.readFileSync(dest)), sha256Hex(seg.data));
    // Pushed again: answered from the record with the worker's hash.
    const again = await pushWal(b.store, fileB, {
      pgData: b.pgData,
      encodeFile: (input) => pool.run("wal.encode", input),
    });
    assert.equal(again.status, "already-archived");
    assert.equal(again.sha256, ra.sha256);
  } finally {
    await pool.close();
  }
});
