import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { FsStore } from "./drivers/fs.ts";
import { backup } from "./backup/backup.ts";
import { verify, type VerifyReport } from "./verify.ts";
import { repairIndex } from "./repair.ts";
import { restore } from "./restore/restore.ts";
import { Repository } from "./repository.ts";
import { RestoreIncomplete } from "./errors.ts";
import { dirSource } from "../sources/dir/dir_source.ts";
import { toHex } from "../formats/hash.ts";
import { decodeTree } from "../formats/tree.ts";
import { cli, describeTree, filesUnder, makeTree, randomBytes, tempDir } from "../testing/mod.ts";

interface Fixture {
  repo: string;
  store: FsStore;
  manifests: string[];
  /** Pack file (relative to repo) holding the first block of data/large.bin. */
  largePack: string;
}

async function fixture(dir: string): Promise<Fixture> {
  const src = makeTree(path.join(dir, "src"), { largeSize: 3 * 1024 * 1024 });
  const repo = path.join(dir, "repo");
  const store = await FsStore.open(repo, { create: true });
  await backup(store, dirSource(src), { workers: 0, init: { packSize: 1024 * 1024 } });
  fs.writeFileSync(path.join(src, "one.bin"), "second");
  await backup(store, dirSource(src), { workers: 0 });
  const r = await Repository.open(store);
  await r.loadIndex();
  const names = await r.manifestNames();
  const m = await r.loadManifest(names[0]!);
  const root = await r.loadTree(m.manifest.parts[0]!.root);
  const data = await r.loadTree(root.find((n) => n.name === "data")!.subtree!);
  const large = data.find((n) => n.name === "large.bin")!;
  const packId = toHex(r.locate(large.blocks[0]!, "test").packId);
  return { repo, store, manifests: names, largePack: `packs/${packId.slice(0, 2)}/${packId}` };
}

function flipByte(file: string, at: number): void {
  const b = fs.readFileSync(file);
  b[at] = b[at]! ^ 0xff;
  fs.writeFileSync(file, b);
}

function affects(r: VerifyReport, kind: string, manifests: string[], file: RegExp): void {
  const p = r.problems.find((x) => x.kind === kind);
  assert.ok(p, `expected a ${kind} problem, got ${JSON.stringify(r.problems.map((x) => x.kind))}`);
  assert.deepEqual([...p.manifests].sort(), [...manifests].sort());
  assert.ok(p.files.some((f) => file.test(f)), `files: ${p.files.join(", ")}`);
  assert.equal(r.ok, false);
}

Deno.test("verify finds a clean repository clean, with and without --read-data", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const s = await verify(f.store);
  assert.equal(s.ok, true, JSON.stringify(s.problems));
  assert.equal(s.checked.manifests, 2);
  assert.equal(s.checked.packsRead, 0);
  assert.ok(s.checked.packs >= 3);
  const d = await verify(f.store, { readData: true });
  assert.equal(d.ok, true, JSON.stringify(d.problems));
  assert.equal(d.checked.packsRead, d.checked.packs);
  assert.deepEqual(d.reclaimable, { packs: 0, bytes: 0 });
});

Deno.test("verify --read-data finds one flipped byte in a pack, with the affected files", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  flipByte(path.join(f.repo, f.largePack), 100);
  assert.equal((await verify(f.store)).ok, true, "a data byte is only seen when data is read");
  const r = await verify(f.store, { readData: true });
  affects(r, "pack", f.manifests, /:data\/large\.bin$/);
  assert.ok(r.problems.some((p) => p.kind === "block"));
});

Deno.test("verify finds a truncated pack and a deleted pack", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const file = path.join(f.repo, f.largePack);
  fs.truncateSync(file, fs.statSync(file).size - 10);
  affects(await verify(f.store), "pack", f.manifests, /:data\/large\.bin$/);
  fs.rmSync(file);
  const r = await verify(f.store);
  affects(r, "pack", f.manifests, /:data\/large\.bin$/);
  assert.match(r.problems[0]!.message, /is missing/);
});

Deno.test("verify finds a flipped byte in an index file and a deleted index file; repair index fixes both", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const [first, second] = filesUnder(path.join(f.repo, "index"));
  flipByte(path.join(f.repo, "index", first!), 20);
  const r = await verify(f.store);
  const p = r.problems.find((x) => x.kind === "index");
  assert.ok(p);
  assert.equal(p.id, first);
  assert.match(p.message, /repair index/);
  // The blocks that index listed are now unindexed: files are named.
  assert.ok(
    r.problems.some((x) => (x.kind === "block" || x.kind === "tree") && x.manifests.length > 0),
  );
  if (second) fs.rmSync(path.join(f.repo, "index", second));
  const repaired = await repairIndex(f.store);
  assert.equal(repaired.damagedPacks.length, 0);
  assert.deepEqual(filesUnder(path.join(f.repo, "index")), [repaired.indexFile]);
  const after = await verify(f.store, { readData: true });
  assert.equal(after.ok, true, JSON.stringify(after.problems));
});

