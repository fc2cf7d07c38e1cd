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
import { sha256Hex } from "../formats/hash.ts";

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
