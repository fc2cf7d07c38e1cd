import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { FsStore } from "../drivers/fs.ts";
import { backup } from "../backup/backup.ts";
import { Repository } from "../repository.ts";
import { verify } from "../verify.ts";
import { readScope, ReadTrees } from "./read_data.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { toHex } from "../../formats/hash.ts";
import { makeTree, tempDir } from "../../testing/mod.ts";

/** A repository of one backup with small packs; the pack file and offset of its root tree. */
async function oneBackup(dir: string) {
  const src = makeTree(path.join(dir, "src"), { largeSize: 2 * 1024 * 1024 });
  const repo = path.join(dir, "repo");
  const store = await FsStore.open(repo, { create: true });
  const b = await backup(store, dirSource(src), { workers: 0, init: { packSize: 1024 * 1024 } });
  const r = await Repository.open(store);
  await r.loadIndex();
  const m = await r.loadManifest(b.name);
  const loc = r.locate(m.manifest.parts[0]!.root, "test");
  const hex = toHex(loc.packId);
  return {
    store,
    repo,
    name: b.name,
    rootPack: path.join(repo, "packs", hex.slice(0, 2), hex),
    rootOffset: loc.offset,
  };
}

Deno.test("verify --read-data attributes a damaged tree block the read finds to the backup whose walk met it", async () => {
  await using t = await tempDir();
  const f = await oneBackup(t.dir);
  const b = fs.readFileSync(f.rootPack);
  b[f.rootOffset + 2] = b[f.rootOffset + 2]! ^ 0xff;
  fs.writeFileSync(f.rootPack, b);
  const r = await verify(f.store, { readData: true });
  // The walk's tree problem comes first, then the read's findings.
  assert.deepEqual(r.problems.map((p) => p.kind).slice(0, 1), ["tree"]);
  const fromRead = r.problems.find((p) => p.kind === "block" && / in pack /.test(p.message));
  assert.ok(fromRead, JSON.stringify(r.problems));
  // The read ran beside the walk; its results were applied after it, so the
  // damaged block is known to be the backup's root tree.
  assert.deepEqual(fromRead.manifests, [f.name]);
  assert.deepEqual(fromRead.files, [`${f.name}:/`]);
  assert.equal(r.checked.packsRead, r.checked.packs);
});

Deno.test("verify --read-data reports pack-file damage after the tree walk's, and does not read that pack", async () => {
  await using t = await tempDir();
  const f = await oneBackup(t.dir);
  const b = fs.readFileSync(f.rootPack);
  b[f.rootOffset + 2] = b[f.rootOffset + 2]! ^ 0xff;
  fs.writeFileSync(f.rootPack, b);
  // Another pack is truncated: the pack check (now done before the walk) finds it.
  const packs = fs.readdirSync(path.join(f.repo, "packs"), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  const other = packs.find((p) => p !== f.rootPack)!;
  fs.truncateSync(other, fs.statSync(other).size - 10);
  const r = await verify(f.store, { readData: true });
  assert.deepEqual(
    r.problems.map((p) => p.kind).slice(0, 2),
    ["tree", "pack"],
    JSON.stringify(r.problems),
  );
  assert.match(r.problems[1]!.message, /truncated or replaced/);
  assert.equal(r.checked.packsRead, r.checked.packs - 1);
  assert.equal(r.scope.packsInScope, r.checked.packs - 1);
});

Deno.test("ReadTrees hands each tree once after its pack is done, and nothing for other packs", async () => {
  const trees = new ReadTrees(["p1"]);
  const id = new Uint8Array(32).fill(7);
  const waiting = trees.take("p1", toHex(id));
  assert.equal(await trees.take("p2", toHex(id)), undefined); // not a pack of the read
  trees.packDone("p1", [{ id, bytes: new Uint8Array([1, 2]) }]);
  assert.deepEqual(await waiting, new Uint8Array([1, 2]));
  assert.equal(await trees.take("p1", toHex(id)), undefined); // once
  const never = new ReadTrees(["p3"]);
  const pending = never.take("p3", "ab");
  never.close(); // a failed read releases the walk
  assert.equal(await pending, undefined);
});

Deno.test("ReadTrees keeps the trees the walk has not taken yet when the read completes before it", async () => {
  const trees = new ReadTrees(["p1", "p2"]);
  const a = new Uint8Array(32).fill(1);
  const b = new Uint8Array(32).fill(2);
  trees.packDone("p1", [{ id: a, bytes: new Uint8Array([1]) }]);
  trees.packDone("p2", [{ id: b, bytes: new Uint8Array([2]) }]);
  trees.close(true); // the read is done; the walk is still behind it
  assert.deepEqual(await trees.take("p1", toHex(a)), new Uint8Array([1]));
  assert.deepEqual(await trees.take("p2", toHex(b)), new Uint8Array([2]));
  const failed = new ReadTrees(["p1"]);
  failed.packDone("p1", [{ id: a, bytes: new Uint8Array([1]) }]);
  failed.close(); // a failed read: what is left is dropped
  assert.equal(await failed.take("p1", toHex(a)), undefined);
});

Deno.test("verify --read-data walks the trees the read checked, without reading them again", async () => {
  await using t = await tempDir();
  const f = await oneBackup(t.dir);
  let ranged = 0;
  const counting = new Proxy(f.store, {
    get(target, prop, receiver) {
      if (prop === "load") {
        return (h: unknown, range?: unknown) => {
          if (range !== undefined) ranged++;
          return target.load(h as never, range as never);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  const structural = await verify(counting);
  const treeReads = ranged - 2 * structural.checked.packs; // each trailer takes two reads
  assert.equal(treeReads, structural.checked.trees);
  ranged = 0;
  const full = await verify(counting, { readData: true });
  assert.equal(full.ok, true, JSON.stringify(full.problems));
  assert.equal(ranged, 2 * full.checked.packs, "only the trailers are read by range");
  assert.equal(full.checked.trees, structural.checked.trees);
});

Deno.test("readScope reads tree packs first, then the rest, each largest first, leaving out damaged ones", () => {
  const e = (kind: 0 | 1) => ({
    id: new Uint8Array(32),
    kind,
    codec: 0,
    offset: 8,
    storedLength: 1,
    rawLength: 1,
  });
  const indexed = new Map([
    ["aa", { size: 10, entries: [e(0)] }],
    ["bb", { size: 30, entries: [e(0)] }],
    ["cc", { size: 5, entries: [e(1)] }],
    ["dd", { size: 20, entries: [e(0), e(1)] }],
    ["ee", { size: 99, entries: [e(0)] }],
  ]);
  const repo = { index: { packs: () => [] } } as unknown as Repository;
  const files = { present: new Map(), damaged: new Map([["ee", "pack ee is missing"]]) };
  const s = readScope(repo, indexed, files, null, undefined, Math.random);
  assert.deepEqual(s.selected, ["dd", "cc", "bb", "aa"]);
  assert.deepEqual([...s.treePacks].sort(), ["cc", "dd"]);
  assert.equal(s.inScope, 4);
});