Deno.test("verify finds a flipped byte in a manifest and names it", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  flipByte(path.join(f.repo, "manifests", f.manifests[1]!), 30);
  const r = await verify(f.store);
  const p = r.problems.find((x) => x.kind === "manifest");
  assert.ok(p);
  assert.deepEqual(p.manifests, [f.manifests[1]]);
  assert.equal(r.problems.length, 1);
  // The other manifest still restores.
  const dest = path.join(t.dir, "dest");
  await restore(f.store, dest, { manifest: f.manifests[0]! });
  assert.ok(describeTree(dest).length > 10);
});

Deno.test("verify reports a vacuumed parent as a note and unreferenced packs as reclaimable", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  fs.rmSync(path.join(f.repo, "manifests", f.manifests[0]!));
  const r = await verify(f.store);
  assert.equal(r.ok, true, JSON.stringify(r.problems));
  assert.deepEqual(r.vacuumedParents, [{ manifest: f.manifests[1], parent: f.manifests[0] }]);
  // A third backup whose manifest is then removed leaves packs nothing uses.
  const src = path.join(t.dir, "src");
  fs.writeFileSync(path.join(src, "extra.bin"), randomBytes(200_000, 99));
  const third = await backup(f.store, dirSource(src), { workers: 0 });
  assert.equal((await verify(f.store)).reclaimable!.packs, 0);
  fs.rmSync(path.join(f.repo, "manifests", third.name));
  const after = await verify(f.store);
  assert.equal(after.ok, true);
  assert.ok(after.reclaimable!.packs >= 1);
  assert.ok(after.reclaimable!.bytes >= 200_000);
});

Deno.test("verify --read-data-subset n/t covers every pack over t runs", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  let total = 0;
  let empty = 0;
  for (let n = 1; n <= 3; n++) {
    const read = (await verify(f.store, { subset: { kind: "slice", n, t: 3 } })).checked.packsRead;
    total += read;
    if (read === 1) empty++; // a slice with no pack of its own reads one pack of another
  }
  const packs = (await verify(f.store)).checked.packs;
  assert.ok(total >= packs && total <= packs + empty, `read ${total} of ${packs}`);
  const unlucky = await verify(f.store, {
    subset: { kind: "percent", percent: 50 },
    random: () => 0.9,
  });
  assert.equal(unlucky.checked.packsRead, 1); // a subset never reads nothing
});

Deno.test("decodeTree of a damaged tree block is reported by verify as a tree problem", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const r = await Repository.open(f.store);
  await r.loadIndex();
  const m = await r.loadManifest(f.manifests[1]!);
  const rootLoc = r.locate(m.manifest.parts[0]!.root, "test");
  const packFile = path.join(
    f.repo,
    "packs",
    toHex(rootLoc.packId).slice(0, 2),
    toHex(rootLoc.packId),
  );
  flipByte(packFile, rootLoc.offset + 2);
  const rep = await verify(f.store);
  const p = rep.problems.find((x) => x.kind === "tree");
  assert.ok(p, JSON.stringify(rep.problems));
  assert.ok(p.manifests.includes(f.manifests[1]!));
  assert.throws(() => decodeTree(new Uint8Array([0xff, 0xff, 0xff])), SyntaxError);
});

Deno.test("restore refuses a block whose hash does not match, names the file, and leaves no file under its name", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  flipByte(path.join(f.repo, f.largePack), 100);
  const dest = path.join(t.dir, "dest");
  const err = await restore(f.store, dest, { manifest: f.manifests[1]! }).then(
    () => null,
    (e) => e,
  );
  assert.ok(err instanceof RestoreIncomplete, String(err));
  assert.ok(err.failed.length > 0);
  for (const failed of err.failed) {
    const m = /block [0-9a-f]{64} in pack [0-9a-f]{64} needed by file (\S+) is damaged/.exec(
      failed.message,
    );
    assert.ok(m, failed.message);
    assert.equal(m[1], failed.path);
    assert.equal(
      fs.existsSync(path.join(dest, failed.path)),
      false,
      `${failed.path} must not exist`,
    );
  }
  assert.deepEqual(filesUnder(dest).filter((x) => x.includes("bendsave-tmp")), []);
});

Deno.test("verify reports a manifest of a newer major as newer and skipped, not as damaged", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  // What a major-3 writer might leave: a manifest whose checksum major 2 does not know.
  const file = path.join(f.repo, "manifests", "29990101_000000.manifest");
  const bytes = new Uint8Array(100);
  bytes.set([0x42, 0x53, 0x4d, 0x46, 3, 0, 0, 0]);
  fs.writeFileSync(file, bytes);
  const r = await verify(f.store);
  assert.deepEqual(r.problems, []);
  assert.equal(r.ok, true);
  assert.deepEqual(r.newerManifests, ["29990101_000000.manifest"]);
  assert.equal(r.reclaimable, null, "its packs are not known, so nothing is called reclaimable");
  const v = await cli(["verify", f.repo]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /manifest 29990101_000000\.manifest is of a newer format, skipped/);
  assert.match(v.stdout, /verdict: OK, no damage found in 2 backup\(s\) \(1 of a newer format/);
});
