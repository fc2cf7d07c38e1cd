import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { tempDir } from "../testing/mod.ts";
import { makeDataDir, makeSegment } from "../testing/wal_segment.ts";
import { FsStore } from "./drivers/fs.ts";
import { Repository } from "./repository.ts";
import { listWal } from "./wal_archive.ts";
import { runPushDaemon } from "./wal_push_daemon.ts";
import { type PushOk, readSpoolJson, writeSpoolFile } from "./wal_spool.ts";

async function setup(dir: string, count: number, workers?: number) {
  const repo = path.join(dir, "repo");
  await Repository.init(await FsStore.open(repo, { create: true }), {});
  const pgData = makeDataDir(path.join(dir, "data"));
  const walDir = path.join(pgData, "pg_wal");
  fs.mkdirSync(path.join(walDir, "archive_status"), { recursive: true });
  const names: string[] = [];
  for (let i = 1; i <= count; i++) {
    const seg = makeSegment({ segno: i, used: 1 << 20, seed: i });
    fs.writeFileSync(path.join(walDir, seg.name), seg.data);
    fs.writeFileSync(path.join(walDir, "archive_status", `${seg.name}.ready`), "");
    names.push(seg.name);
  }
  const spool = path.join(walDir, "bendsave-push");
  const run = () =>
    runPushDaemon({
      spool,
      repository: repo,
      walDir,
      open: () => FsStore.open(repo),
      push: { pgData },
      idleMs: 200,
      exitCodeOf: () => 1,
      ...(workers === undefined ? {} : { workers }),
    });
  /** Writes the request a foreground `wal-push --async` writes for `name` (spool made when missing). */
  const ask = (name: string, repository = repo) => {
    fs.mkdirSync(spool, { recursive: true });
    writeSpoolFile(
      spool,
      `${name}.req`,
      JSON.stringify({ file: path.join(walDir, name), repository }),
    );
  };
  return { repo, walDir, spool, names, run, ask };
}

Deno.test("runPushDaemon pushes the request and the ready files after it, writing an .ok for each", async () => {
  await using t = await tempDir();
  const { repo, spool, names, run, ask } = await setup(t.dir, 3, 0);
  ask(names[0]!);
  const r = await run();
  assert.deepEqual(r, { ran: true, pushed: 3, failed: 0, threads: 1 });
  assert.deepEqual(
    (await listWal(await Repository.open(await FsStore.open(repo)))).map((w) => w.name),
    names,
  );
  for (const name of names) {
    const ok = readSpoolJson<PushOk>(spool, `${name}.ok`);
    assert.equal(ok?.name, name);
    assert.equal(ok?.repository, repo);
  }
  assert.equal(fs.existsSync(path.join(spool, `${names[0]}.req`)), false, "request answered");
  assert.equal(fs.existsSync(path.join(spool, "push.lock")), false, "lock released");
});

Deno.test("runPushDaemon hashes and compresses its two lanes' segments on two threads", async () => {
  await using t = await tempDir();
  const { repo, names, run, ask } = await setup(t.dir, 4, 2);
  ask(names[0]!);
  // The pool's default placement (the first thread with room for two jobs) put
  // both lanes' segments on the first thread, one after the other.
  assert.deepEqual(await run(), { ran: true, pushed: 4, failed: 0, threads: 2 });
  assert.deepEqual(
    (await listWal(await Repository.open(await FsStore.open(repo)))).map((w) => w.name),
    names,
  );
});

Deno.test("runPushDaemon leaves ready files alone while nobody asks (archive_command emptied)", async () => {
  await using t = await tempDir();
  const { repo, run } = await setup(t.dir, 2);
  const r = await run();
  assert.deepEqual(r, { ran: true, pushed: 0, failed: 0, threads: 0 });
  assert.deepEqual(await listWal(await Repository.open(await FsStore.open(repo))), []);
});

Deno.test("runPushDaemon leaves another repository's requests to that repository's pusher", async () => {
  await using t = await tempDir();
  const { repo, spool, names, run, ask } = await setup(t.dir, 1);
  ask(names[0]!, "/elsewhere");
  const r = await run();
  assert.equal(r.pushed, 0);
  assert.deepEqual(await listWal(await Repository.open(await FsStore.open(repo))), []);
  assert.ok(fs.existsSync(path.join(spool, `${names[0]}.req`)), "left for its own pusher");
});

Deno.test("runPushDaemon on worker threads reports a damaged segment and a vanished one in their .error, and pushes the rest", async () => {
  await using t = await tempDir();
  const { repo, walDir, spool, names, run, ask } = await setup(t.dir, 3, 1);
  const damaged = path.join(walDir, names[1]!);
  const bytes = fs.readFileSync(damaged);
  bytes.fill(0, 0, 64); // no page header
  fs.writeFileSync(damaged, bytes);
  fs.rmSync(path.join(walDir, names[2]!)); // gone since it was asked for
  for (const name of names) ask(name);
  const r = await run();
  assert.deepEqual([r.pushed, r.failed], [1, 2]);
  const error = (name: string) =>
    readSpoolJson<{ exit: number; message: string }>(spool, `${name}.error`);
  assert.match(error(names[1]!)?.message ?? "", /is not a WAL segment/);
  assert.match(
    error(names[2]!)?.message ?? "",
    /^cannot read WAL file ".*" \(ENOENT\): check that archive_command passes %p/,
  );
  assert.ok(readSpoolJson<PushOk>(spool, `${names[0]}.ok`));
  assert.deepEqual(
    (await listWal(await Repository.open(await FsStore.open(repo)))).map((w) => w.name),
    [names[0]],
  );
});
