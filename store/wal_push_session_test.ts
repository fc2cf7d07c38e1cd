import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { FsStore } from "./drivers/fs.ts";
import { Repository } from "./repository.ts";
import { fetchWal, pushWal } from "./wal_archive.ts";
import { WalPushSession } from "./wal_push_session.ts";
import { vacuum } from "./vacuum.ts";
import { verify } from "./verify.ts";
import { tempDir } from "../testing/mod.ts";
import { makeDataDir, makeSegment } from "../testing/wal_segment.ts";
import { sha256, sha256Hex } from "../formats/hash.ts";
import { BlobKind } from "../formats/pack.ts";

const MiB = 1024 * 1024;

async function setup(dir: string) {
  const repoDir = path.join(dir, "repo");
  const store = await FsStore.open(repoDir, { create: true });
  await Repository.init(store, { packSize: 8 * MiB });
  const pgData = makeDataDir(path.join(dir, "data"));
  const segs = [1, 2, 3, 4, 5, 6].map((segno) =>
    makeSegment({ segno, used: 256 * 1024, seed: segno })
  );
  const files = segs.map((s) => {
    const file = path.join(pgData, "pg_wal", s.name);
    fs.writeFileSync(file, s.data);
    return file;
  });
  const count = (dir: string) =>
    fs.readdirSync(path.join(repoDir, dir), { recursive: true })
      .filter((f) => fs.statSync(path.join(repoDir, dir, String(f))).isFile()).length;
  return { store, repoDir, pgData, segs, files, count };
}

Deno.test("WalPushSession: pushes side by side share packs and index files, every file fetches back and verifies", async () => {
  await using t = await tempDir();
  const { store, repoDir, pgData, segs, files, count } = await setup(t.dir);
  const session = await WalPushSession.open(store);
  await session.begin();
  const results = await Promise.all(files.map((f) => pushWal(store, f, { pgData, session })));
  await session.end();
  assert.deepEqual(results.map((r) => r.status), segs.map(() => "archived"));
  assert.ok(
    count("index") < segs.length,
    `${count("index")} index files for ${segs.length} pushes`,
  );
  assert.ok(count("packs") < segs.length, `${count("packs")} packs for ${segs.length} pushes`);
  assert.deepEqual(fs.readdirSync(path.join(repoDir, "locks")), [], "the pass's lock is released");
  const v = await verify(store, { readData: true });
  assert.equal(v.ok, true, JSON.stringify(v.problems));
  assert.equal(v.checked.walFiles, segs.length);
  for (const s of segs) {
    const dest = path.join(t.dir, `fetched-${s.name}`);
    await fetchWal(store, s.name, dest, { pgData });
    assert.equal(sha256Hex(fs.readFileSync(dest)), sha256Hex(s.data));
  }
});

Deno.test("WalPushSession: each pass loads the index files written since, and opens the repository again after a vacuum rewrote the index", async () => {
  await using t = await tempDir();
  const { store, pgData, files } = await setup(t.dir);
  const session = await WalPushSession.open(store);
  await session.begin();
  await pushWal(store, files[0]!, { pgData, session });
  await session.end();
  // Another writer (a synchronous push) adds an index file between passes.
  const other = await pushWal(store, files[1]!, { pgData });
  const first = session.repo;
  await session.begin();
  assert.equal(session.repo, first, "same repository object: only the new index file is read");
  const fresh = await Repository.open(store);
  await fresh.loadIndex();
  const blocks = fresh.index.size;
  assert.equal(blocks, 2);
  assert.equal(session.repo.index.size, blocks, "the other writer's blocks are known");
  // Pushed again in this pass: answered from the other writer's record.
  const again = await pushWal(store, files[1]!, { pgData, session });
  assert.equal(again.sha256, other.sha256);
  await session.end();
  // A vacuum merges every index file into one: the loaded ones are gone.
  await vacuum(store, { keepLast: 1 });
  await session.begin();
  assert.notEqual(session.repo, first, "opened again");
  assert.equal(session.repo.index.size, blocks);
  const r = await pushWal(store, files[2]!, { pgData, session });
  await session.end();
  assert.equal(r.status, "archived");
  const v = await verify(store, { readData: true });
  assert.equal(v.ok, true, JSON.stringify(v.problems));
});

Deno.test("WalPushSession: a commit that fails fails its pushes, writes no record, and spends the session; a new one pushes them", async () => {
  await using t = await tempDir();
  const { store, pgData, segs, files } = await setup(t.dir);
  const save = store.save.bind(store);
  let failIndex = true;
  store.save = async (...args: Parameters<FsStore["save"]>) => {
    if (args[0].kind === "index" && failIndex) {
      failIndex = false;
      throw new Error("no space left on device");
    }
    return await save(...args);
  };
  const session = await WalPushSession.open(store);
  await session.begin();
  const first = await Promise.allSettled(
    files.slice(0, 3).map((f) => pushWal(store, f, { pgData, session })),
  );
  await session.end();
  const failed = first.filter((r) => r.status === "rejected");
  assert.ok(failed.length >= 1, "the push whose commit failed is told");
  for (const r of failed) assert.match(String(r.reason), /no space left on device/);
  assert.equal(session.spent, true);
  // No record points at a pack that no index file lists.
  const v = await verify(store, { readData: true });
  assert.equal(v.ok, true, JSON.stringify(v.problems));
  const again = await WalPushSession.open(store);
  await again.begin();
  const second = await Promise.all(files.map((f) => pushWal(store, f, { pgData, session: again })));
  await again.end();
  assert.deepEqual(
    second.map((r) => r.status).filter((s) => s === "archived").length,
    failed.length + segs.length - 3,
  );
  const w = await verify(store, { readData: true });
  assert.equal(w.ok, true, JSON.stringify(w.problems));
  assert.equal(w.checked.walFiles, segs.length);
});

Deno.test("WalPushSession: after a failed commit no later commit succeeds (its blocks may be in the pack that no index lists)", async () => {
  await using t = await tempDir();
  const { store } = await setup(t.dir);
  const save = store.save.bind(store);
  let releaseIndex!: () => void;
  const held = new Promise<void>((r) => (releaseIndex = r));
  store.save = async (...args: Parameters<FsStore["save"]>) => {
    if (args[0].kind === "index") {
      await held;
      throw new Error("no space left on device");
    }
    return await save(...args);
  };
  const session = await WalPushSession.open(store);
  await session.begin();
  const block = (n: number) => {
    const data = new Uint8Array(1000).fill(n);
    return [sha256(data), BlobKind.data, { codec: 0, data, rawLength: data.length }] as const;
  };
  await session.writer.add(...block(1));
  await session.writer.add(...block(2)); // both in the pack the first commit saves
  const first = session.commit();
  await new Promise((r) => setTimeout(r, 20)); // the first commit is saving its index file
  const second = session.commit(); // the second block's push asks now
  releaseIndex();
  await assert.rejects(first, /no space left on device/);
  await assert.rejects(
    second,
    /an earlier write of packs and index in this pass .* failed .*: PostgreSQL retries/,
  );
  assert.equal(session.spent, true);
  await session.end();
});
