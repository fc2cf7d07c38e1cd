import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import { FsStore } from "./drivers/fs.ts";
import type { BlobStore } from "./drivers/types.ts";
import { backup } from "./backup/backup.ts";
import { copy } from "./copy.ts";
import { verify } from "./verify.ts";
import { restore } from "./restore/restore.ts";
import { Repository } from "./repository.ts";
import { AlreadyExists, IntegrityError, InvalidInput, PassphraseError } from "./errors.ts";
import { setPassphraseSource } from "./passphrase_source.ts";
import type { Source } from "./source.ts";
import { dirSource } from "../sources/dir/dir_source.ts";
import { DEFAULT_FIXED } from "../formats/chunker.ts";
import { sha256, toHex } from "../formats/hash.ts";
import { NodeType } from "../formats/tree.ts";
import { describeTree, filesUnder, makeTree, randomBytes, tempDir } from "../testing/mod.ts";
import { damageBlock } from "./restore/_damage_test_helper.ts";

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
const CHEAP = { memoryKiB: 64, iterations: 1, parallelism: 1 };
const MARKER = "MARKER-copy-3b9d-plaintext";
// Every encrypted repository of these tests opens with "p" unless a test says otherwise.
setPassphraseSource(() => Promise.resolve("p"));
const HOUR = 3600_000;

interface Fixture {
  src: string;
  repo: string;
  store: FsStore;
  /** Manifest names, oldest first, with the tree each one holds. */
  generations: { name: string; tree: string[] }[];
}

/**
 * A source repository with three generations of a tree (encrypted with the
 * passphrase "p" when `passphrase` is given); its files hold {@linkcode MARKER}.
 */
async function fixture(dir: string, passphrase?: string): Promise<Fixture> {
  const src = makeTree(path.join(dir, "src"), { largeSize: 2 * 1024 * 1024 });
  fs.writeFileSync(path.join(src, "marked.txt"), `${MARKER}\n`.repeat(500));
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
      init: { packSize: 1024 * 1024, ...(passphrase ? { passphrase, kdf: CHEAP } : {}) },
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
  const { block, hex } = await damageLargeBin(f, 10, 0xff);

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

// Encrypted repositories (FORMAT.md section 21): verbatim with one master key, re-encoded otherwise.

const answer = (p: string | null) => () => Promise.resolve(p);

/** Runs `fn` with the default passphrase source answering `p`. */
async function withPassphrase<T>(p: string, fn: () => Promise<T>): Promise<T> {
  setPassphraseSource(answer(p));
  try {
    return await fn();
  } finally {
    setPassphraseSource(answer("p"));
  }
}

async function masterKeyOf(store: FsStore, p = "p"): Promise<Uint8Array> {
  const repo = await Repository.open(store, { passphrase: answer(p) });
  assert.ok(repo.crypto, "an encrypted repository");
  return repo.crypto.key.raw;
}

/** Asserts that no stored file but the guide holds the marker string. */
function assertNoPlaintext(repo: string): void {
  for (const f of filesUnder(repo)) {
    if (f === "bendsave.md") continue;
    assert.equal(
      fs.readFileSync(path.join(repo, f)).indexOf(MARKER),
      -1,
      `${MARKER} found in ${f}`,
    );
  }
}

/** Every block id in the index of an (open-able) repository, hex. */
async function blockIds(store: FsStore, p = "p"): Promise<Set<string>> {
  const repo = await Repository.open(store, { passphrase: answer(p) });
  await repo.loadIndex();
  return new Set([...repo.index.entries()].map((e) => toHex(e.id)));
}

/** Asserts that each manifest's parent id is the id of the parent's file in `repo`. */
async function assertParentChain(store: FsStore, repo: string, f: Fixture): Promise<void> {
  const r = await Repository.open(store);
  for (const [i, g] of f.generations.entries()) {
    const m = (await r.loadManifest(g.name)).manifest;
    if (i === 0) continue;
    const parent = f.generations[i - 1]!.name;
    assert.equal(m.parentName, parent);
    assert.deepEqual(m.parentId, sha256(manifestBytes(repo, parent)), `${g.name}'s parent id`);
  }
}

Deno.test("copy of an encrypted repository into a new location keeps its master key: manifests byte for byte, sealed blocks as stored", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir, "p");
  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  const r = await copy(f.store, dest, { toPassphrase: answer("q"), init: { kdf: CHEAP } });
  assert.deepEqual([r.created, r.mode, r.encrypted, r.masterKey], [
    true,
    "verbatim",
    true,
    "source",
  ]);
  assert.equal(r.manifestsCopied, 3);
  for (const g of f.generations) {
    assert.deepEqual(manifestBytes(destDir, g.name), manifestBytes(f.repo, g.name), g.name);
  }
  assert.deepEqual(await masterKeyOf(dest, "q"), await masterKeyOf(f.store));
  await assert.rejects(() => masterKeyOf(dest, "p"), PassphraseError, "its slot opens with q");
  assert.deepEqual(await blockIds(dest, "q"), await blockIds(f.store), "the same block ids");
  assertNoPlaintext(destDir);
  await withPassphrase("q", async () => {
    await assertClean(dest, "destination");
    await restoresAll(dest, f, t.dir);
  });
  const again = await copy(f.store, dest, { toPassphrase: answer("q") });
  assert.deepEqual([again.manifestsSkipped, again.blocksCopied], [3, 0]);
});

