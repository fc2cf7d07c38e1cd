import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { FsStore } from "./drivers/fs.ts";
import { backup } from "./backup/backup.ts";
import { vacuum } from "./vacuum.ts";
import { verify } from "./verify.ts";
import { planRestore, restore } from "./restore/restore.ts";
import { RepositoryLock } from "./lock.ts";
import { IntegrityError, InvalidInput, LockedError } from "./errors.ts";
import { repairIndex } from "./repair.ts";
import { dirSource } from "../sources/dir/dir_source.ts";
import { describeTree, filesUnder, makeTree, randomBytes, tempDir } from "../testing/mod.ts";

const DAY = 24 * 60 * 60 * 1000;

function dirBytes(dir: string): number {
  return filesUnder(dir).reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0);
}

/** Five daily generations; each adds a 400 KB file and drops the previous day's. */
async function generations(dir: string) {
  const src = makeTree(path.join(dir, "src"), { largeSize: 1_000_000 });
  const repo = path.join(dir, "repo");
  const store = await FsStore.open(repo, { create: true });
  const expected = new Map<string, string[]>();
  const t0 = Date.UTC(2026, 10, 1, 3, 0, 0);
  for (let g = 0; g < 5; g++) {
    if (g > 0) fs.rmSync(path.join(src, `day-${g - 1}.bin`));
    fs.writeFileSync(path.join(src, `day-${g}.bin`), randomBytes(400_000, 1000 + g));
    const r = await backup(store, dirSource(src), {
      workers: 0,
      now: () => t0 + g * DAY,
      init: { packSize: 1024 * 1024 },
    });
    expected.set(r.name, describeTree(src));
  }
  return { src, repo, store, expected, now: () => t0 + 5 * DAY };
}

Deno.test("vacuum --dry-run changes nothing and predicts exactly what the vacuum frees", async () => {
  await using t = await tempDir();
  const g = await generations(t.dir);
  const before = filesUnder(g.repo);
  const plan = await vacuum(g.store, { keepLast: 2, dryRun: true, now: g.now });
  assert.deepEqual(filesUnder(g.repo), before);
  assert.equal(plan.deleteManifests.length, 3);
  assert.ok(plan.freeBytes > 3 * 400_000 * 0.9, `frees ${plan.freeBytes}`);
  const packsBefore = dirBytes(path.join(g.repo, "packs")) +
    dirBytes(path.join(g.repo, "manifests"));
  const done = await vacuum(g.store, { keepLast: 2, now: g.now });
  assert.deepEqual(done.deleteManifests, plan.deleteManifests);
  const packsAfter = dirBytes(path.join(g.repo, "packs")) +
    dirBytes(path.join(g.repo, "manifests"));
  assert.equal(packsBefore - packsAfter, plan.freeBytes);
});

Deno.test("vacuum keeps every kept backup restorable byte-identical and the repository verifies", async () => {
  await using t = await tempDir();
  const g = await generations(t.dir);
  const r = await vacuum(g.store, { keepLast: 2, now: g.now });
  const kept = filesUnder(path.join(g.repo, "manifests"));
  assert.equal(kept.length, 2);
  assert.ok(r.repackPacks.length + r.deletePacks.length > 0);
  const v = await verify(g.store, { readData: true });
  assert.equal(v.ok, true, JSON.stringify(v.problems));
  assert.deepEqual(v.reclaimable, { packs: 0, bytes: 0 });
  assert.equal(v.vacuumedParents.length, 1, "the oldest kept backup's parent is gone");
  for (const name of kept) {
    const dest = path.join(t.dir, `restore-${name}`);
    await restore(g.store, dest, { manifest: name });
    assert.deepEqual(describeTree(dest), g.expected.get(name), name);
  }
  // A second vacuum has nothing left to do.
  const again = await vacuum(g.store, { keepLast: 2, now: g.now });
  assert.equal(
    again.deleteManifests.length + again.deletePacks.length + again.repackPacks.length,
    0,
  );
});

Deno.test("vacuum with no rule deletes no backup and removes packs left by an interrupted backup", async () => {
  await using t = await tempDir();
  const g = await generations(t.dir);
  // A pack no index lists, as an interrupted backup leaves.
  const orphan = path.join(g.repo, "packs", "ab", "ab".padEnd(64, "0"));
  fs.mkdirSync(path.dirname(orphan), { recursive: true });
  fs.writeFileSync(orphan, "not indexed");
  const r = await vacuum(g.store, { now: g.now });
  assert.equal(r.deleteManifests.length, 0);
  assert.deepEqual(r.unindexedPacks, [path.basename(orphan)]);
  assert.equal(fs.existsSync(orphan), false);
  assert.equal(filesUnder(path.join(g.repo, "manifests")).length, 5);
});

