import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import { FsStore } from "./drivers/fs.ts";
import { backup } from "./backup/backup.ts";
import { copy } from "./copy.ts";
import { verify } from "./verify.ts";
import { restore } from "./restore/restore.ts";
import { Repository } from "./repository.ts";
import { AlreadyExists, IntegrityError, InvalidInput } from "./errors.ts";
import { dirSource } from "../sources/dir/dir_source.ts";
import { DEFAULT_FIXED } from "../formats/chunker.ts";
import { toHex } from "../formats/hash.ts";
import { NodeType } from "../formats/tree.ts";
import { describeTree, filesUnder, makeTree, randomBytes, tempDir } from "../testing/mod.ts";

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
const HOUR = 3600_000;

interface Fixture {
  src: string;
  repo: string;
  store: FsStore;
  /** Manifest names, oldest first, with the tree each one holds. */
  generations: { name: string; tree: string[] }[];
}

/** A source repository with three generations of a tree. */
async function fixture(dir: string): Promise<Fixture> {
  const src = makeTree(path.join(dir, "src"), { largeSize: 2 * 1024 * 1024 });
  const repo = path.join(dir, "repo");
  const store = await FsStore.open(repo, { create: true });
  const generations: Fixture["generations"] = [];
  for (let g = 0; g < 3; g++) {
    if (g > 0) {
      fs.writeFileSync(path.join(src, `gen-${g}.bin`), randomBytes(150_000, 700 + g));
      fs.writeFileSync(path.join(src, "one.bin"), `generation ${g}`);
    }
    const r = await backup(store, dirSource(src), {
      workers: 0,
      now: () => T0 + g * HOUR,
      init: { packSize: 1024 * 1024 },
    });
    generations.push({ name: r.name, tree: describeTree(src) });
  }
  return { src, repo, store, generations };
}

async function assertClean(store: FsStore, what: string): Promise<void> {
  const r = await verify(store, { readData: true });
  assert.equal(r.ok, true, `${what}: ${JSON.stringify(r.problems)}`);
}

function manifestBytes(repo: string, name: string): Uint8Array {
  return fs.readFileSync(path.join(repo, "manifests", name));
}

/** Every file of a repository but its locks, with a hash of its content. */
function snapshot(repo: string): string[] {
  return filesUnder(repo).filter((f) => !f.startsWith("locks/")).map((f) =>
    `${f} ${createHash("sha256").update(fs.readFileSync(path.join(repo, f))).digest("hex")}`
  );
}

/** Block entries in every index file of a repository (duplicates counted). */
async function indexedEntries(store: FsStore): Promise<{ entries: number; distinct: number }> {
  let entries = 0;
  const distinct = new Set<string>();
  for await (const f of store.list("index")) {
    const bytes = await store.load({ kind: "index", name: f.name });
    // Index file: 8-byte header, then records of 44 + 48 * n bytes.
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let pos = 8; pos < bytes.length;) {
      const n = dv.getUint32(pos + 40, true);
      pos += 44;
      for (let k = 0; k < n; k++, pos += 48) {
        entries++;
        distinct.add(toHex(bytes.subarray(pos, pos + 32)));
      }
    }
  }
  return { entries, distinct: distinct.size };
}

/** Distinct blocks (trees included) a manifest reaches. */
async function reachable(store: FsStore, name: string): Promise<Set<string>> {
  const repo = await Repository.open(store);
  await repo.loadIndex();
  const m = await repo.loadManifest(name);
  const out = new Set<string>();
  const walk = async (id: Uint8Array): Promise<void> => {
    if (out.has(toHex(id))) return;
    out.add(toHex(id));
    for (const n of await repo.loadTree(id)) {
      if (n.type === NodeType.file) { for (const b of n.blocks) out.add(toHex(b)); }
      else if (n.type === NodeType.dir && n.subtree) await walk(n.subtree);
    }
  };
  for (const p of m.manifest.parts) await walk(p.root);
  return out;
}

async function restoresAll(store: FsStore, f: Fixture, dir: string): Promise<void> {
  for (const [i, g] of f.generations.entries()) {
    const target = path.join(dir, `restored-${i}`);
    await restore(store, target, { manifest: g.name, workers: 0 });
    assert.deepEqual(describeTree(target), g.tree, `${g.name} restores from the destination`);
  }
}

