import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { FsStore } from "./drivers/fs.ts";
import { backup } from "./backup/backup.ts";
import { restore, restoreToStore } from "./restore/restore.ts";
import { verify } from "./verify.ts";
import { vacuum } from "./vacuum.ts";
import { copy } from "./copy.ts";
import { repairIndex } from "./repair.ts";
import { fetchWal, pushWal } from "./wal_archive.ts";
import { Cancelled } from "./errors.ts";
import { RepositoryLock } from "./lock.ts";
import { checkpoint, throwIfCancelled } from "./cancel.ts";
import { restoreCluster } from "../sources/databend/cluster_target.ts";
import { restorePg } from "../sources/postgres/pg_restore.ts";
import { dirSource } from "../sources/dir/dir_source.ts";
import { filesUnder, makeTree, tempDir } from "../testing/mod.ts";
import { makeDataDir, makeSegment } from "../testing/wal_segment.ts";

/** Every file below `dir` with its size and mtime: what "nothing was written" compares. */
function snapshot(dir: string): string[] {
  return filesUnder(dir).map((f) => {
    const st = fs.statSync(path.join(dir, f));
    return `${f}:${st.size}:${st.mtimeMs}`;
  });
}

function aborted(): AbortSignal {
  const c = new AbortController();
  c.abort();
  return c.signal;
}

const isCancelled = (e: unknown) => {
  assert.ok(e instanceof Cancelled, `expected Cancelled, got ${(e as Error)?.stack ?? e}`);
  assert.equal(e.code, "cancelled");
  assert.equal(e.committed, null, "nothing was committed");
  return true;
};

Deno.test("throwIfCancelled and checkpoint throw Cancelled only for an aborted signal", async () => {
  throwIfCancelled(undefined, "backup");
  throwIfCancelled(new AbortController().signal, "backup");
  await checkpoint(undefined, "backup");
  await checkpoint(new AbortController().signal, "backup");
  assert.throws(() => throwIfCancelled(aborted(), "backup"), /backup cancelled/);
  await assert.rejects(checkpoint(aborted(), "verify"), isCancelled);
  // A Cancelled given as the abort reason is thrown as it is.
  const c = new AbortController();
  const reason = new Cancelled("cancelled (SIGINT)");
  c.abort(reason);
  assert.throws(() => throwIfCancelled(c.signal, "backup"), (e) => e === reason);
});

Deno.test("every operation given an already-aborted signal throws Cancelled before writing anything", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 200_000 });
  const repoDir = path.join(t.dir, "repo");
  const store = await FsStore.open(repoDir, { create: true });
  const first = await backup(store, dirSource(src), { workers: 0 });
  const pgData = makeDataDir(path.join(t.dir, "data"));
  const seg = makeSegment({ segno: 3, used: 1 << 20 });
  const segFile = path.join(pgData, "pg_wal", seg.name);
  fs.writeFileSync(segFile, seg.data);
  await pushWal(store, segFile, { pgData });
  const before = snapshot(repoDir);
  const signal = aborted();

  // A new repository is not even created.
  const fresh = await FsStore.open(path.join(t.dir, "fresh"), { create: true });
  await assert.rejects(backup(fresh, dirSource(src), { signal }), isCancelled);
  assert.deepEqual(filesUnder(path.join(t.dir, "fresh")), []);

  await assert.rejects(backup(store, dirSource(src), { signal, workers: 0 }), isCancelled);
  const target = path.join(t.dir, "restored");
  await assert.rejects(restore(store, target, { signal, manifest: first.name }), isCancelled);
  assert.equal(fs.existsSync(target), false, "the restore target is not made");
  const other = await FsStore.open(path.join(t.dir, "objects"), { create: true });
  await assert.rejects(restoreToStore(store, other, { signal, manifest: first.name }), isCancelled);
  await assert.rejects(verify(store, { signal, readData: true }), isCancelled);
  await assert.rejects(vacuum(store, { signal, keepLast: 1 }), isCancelled);
  await assert.rejects(repairIndex(store, { signal }), isCancelled);
  const copyTo = path.join(t.dir, "copy");
  const dest = await FsStore.open(copyTo, { create: true });
  await assert.rejects(copy(store, dest, { signal }), isCancelled);
  assert.deepEqual(filesUnder(copyTo), [], "no destination repository is made");
  const seg4 = makeSegment({ segno: 4, used: 1 << 20 });
  const seg4File = path.join(pgData, "pg_wal", seg4.name);
  fs.writeFileSync(seg4File, seg4.data);
  await assert.rejects(pushWal(store, seg4File, { pgData, signal }), isCancelled);
  const fetched = path.join(t.dir, "RECOVERYXLOG");
  await assert.rejects(fetchWal(store, seg.name, fetched, { pgData, signal }), isCancelled);
  assert.equal(fs.existsSync(fetched), false);
  await assert.rejects(
    restoreCluster(store, path.join(t.dir, "query-node.toml"), { signal }),
    isCancelled,
  );
  await assert.rejects(
    restorePg(store, path.join(t.dir, "pg"), { signal, bendsaveCommand: "bendsave" }),
    isCancelled,
  );
  assert.deepEqual(snapshot(repoDir), before, "the repository is unchanged, no lock is left");
  assert.deepEqual(fs.readdirSync(t.dir).sort(), [
    "copy",
    "data",
    "fresh",
    "objects",
    "repo",
    "src",
  ]);
});