Deno.test("vacuum refuses to run while a backup holds its lock, and a backup waits for a vacuum", async () => {
  await using t = await tempDir();
  const g = await generations(t.dir);
  const held = await RepositoryLock.acquire(g.store, "shared", { operation: "backup" });
  await assert.rejects(vacuum(g.store, { keepLast: 1, now: g.now }), LockedError);
  await held.release();
  const exclusive = await RepositoryLock.acquire(g.store, "exclusive", { operation: "vacuum" });
  await assert.rejects(backup(g.store, dirSource(g.src), { workers: 0 }), LockedError);
  let waited = "";
  const pending = backup(g.store, dirSource(g.src), {
    workers: 0,
    lockWaitMs: 20_000,
    onEvent: (e) => {
      if (e.type === "warning") waited = e.message;
    },
  });
  await new Promise((r) => setTimeout(r, 300));
  assert.match(waited, /locked by vacuum.*waiting for it/);
  await exclusive.release();
  const done = await pending;
  assert.equal(done.manifest.kind, "incremental");
});

Deno.test("vacuum refuses a repository with a damaged manifest and deletes nothing", async () => {
  await using t = await tempDir();
  const g = await generations(t.dir);
  const [first] = filesUnder(path.join(g.repo, "manifests"));
  fs.writeFileSync(path.join(g.repo, "manifests", first!), "garbage");
  const before = filesUnder(g.repo);
  await assert.rejects(
    vacuum(g.store, { keepLast: 1, now: g.now }),
    /is damaged, so vacuum cannot tell/,
  );
  assert.deepEqual(filesUnder(g.repo), before);
});

Deno.test("vacuum then more backups in the same second: names keep increasing and the chain verifies", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 1000 });
  const store = await FsStore.open(path.join(t.dir, "repo"), { create: true });
  const now = () => Date.UTC(2026, 10, 21, 12, 0, 0);
  const names: string[] = [];
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 3; i++) {
      fs.writeFileSync(path.join(src, "one.bin"), `round ${round} backup ${i}`);
      names.push((await backup(store, dirSource(src), { workers: 0, now })).name);
    }
    await vacuum(store, { keepLast: 2, now });
  }
  // Every name is new: a name a vacuum freed is never given to a newer backup.
  assert.equal(new Set(names).size, names.length);
  assert.deepEqual(names.slice(0, 3), [
    "20261121_120000.manifest",
    "20261121_120000_2.manifest",
    "20261121_120000_3.manifest",
  ]);
  assert.equal(names.at(-1), "20261121_120000_9.manifest");
  const v = await verify(store);
  assert.equal(v.ok, true, JSON.stringify(v.problems));
});

/** B1 (big.bin, a.txt), B2 changes a.txt, then B1's index file is lost. */
async function lostIndex(dir: string) {
  const src = path.join(dir, "src");
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, "big.bin"), randomBytes(600_000, 7));
  fs.writeFileSync(path.join(src, "a.txt"), "one");
  const repo = path.join(dir, "repo");
  const store = await FsStore.open(repo, { create: true });
  const t0 = Date.UTC(2026, 10, 1, 3, 0, 0);
  await backup(store, dirSource(src), { workers: 0, now: () => t0 });
  const firstIndex = fs.readdirSync(path.join(repo, "index"));
  assert.equal(firstIndex.length, 1);
  fs.writeFileSync(path.join(src, "a.txt"), "two, changed");
  const b2 = await backup(store, dirSource(src), { workers: 0, now: () => t0 + DAY });
  fs.rmSync(path.join(repo, "index", firstIndex[0]!));
  return { src, repo, store, b2, now: () => t0 + 2 * DAY };
}

Deno.test("vacuum refuses to delete packs a kept backup needs after an index file is lost", async () => {
  await using t = await tempDir();
  const g = await lostIndex(t.dir);
  const packsBefore = filesUnder(path.join(g.repo, "packs"));
  await assert.rejects(
    () => vacuum(g.store, { maxBackups: 1, now: g.now }),
    (e: Error) => e instanceof IntegrityError && /repair index/.test(e.message),
  );
  assert.deepEqual(filesUnder(path.join(g.repo, "packs")), packsBefore, "no pack was deleted");
  // The dry run says the same, and after the repair the vacuum runs and B2 restores.
  await assert.rejects(() => vacuum(g.store, { maxBackups: 1, dryRun: true, now: g.now }));
  await repairIndex(g.store);
  await vacuum(g.store, { maxBackups: 1, now: g.now });
  const dest = path.join(t.dir, "out");
  await restore(g.store, dest, { manifest: g.b2.name });
  assert.deepEqual(describeTree(dest), describeTree(g.src));
});