Deno.test("copy replicates every backup: byte-identical manifests, both ends verify, every backup restores", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  const events: string[] = [];
  const r = await copy(f.store, dest, { onEvent: (e) => events.push(e.type) });
  assert.equal(r.created, true);
  assert.equal(r.manifestsCopied, 3);
  assert.equal(r.manifestsSkipped, 0);
  assert.deepEqual(r.manifests.map((m) => m.name), f.generations.map((g) => g.name));
  assert.ok(r.blocksCopied > 0 && r.bytesCopied > 2 * 1024 * 1024);
  assert.equal(r.indexFiles, 3, "one index file per copied manifest");
  assert.ok(events.includes("progress"));
  for (const g of f.generations) {
    assert.deepEqual(manifestBytes(destDir, g.name), manifestBytes(f.repo, g.name), g.name);
  }
  const a = await Repository.open(f.store);
  const b = await Repository.open(dest);
  assert.notEqual(b.config.id, a.config.id, "a new repository id");
  assert.deepEqual(
    [b.config.chunker, b.config.compression, b.config.packSize],
    [a.config.chunker, a.config.compression, a.config.packSize],
  );
  await assertClean(f.store, "source");
  await assertClean(dest, "destination");
  await restoresAll(dest, f, t.dir);
  const { entries, distinct } = await indexedEntries(dest);
  assert.equal(entries, distinct, "no block stored twice");
  assert.equal(r.blocksCopied, distinct);
});

Deno.test("copy run a second time copies nothing", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  await copy(f.store, dest);
  const before = snapshot(destDir);
  const r = await copy(f.store, dest);
  assert.equal(r.created, false);
  assert.equal(r.manifestsCopied, 0);
  assert.equal(r.manifestsSkipped, 3);
  assert.equal(r.blocksCopied, 0);
  assert.equal(r.bytesCopied, 0);
  assert.equal(r.packsWritten, 0);
  assert.equal(r.indexFiles, 0);
  assert.deepEqual(snapshot(destDir), before, "the destination is unchanged");
});

Deno.test("copy of one named backup copies just the blocks it needs", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const first = f.generations[0]!.name;
  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  const r = await copy(f.store, dest, { manifests: [first.replace(/\.manifest$/, "")] });
  assert.deepEqual(r.manifests.map((m) => [m.name, m.action]), [[first, "copied"]]);
  assert.deepEqual(filesUnder(path.join(destDir, "manifests")), [first]);
  const needed = await reachable(f.store, first);
  assert.equal(r.blocksCopied, needed.size);
  assert.equal(r.blocksPresent, 0);
  const { distinct } = await indexedEntries(dest);
  assert.equal(distinct, needed.size);
  await assertClean(dest, "destination");
  const target = path.join(t.dir, "restored");
  await restore(dest, target, { manifest: first, workers: 0 });
  assert.deepEqual(describeTree(target), f.generations[0]!.tree);
});

Deno.test("copy after a new source backup copies only the new blocks", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  await copy(f.store, dest);
  fs.writeFileSync(path.join(f.src, "late.bin"), randomBytes(100_000, 99));
  const late = await backup(f.store, dirSource(f.src), { workers: 0, now: () => T0 + 5 * HOUR });
  const r = await copy(f.store, dest);
  assert.equal(r.manifestsSkipped, 3);
  assert.deepEqual(r.manifests.filter((m) => m.action === "copied").map((m) => m.name), [
    late.name,
  ]);
  assert.equal(
    r.blocksCopied,
    late.manifest.stats.newBlocks,
    "exactly the blocks the backup added",
  );
  assert.ok(r.bytesCopied >= 100_000, `${r.bytesCopied}`);
  assert.ok(r.bytesCopied < 130_000, `only the new file and its trees: ${r.bytesCopied}`);
  assert.ok(r.blocksPresent > 10, "the unchanged files' blocks were found at the destination");
  await assertClean(dest, "destination");
  assert.deepEqual(manifestBytes(destDir, late.name), manifestBytes(f.repo, late.name));
});

Deno.test("copy of one backup, then of all, stores no block twice", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  const one = await copy(f.store, dest, { manifests: [f.generations[1]!.name] });
  const all = await copy(f.store, dest);
  assert.deepEqual(all.manifests.map((m) => m.action), ["copied", "skipped", "copied"]);
  assert.ok(all.blocksPresent > 0, "the first copy's blocks were found at the destination");
  const { entries, distinct } = await indexedEntries(dest);
  assert.equal(entries, distinct, "no block stored twice");
  const source = await indexedEntries(f.store);
  assert.equal(distinct, source.distinct);
  assert.equal(one.blocksCopied + all.blocksCopied, distinct);
  await assertClean(dest, "destination");
  await restoresAll(dest, f, t.dir);
});