Deno.test("backup aborted while it reads files stops with Cancelled, writes no manifest, and the repository verifies", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  for (let d = 0; d < 20; d++) {
    fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < 20; f++) {
      fs.writeFileSync(path.join(src, `d${d}`, `f${f}`), `file ${d}/${f} `.repeat(2000));
    }
  }
  const repoDir = path.join(t.dir, "repo");
  const store = await FsStore.open(repoDir, { create: true });
  await backup(store, dirSource(path.join(src, "d0")), { workers: 0, init: { packSize: 1 << 20 } });
  const c = new AbortController();
  let progress = 0;
  await assert.rejects(
    backup(store, dirSource(src), {
      workers: 0,
      signal: c.signal,
      onEvent: (e) => {
        if (e.type === "progress" && e.phase === "read" && ++progress === 1) c.abort();
      },
    }),
    isCancelled,
  );
  assert.equal(filesUnder(path.join(repoDir, "manifests")).length, 1, "no second manifest");
  assert.deepEqual(filesUnder(path.join(repoDir, "locks")), []);
  assert.deepEqual(filesUnder(repoDir).filter((f) => path.basename(f).startsWith(".tmp-")), []);
  const report = await verify(store, { readData: true });
  assert.deepEqual(report.problems, []);
});

Deno.test("a backup waiting for a vacuum's lock stops waiting when its signal aborts", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 1000 });
  const repoDir = path.join(t.dir, "repo");
  const store = await FsStore.open(repoDir, { create: true });
  await backup(store, dirSource(src), { workers: 0 });
  const vacuumLock = await RepositoryLock.acquire(store, "exclusive", { operation: "vacuum" });
  try {
    const c = new AbortController();
    let waiting = false;
    const started = Date.now();
    const run = backup(store, dirSource(src), {
      workers: 0,
      lockWaitMs: 60_000,
      signal: c.signal,
      onEvent: (e) => {
        if (e.type === "warning" && /waiting for it/.test(e.message)) {
          waiting = true;
          setTimeout(() => c.abort(), 100);
        }
      },
    });
    await assert.rejects(run, isCancelled);
    assert.ok(waiting, "it waited for the lock");
    assert.ok(
      Date.now() - started < 5000,
      `it stopped waiting at once (${Date.now() - started} ms)`,
    );
  } finally {
    await vacuumLock.release();
  }
  assert.deepEqual(filesUnder(path.join(repoDir, "locks")), []);
});

Deno.test("restoreToStore aborted after its first progress event waits for the saves in flight and says how many objects it restored", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  for (let d = 0; d < 10; d++) {
    fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < 30; f++) {
      fs.writeFileSync(path.join(src, `d${d}`, `f${f}`), `object ${d}/${f} `.repeat(500));
    }
  }
  const store = await FsStore.open(path.join(t.dir, "repo"), { create: true });
  const b = await backup(store, dirSource(src), { workers: 0 });
  const targetDir = path.join(t.dir, "objects");
  const target = await FsStore.open(targetDir, { create: true });
  const c = new AbortController();
  const e = await restoreToStore(store, target, {
    manifest: b.name,
    signal: c.signal,
    onEvent: (ev) => {
      if (ev.type === "progress") c.abort();
    },
  }).then(() => null, (e: unknown) => e);
  assert.ok(e instanceof Cancelled, String(e));
  assert.match(e.committed ?? "", /^\d+ of 300 objects were restored into .*--overwrite/);
  const written = Number(/^(\d+)/.exec(e.committed!)![1]);
  assert.ok(written < 300, `${written} written`);
  assert.equal(filesUnder(targetDir).length, written, "every object counted is whole, no other");
  assert.deepEqual(filesUnder(path.join(t.dir, "repo", "locks")), []);
});