Deno.test("copy with encrypt rotates the master key: re-encrypted blocks, trees and manifests restore byte for byte", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir, "p");
  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  const r = await copy(f.store, dest, { encrypt: true, init: { kdf: CHEAP } });
  assert.deepEqual([r.created, r.mode, r.encrypted, r.masterKey], [
    true,
    "reencoded",
    true,
    "new",
  ]);
  assert.equal(r.manifestsCopied, 3);
  assert.notDeepEqual(await masterKeyOf(dest), await masterKeyOf(f.store), "a new master key");
  const srcIds = await blockIds(f.store);
  const dstIds = await blockIds(dest);
  assert.equal(dstIds.size, srcIds.size, "one block for each source block: the same cut points");
  assert.equal(r.blocksCopied, srcIds.size);
  assert.equal([...dstIds].filter((id) => srcIds.has(id)).length, 0, "every block id is new");
  for (const [i, m] of r.manifests.entries()) {
    const name = f.generations[i]!.name;
    assert.notDeepEqual(manifestBytes(destDir, name), manifestBytes(f.repo, name));
    assert.equal(m.id, toHex(sha256(manifestBytes(destDir, name))));
    assert.equal(m.sourceId, toHex(sha256(manifestBytes(f.repo, name))));
  }
  assertNoPlaintext(destDir);
  await assertParentChain(dest, destDir, f);
  await assertClean(dest, "destination");
  await restoresAll(dest, f, t.dir);
  // A second run finds every backup there (their bytes differ: it compares the backups).
  const before = snapshot(destDir);
  const again = await copy(f.store, dest);
  assert.deepEqual(
    [again.mode, again.manifestsSkipped, again.blocksCopied, again.packsWritten],
    ["reencoded", 3, 0, 0],
  );
  assert.deepEqual(snapshot(destDir), before, "the destination is unchanged");
});

Deno.test("copy with encrypt of an unencrypted repository encrypts its backups, then copies only what a new backup added", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  const r = await copy(f.store, dest, { encrypt: true, init: { kdf: CHEAP } });
  assert.deepEqual([r.mode, r.encrypted, r.masterKey], ["reencoded", true, "new"]);
  const config = JSON.parse(fs.readFileSync(path.join(destDir, "config"), "utf8"));
  assert.equal(config.version, 2);
  const m = await (await Repository.open(dest)).loadManifest(f.generations[0]!.name);
  assert.deepEqual([m.manifest.formatVersion, m.manifest.formatMinor], [2, 0]);
  assert.equal(r.blocksCopied, (await blockIds(f.store)).size);
  assertNoPlaintext(destDir);
  await assertParentChain(dest, destDir, f);
  await assertClean(dest, "destination");
  await restoresAll(dest, f, t.dir);
  fs.writeFileSync(path.join(f.src, "late.bin"), randomBytes(100_000, 99));
  const late = await backup(f.store, dirSource(f.src), { workers: 0, now: () => T0 + 5 * HOUR });
  const tree = describeTree(f.src);
  const next = await copy(f.store, dest);
  assert.deepEqual(next.manifests.map((x) => x.action), [
    "skipped",
    "skipped",
    "skipped",
    "copied",
  ]);
  assert.equal(next.blocksCopied, late.manifest.stats.newBlocks, "the new file and its trees");
  assert.ok(next.blocksPresent > 0, "the unchanged files of the changed root were found there");
  await assertClean(dest, "destination");
  const target = path.join(t.dir, "late");
  await restore(dest, target, { manifest: late.name, workers: 0 });
  assert.deepEqual(describeTree(target), tree);
});