Deno.test("verify never calls packs that kept backups need reclaimable when their index is lost", async () => {
  await using t = await tempDir();
  const g = await lostIndex(t.dir);
  const v = await verify(g.store, {});
  assert.equal(v.ok, false);
  assert.deepEqual(v.reclaimable, { packs: 0, bytes: 0 });
  assert.ok(
    v.problems.some((p) => p.kind === "pack" && /repair index/.test(p.message)),
    JSON.stringify(v.problems),
  );
});

Deno.test("vacuum --dry-run leaves a stale lock in place and says so; a real vacuum removes it", async () => {
  await using t = await tempDir();
  const g = await generations(t.dir);
  const old = new Date(g.now() - DAY).toISOString();
  const stale = {
    kind: "shared",
    operation: "backup",
    host: "elsewhere.example",
    pid: 424242,
    time: old,
    refreshed: old,
  };
  await g.store.save(
    { kind: "lock", name: "0123456789abcdef0123456789abcdef.lock" },
    new TextEncoder().encode(JSON.stringify(stale)),
  );
  const locks = () => fs.readdirSync(path.join(g.repo, "locks"));
  const warnings: string[] = [];
  const onEvent = (e: { type: string; message?: string }) => {
    if (e.type === "warning") warnings.push(e.message ?? "");
  };
  await vacuum(g.store, { keepLast: 2, dryRun: true, now: g.now, onEvent });
  assert.deepEqual(locks(), ["0123456789abcdef0123456789abcdef.lock"]);
  assert.ok(warnings.some((w) => /left in place/.test(w)), warnings.join("\n"));
  await vacuum(g.store, { keepLast: 2, now: g.now, onEvent });
  assert.deepEqual(locks(), []);
});

/** Three backups of `src`, then one of `src/dir7` (the newest of the repository). */
async function twoSources(dir: string) {
  const src = path.join(dir, "src");
  fs.mkdirSync(path.join(src, "dir7"), { recursive: true });
  fs.writeFileSync(path.join(src, "dir7", "seven.txt"), "seven");
  const store = await FsStore.open(path.join(dir, "repo"), { create: true });
  const t0 = Date.UTC(2026, 10, 1, 3, 0, 0);
  const names: string[] = [];
  for (let g = 0; g < 3; g++) {
    fs.writeFileSync(path.join(src, "gen.txt"), `generation ${g}`);
    names.push((await backup(store, dirSource(src), { workers: 0, now: () => t0 + g * DAY })).name);
  }
  const sub = await backup(store, dirSource(path.join(src, "dir7")), {
    workers: 0,
    now: () => t0 + 3 * DAY,
  });
  return { src, store, names, sub: sub.name, now: () => t0 + 4 * DAY };
}

Deno.test("vacuum applies retention per source, never deleting the only backups of one source", async () => {
  for (const rule of [{ keepLast: 1 }, { maxBackups: 1 }]) {
    await using t = await tempDir();
    const g = await twoSources(t.dir);
    const r = await vacuum(g.store, { ...rule, now: g.now });
    assert.deepEqual(r.deleteManifests.sort(), g.names.slice(0, 2).sort(), JSON.stringify(rule));
    assert.equal(r.groupBy, "source");
    assert.deepEqual(
      r.groups.map((x) => [x.backups, x.deleted]).sort(),
      [[1, 0], [3, 2]],
    );
    const dest = path.join(t.dir, "out");
    await restore(g.store, dest, { manifest: g.names[2]! });
    assert.equal(fs.readFileSync(path.join(dest, "gen.txt"), "utf8"), "generation 2");
  }
  // --group-by repository is the old, repository-wide behaviour, when asked for.
  await using t = await tempDir();
  const g = await twoSources(t.dir);
  const all = await vacuum(g.store, {
    keepLast: 1,
    groupBy: "repository",
    dryRun: true,
    now: g.now,
  });
  assert.deepEqual(all.deleteManifests.sort(), [...g.names].sort());
});

Deno.test("restore without a backup name refuses to guess between sources and picks by --source", async () => {
  await using t = await tempDir();
  const g = await twoSources(t.dir);
  await assert.rejects(
    () => planRestore(g.store, path.join(t.dir, "out")),
    (e: Error) =>
      e instanceof InvalidInput && /2 sources/.test(e.message) &&
      e.message.includes(g.names[2]!.replace(/\.manifest$/, "")) && /--source/.test(e.message),
  );
  const plan = await planRestore(g.store, path.join(t.dir, "out"), { source: g.src });
  assert.equal(plan.manifest, g.names[2]);
  const sub = await planRestore(g.store, path.join(t.dir, "out"), {
    source: path.join(g.src, "dir7"),
  });
  assert.equal(sub.manifest, g.sub);
  await assert.rejects(
    () => planRestore(g.store, path.join(t.dir, "out"), { source: "/nowhere" }),
    (e: Error) => e instanceof InvalidInput && /no backup of source "\/nowhere"/.test(e.message),
  );
});