Deno.test("copy into an existing destination with other settings uses it as it is", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  const other = makeTree(path.join(t.dir, "other"), { largeSize: 100_000, seed: 5 });
  await backup(dest, dirSource(other, { chunker: DEFAULT_FIXED }), {
    workers: 0,
    now: () => T0 - HOUR,
    init: { compression: { codec: "deflate", level: 6, minSaving: 0.03 }, packSize: 2 << 20 },
  });
  const config = (await Repository.open(dest)).config;
  const r = await copy(f.store, dest);
  assert.equal(r.created, false);
  assert.equal(r.manifestsCopied, 3);
  assert.deepEqual((await Repository.open(dest)).config, config, "the config is not changed");
  await assertClean(dest, "destination");
  await restoresAll(dest, f, t.dir);
});

Deno.test("copy refuses a backup of the same name with other bytes and changes nothing", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  const other = makeTree(path.join(t.dir, "other"), { largeSize: 100_000, seed: 9 });
  const clash = await backup(dest, dirSource(other), { workers: 0, now: () => T0 });
  assert.equal(clash.name, f.generations[0]!.name, "same name, other backup");
  const before = snapshot(destDir);
  await assert.rejects(
    () => copy(f.store, dest),
    (e: unknown) => {
      assert.ok(e instanceof AlreadyExists);
      assert.match(e.message, new RegExp(`manifest ${clash.name} already exists in .*different`));
      assert.match(e.message, /not overwritten: copy into another repository/);
      return true;
    },
  );
  assert.deepEqual(snapshot(destDir), before, "nothing was written");
  await assertClean(dest, "destination");
});

Deno.test("copy stops at a damaged source block, naming it, and never replicates it", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const src = await Repository.open(f.store);
  await src.loadIndex();
  const m = await src.loadManifest(f.generations[0]!.name);
  const root = await src.loadTree(m.manifest.parts[0]!.root);
  const data = await src.loadTree(root.find((n) => n.name === "data")!.subtree!);
  const block = data.find((n) => n.name === "large.bin")!.blocks[0]!;
  const loc = src.locate(block, "test");
  const hex = toHex(loc.packId);
  const pack = path.join(f.repo, "packs", hex.slice(0, 2), hex);
  const bytes = fs.readFileSync(pack);
  bytes[loc.offset + 10] = bytes[loc.offset + 10]! ^ 0xff;
  fs.writeFileSync(pack, bytes);

  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  await assert.rejects(
    () => copy(f.store, dest),
    (e: unknown) => {
      assert.ok(e instanceof IntegrityError);
      assert.match(e.message, new RegExp(`block ${toHex(block)} in pack ${hex}`));
      assert.match(e.message, /file data\/large\.bin of backup /);
      assert.match(e.message, /run bendsave verify --read-data/);
      return true;
    },
  );
  assert.deepEqual(filesUnder(path.join(destDir, "manifests")), []);
  await assertClean(dest, "destination");
  const d = await Repository.open(dest);
  await d.loadIndex();
  assert.equal(d.index.has(block), false, "the damaged block was not copied");
});

Deno.test("copy rejects a backup name the source does not hold", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const dest = await FsStore.open(path.join(t.dir, "dest"), { create: true });
  await assert.rejects(
    () => copy(f.store, dest, { manifests: ["20200101_000000"] }),
    (e: unknown) =>
      e instanceof InvalidInput && /no manifest 20200101_000000\.manifest/.test(e.message),
  );
  await assert.rejects(
    () => copy(f.store, dest, { manifests: ["latest"] }),
    (e: unknown) => e instanceof InvalidInput && /"latest" is not a manifest name/.test(e.message),
  );
});

Deno.test("copy refuses a damaged source manifest before it writes anything", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const name = f.generations[1]!.name;
  const file = path.join(f.repo, "manifests", name);
  const bytes = fs.readFileSync(file);
  bytes[20] = bytes[20]! ^ 0xff;
  fs.writeFileSync(file, bytes);
  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  await assert.rejects(
    () => copy(f.store, dest),
    (e: unknown) => {
      assert.ok(e instanceof IntegrityError);
      assert.match(e.message, new RegExp(`manifest ${name} is damaged .*nothing was copied`));
      assert.match(e.message, /--manifest/);
      return true;
    },
  );
  assert.deepEqual(filesUnder(destDir), [], "the destination was not even created");
  const others = f.generations.filter((g) => g.name !== name).map((g) => g.name);
  const r = await copy(f.store, dest, { manifests: others });
  assert.equal(r.manifestsCopied, 2, "the other backups still copy when named");
  await assertClean(dest, "destination");
});