Deno.test("copy of an encrypted repository into an unencrypted one is refused without decrypt, and stores plain ids with it", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir, "p");
  const plain = path.join(t.dir, "plain");
  const plainStore = await FsStore.open(plain, { create: true });
  const other = makeTree(path.join(t.dir, "other"), { largeSize: 1000, seed: 3 });
  await backup(plainStore, dirSource(other), { workers: 0, now: () => T0 - HOUR });
  const before = snapshot(plain);
  await assert.rejects(() => copy(f.store, plainStore), (e: unknown) => {
    assert.ok(e instanceof InvalidInput);
    assert.match(
      e.message,
      /is encrypted and .* is not, so its backups would be stored in plaintext: give --decrypt/,
    );
    return true;
  });
  assert.deepEqual(snapshot(plain), before, "nothing was written");
  const r = await copy(f.store, plainStore, { decrypt: true });
  assert.deepEqual([r.mode, r.encrypted, r.manifestsCopied], ["reencoded", false, 3]);
  const m = await (await Repository.open(plainStore)).loadManifest(f.generations[2]!.name);
  assert.deepEqual([m.manifest.formatVersion, m.manifest.formatMinor], [1, 2]);
  // verify of an unencrypted repository checks every block against the SHA-256 of its content.
  await assertClean(plainStore, "decrypted destination");
  await restoresAll(plainStore, f, t.dir);
  // A new location with decrypt is created unencrypted.
  const fresh = await FsStore.open(path.join(t.dir, "fresh"), { create: true });
  const created = await copy(f.store, fresh, {
    decrypt: true,
    manifests: [f.generations[0]!.name],
  });
  assert.deepEqual([created.created, created.encrypted, created.masterKey], [true, false, null]);
  assert.equal((await Repository.open(fresh)).encrypted, false);
});

Deno.test("copy with a missing or wrong passphrase at either end writes nothing", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir, "p");
  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  await copy(f.store, dest, {
    encrypt: true,
    manifests: [f.generations[0]!.name],
    init: { kdf: CHEAP },
  });
  const before = { src: snapshot(f.repo), dst: snapshot(destDir) };
  await assert.rejects(
    () => copy(f.store, dest, { passphrase: answer("wrong") }),
    (e: unknown) => e instanceof PassphraseError && /does not open repository/.test(e.message),
  );
  await assert.rejects(
    () => copy(f.store, dest, { toPassphrase: answer("wrong") }),
    (e: unknown) => {
      assert.ok(e instanceof PassphraseError);
      assert.match(e.message, /^copy destination: the passphrase does not open repository /);
      assert.match(e.message, /BENDSAVE_TO_PASSWORD, or with --to-password-file/);
      return true;
    },
  );
  const none = path.join(t.dir, "none");
  await assert.rejects(
    async () =>
      copy(f.store, await FsStore.open(none, { create: true }), {
        encrypt: true,
        toPassphrase: answer(null),
      }),
    (e: unknown) => e instanceof PassphraseError && /needs a passphrase/.test(e.message),
  );
  assert.deepEqual({ src: snapshot(f.repo), dst: snapshot(destDir) }, before);
  assert.equal(fs.existsSync(path.join(none, "config")), false);
});

Deno.test("copy refuses encrypt into an existing unencrypted destination, decrypt into an encrypted one, and a passphrase for a new unencrypted one", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const dest = await FsStore.open(path.join(t.dir, "dest"), { create: true });
  await copy(f.store, dest, { manifests: [f.generations[0]!.name] });
  await assert.rejects(
    () => copy(f.store, dest, { encrypt: true }),
    (e: unknown) => e instanceof InvalidInput && /--encrypt only creates a new one/.test(e.message),
  );
  const enc = await FsStore.open(path.join(t.dir, "enc"), { create: true });
  await copy(f.store, enc, {
    encrypt: true,
    manifests: [f.generations[0]!.name],
    init: { kdf: CHEAP },
  });
  await assert.rejects(
    () => copy(f.store, enc, { decrypt: true }),
    (e: unknown) =>
      e instanceof InvalidInput &&
      /is encrypted: --decrypt copies into an unencrypted/.test(e.message),
  );
  await assert.rejects(() => copy(f.store, enc, { encrypt: true, decrypt: true }), InvalidInput);
  // A passphrase for a destination that would be created unencrypted is a mistake, not ignored.
  const fresh = path.join(t.dir, "fresh");
  await assert.rejects(
    async () =>
      copy(f.store, await FsStore.open(fresh, { create: true }), { init: { passphrase: "x" } }),
    (e: unknown) => e instanceof InvalidInput && /give encrypt to encrypt it/.test(e.message),
  );
  assert.equal(fs.existsSync(path.join(fresh, "config")), false);
});

Deno.test("copy re-encoding one backup without its parent records no parent id, and the parent copied later verifies", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  const [first, second] = f.generations.map((g) => g.name);
  await copy(f.store, dest, { encrypt: true, manifests: [second!], init: { kdf: CHEAP } });
  const alone = (await (await Repository.open(dest)).loadManifest(second!)).manifest;
  assert.deepEqual([alone.parentName, alone.parentId], [first, null]);
  const all = await copy(f.store, dest);
  assert.deepEqual(all.manifests.map((m) => m.action), ["copied", "skipped", "copied"]);
  const third = (await (await Repository.open(dest)).loadManifest(f.generations[2]!.name)).manifest;
  assert.deepEqual(
    third.parentId,
    sha256(manifestBytes(destDir, second!)),
    "a skipped parent's id",
  );
  await assertClean(dest, "destination");
  await restoresAll(dest, f, t.dir);
});

Deno.test("copy re-encoding stops at a sealed source block that does not authenticate and never replicates it", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir, "p");
  const { block, hex } = await damageLargeBin(f, 40, 0x01);
  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  await assert.rejects(
    () => copy(f.store, dest, { encrypt: true, init: { kdf: CHEAP } }),
    (e: unknown) => {
      assert.ok(e instanceof IntegrityError);
      assert.match(e.message, new RegExp(`block ${toHex(block)} in pack ${hex}`));
      assert.match(e.message, /file data\/large\.bin of backup /);
      return true;
    },
  );
  assert.deepEqual(filesUnder(path.join(destDir, "manifests")), []);
  await assertClean(dest, "destination");
});

/**
 * Flips `mask` into byte `at` of the stored first block of data/large.bin of
 * the fixture's first backup; that block's id and its pack's name.
 */
async function damageLargeBin(
  f: Awaited<ReturnType<typeof fixture>>,
  at: number,
  mask: number,
): Promise<{ block: Uint8Array; hex: string }> {
  const src = await Repository.open(f.store);
  await src.loadIndex();
  const m = await src.loadManifest(f.generations[0]!.name);
  const root = await src.loadTree(m.manifest.parts[0]!.root);
  const data = await src.loadTree(root.find((n) => n.name === "data")!.subtree!);
  const block = data.find((n) => n.name === "large.bin")!.blocks[0]!;
  await damageBlock(src, block, at, mask);
  return { block, hex: toHex(src.locate(block, "test").packId) };
}

/** Path -> SHA-256 of the content of every file of every part of a manifest, read block by block. */
async function contentOf(store: FsStore, name: string): Promise<Map<string, string>> {
  const repo = await Repository.open(store);
  await repo.loadIndex();
  const m = (await repo.loadManifest(name)).manifest;
  const out = new Map<string, string>();
  const walk = async (id: Uint8Array, dir: string): Promise<void> => {
    for (const n of await repo.loadTree(id)) {
      const p = `${dir}/${n.name}`;
      if (n.type === NodeType.dir && n.subtree?.length) await walk(n.subtree, p);
      if (n.type !== NodeType.file) continue;
      const h = createHash("sha256");
      for (const b of n.blocks) h.update(await repo.readBlob(b, p));
      out.set(p, h.digest("hex"));
    }
  };
  for (const p of m.parts) await walk(p.root, `${p.kind}:${p.name}`);
  return out;
}

Deno.test("copy re-encodes every part of a backup: a stream, and two parts with one root", async () => {
  await using t = await tempDir();
  const tree = makeTree(path.join(t.dir, "tree"), { largeSize: 500_000, seed: 4 });
  const stream = randomBytes(1_500_000, 31);
  const source: Source = {
    info: { type: "test", key: "test:multi", description: "three parts", settings: {} },
    parts: () =>
      Promise.resolve([
        {
          name: "meta",
          kind: "stream",
          fileName: "meta.bin",
          open: () =>
            Promise.resolve((async function* () {
              yield stream;
            })()),
        },
        { name: "data", kind: "tree", path: tree },
        { name: "again", kind: "tree", path: tree },
      ]),
  };
  const store = await FsStore.open(path.join(t.dir, "repo"), { create: true });
  const b = await backup(store, source, { workers: 0, now: () => T0 });
  const m = b.manifest;
  assert.deepEqual(m.parts[1]!.root, m.parts[2]!.root, "two parts with one root");
  const expected = await contentOf(store, b.name);
  assert.ok(expected.size > 40);
  // Plain -> encrypted, then that encrypted copy -> plain again.
  for (const [from, options] of [[store, { encrypt: true }], [null, { decrypt: true }]] as const) {
    const src = from ?? await FsStore.open(path.join(t.dir, "encrypt"), { create: true });
    const dir = path.join(t.dir, from ? "encrypt" : "decrypt");
    const dest = await FsStore.open(dir, { create: true });
    const r = await copy(src, dest, { ...options, init: { kdf: CHEAP } });
    assert.equal(r.mode, "reencoded");
    const copied = (await (await Repository.open(dest)).loadManifest(b.name)).manifest;
    assert.deepEqual(
      copied.parts.map((p) => [p.name, p.kind]),
      m.parts.map((p) => [p.name, p.kind]),
    );
    assert.deepEqual(copied.parts[1]!.root, copied.parts[2]!.root);
    if (from) assert.notDeepEqual(copied.parts[0]!.root, m.parts[0]!.root, "keyed ids");
    else {
      // Back in plaintext: SHA-256 ids of trees encoded the same way, so the very roots.
      assert.deepEqual(copied.parts.map((p) => p.root), m.parts.map((p) => p.root));
    }
    assert.deepEqual(await contentOf(dest, b.name), expected);
    await assertClean(dest, dir);
  }
});

/** `inner`, counting the pack bytes read from it. */
function countingReads(inner: FsStore): { store: BlobStore; packBytes: () => number } {
  let packBytes = 0;
  const store: BlobStore = {
    capabilities: inner.capabilities,
    location: inner.location,
    save: (h, data, options) => inner.save(h, data, options),
    load: async (h, range) => {
      const bytes = await inner.load(h, range);
      if (h.kind === "pack") packBytes += bytes.length;
      return bytes;
    },
    stat: (h) => inner.stat(h),
    list: (kind) => inner.list(kind),
    remove: (h) => inner.remove(h),
  };
  return { store, packBytes: () => packBytes };
}

Deno.test("copy re-encoding a new backup reads only what its parent's copy lacks", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const destDir = path.join(t.dir, "dest");
  const dest = await FsStore.open(destDir, { create: true });
  await copy(f.store, dest, { encrypt: true, init: { kdf: CHEAP } });
  fs.writeFileSync(path.join(f.src, "late.bin"), randomBytes(100_000, 99));
  const late = await backup(f.store, dirSource(f.src), { workers: 0, now: () => T0 + 5 * HOUR });
  const tree = describeTree(f.src);
  const counted = countingReads(f.store);
  const r = await copy(counted.store, dest);
  assert.deepEqual(r.manifests.map((m) => m.action), ["skipped", "skipped", "skipped", "copied"]);
  assert.equal(r.blocksCopied, late.manifest.stats.newBlocks, "the new file and its trees");
  // The new file is 100 kB; the backup's files hold 2.7 MB the parent's copy already maps.
  assert.ok(counted.packBytes() < 400_000, `source pack bytes read: ${counted.packBytes()}`);
  await assertClean(dest, "destination");
  const target = path.join(t.dir, "late");
  await restore(dest, target, { manifest: late.name, workers: 0 });
  assert.deepEqual(describeTree(target), tree);
});
