import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import { runConformanceSuite, type SeedObject } from "./conformance.ts";
import { StagedStore } from "./staged.ts";
import { FsStore } from "./fs.ts";
import { objectKey } from "./_layout.ts";
import { InvalidInput, MissingPacks, ReadOnlyError, RepositoryNotFound } from "../errors.ts";
import { backup } from "../backup/backup.ts";
import { planRestore, restore } from "../restore/restore.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { describeTree, filesUnder, makeTree, tempDir } from "../../testing/mod.ts";

/**
 * Lays the seed objects out on two "tapes": alternately in the repository
 * layout on the first, and below a `vol-0001/` directory (packs flat in
 * `packs/`) on the second. Raw objects keep their paths.
 */
runConformanceSuite("StagedStore", async (seed: readonly SeedObject[] = []) => {
  const base = await Deno.makeTempDir({ prefix: "bendsave-staged-" });
  const tapes = [path.join(base, "tape1"), path.join(base, "tape2")];
  for (const tape of tapes) fs.mkdirSync(tape);
  seed.forEach(({ handle, data }, i) => {
    const second = i % 2 === 1;
    let rel = objectKey(handle);
    if (second && handle.kind === "pack") rel = `packs/${handle.name}`;
    if (second && handle.kind !== "raw") rel = `vol-0001/${rel}`;
    writeFile(path.join(tapes[i % 2]!, rel), data);
  });
  const store = await StagedStore.open(tapes);
  return { store, cleanup: () => Deno.remove(base, { recursive: true }) };
}, { readOnly: true });

function writeFile(file: string, data: Uint8Array | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
}

/**
 * A repository of several packs (1 MiB packs of 256 KiB blocks) backed up
 * from a generated tree.
 */
async function repository(dir: string): Promise<{ src: string; repo: string; store: FsStore }> {
  const src = makeTree(path.join(dir, "src"), { largeSize: 3 * 1024 * 1024 });
  const repo = path.join(dir, "repo");
  const store = await FsStore.open(repo, { create: true });
  const chunker = { kind: "fixed", size: 256 * 1024 } as const;
  await backup(store, dirSource(src, { chunker }), {
    workers: 0,
    init: { packSize: 1024 * 1024 },
  });
  return { src, repo, store };
}

/** Repository files (relative paths) split by kind. */
function repositoryFiles(repo: string): { packs: string[]; others: string[] } {
  const all = filesUnder(repo);
  return {
    packs: all.filter((f) => f.startsWith("packs/")),
    others: all.filter((f) => !f.startsWith("packs/") && !f.startsWith("locks/")),
  };
}

/**
 * Copies a repository flat onto two tapes: config, guide, manifests and
 * index files on the first, the packs (less `leaveOut`) half on each.
 */
function stageFlat(repo: string, tapes: string[], leaveOut: readonly string[] = []): void {
  for (const tape of tapes) fs.mkdirSync(tape, { recursive: true });
  const { packs, others } = repositoryFiles(repo);
  for (const f of others) {
    fs.copyFileSync(path.join(repo, f), path.join(tapes[0]!, path.basename(f)));
  }
  packs.forEach((f, i) => {
    if (leaveOut.includes(path.basename(f))) return;
    const tape = tapes[i < packs.length / 2 ? 0 : 1]!;
    fs.copyFileSync(path.join(repo, f), path.join(tape, path.basename(f)));
  });
}

const ALL_BUT_LARGE = [
  "empty.txt",
  "one.bin",
  "docs",
  "bin",
  "many",
  "empty-dir",
  "data/random.bin",
  "data/copy-of-readme.md",
  "link-to-readme",
  "dangling-link",
];

/** Two packs only `data/large.bin` needs (no tree, no other file). */
async function packsOnlyLargeNeeds(store: FsStore, dir: string): Promise<string[]> {
  const target = path.join(dir, "nowhere");
  const large = await planRestore(store, target, { include: ["data/large.bin"] });
  const rest = await planRestore(store, target, { include: ALL_BUT_LARGE });
  const restIds = new Set(rest.packs.map((p) => p.id));
  const only = large.packs.map((p) => p.id).filter((id) => !restIds.has(id));
  assert.ok(only.length >= 2, `expected two packs of large.bin alone, got ${only.length}`);
  return only.slice(0, 2).sort();
}

Deno.test("StagedStore restores a repository copied flat onto two tapes byte-identical", async () => {
  await using t = await tempDir();
  const { src, repo } = await repository(t.dir);
  const tapes = [path.join(t.dir, "tape1"), path.join(t.dir, "tape2")];
  stageFlat(repo, tapes);
  assert.ok(fs.readdirSync(tapes[1]!).length >= 2, "the second tape holds packs");
  const before = describeTree(path.join(t.dir)).filter((l) => l.startsWith("tape"));
  const store = await StagedStore.open(tapes);
  assert.deepEqual(store.warnings, []);
  const dest = path.join(t.dir, "dest");
  const result = await restore(store, dest, { workers: 0 });
  assert.deepEqual(describeTree(dest), describeTree(src));
  assert.deepEqual(result.missingPacks, []);
  const after = describeTree(path.join(t.dir)).filter((l) => l.startsWith("tape"));
  assert.deepEqual(after, before, "the staged directories are unchanged");
});

Deno.test("StagedStore.open tells index files from packs in a flat dump by their magic", async () => {
  await using t = await tempDir();
  const { repo, store: fsStore } = await repository(t.dir);
  const tapes = [path.join(t.dir, "tape1"), path.join(t.dir, "tape2")];
  stageFlat(repo, tapes);
  const store = await StagedStore.open(tapes);
  for (const kind of ["pack", "index", "manifest", "config", "guide"] as const) {
    const names = async (s: FsStore | StagedStore) => {
      const out: string[] = [];
      for await (const info of s.list(kind)) out.push(`${info.name}:${info.size}`);
      return out.sort();
    };
    const expected = await names(fsStore);
    assert.ok(expected.length >= 1, kind);
    assert.deepEqual(await names(store), expected, kind);
  }
});

Deno.test("StagedStore.open finds files in any subdirectory and in the repository layout", async () => {
  await using t = await tempDir();
  const { src, repo } = await repository(t.dir);
  const tapes = [path.join(t.dir, "tape1"), path.join(t.dir, "tape2")];
  const { packs, others } = repositoryFiles(repo);
  // The first tape in the repository layout, the second one directory per volume.
  for (const f of others) fs.cpSync(path.join(repo, f), path.join(tapes[0]!, f));
  packs.forEach((f, i) => {
    const to = i % 2 === 0
      ? path.join(tapes[0]!, f)
      : path.join(tapes[1]!, `vol-${i}`, "a", path.basename(f));
    fs.cpSync(path.join(repo, f), to);
  });
  const store = await StagedStore.open(tapes);
  assert.deepEqual(store.warnings, []);
  const dest = path.join(t.dir, "dest");
  await restore(store, dest, { workers: 0 });
  assert.deepEqual(describeTree(dest), describeTree(src));
});

Deno.test("StagedStore save and remove throw ReadOnlyError naming the location", async () => {
  await using t = await tempDir();
  writeFile(path.join(t.dir, "a", "config"), "{}");
  fs.mkdirSync(path.join(t.dir, "b"));
  const store = await StagedStore.open([path.join(t.dir, "a"), path.join(t.dir, "b")]);
  assert.equal(store.location, `staged:${path.join(t.dir, "a")},${path.join(t.dir, "b")}`);
  assert.deepEqual(store.capabilities, {
    writable: false,
    exclusiveCreate: false,
    rangedRead: true,
    name: "staged",
  });
  const message =
    `${store.location} is a read-only staged repository: restore from it, or copy it to a writable repository first`;
  await assert.rejects(store.save({ kind: "config", name: "config" }, new Uint8Array(1)), {
    name: "ReadOnlyError",
    message,
  });
  await assert.rejects(store.remove({ kind: "config", name: "config" }), ReadOnlyError);
  assert.deepEqual(filesUnder(t.dir), ["a/config"]);
});

Deno.test("StagedStore.open of a missing directory or a file throws a clear error", async () => {
  await using t = await tempDir();
  const missing = path.join(t.dir, "tape9");
  await assert.rejects(StagedStore.open([t.dir, missing]), (err: unknown) => {
    assert.ok(err instanceof RepositoryNotFound);
    assert.match(err.message, new RegExp(`staged directory "${missing}" does not exist`));
    return true;
  });
  writeFile(path.join(t.dir, "file"), "x");
  await assert.rejects(StagedStore.open([path.join(t.dir, "file")]), InvalidInput);
  await assert.rejects(StagedStore.open([]), TypeError);
});

Deno.test("StagedStore.open uses the copy that matches its name and warns about the other", async () => {
  await using t = await tempDir();
  const good = new TextEncoder().encode("BSPK\x01\x00\x00\x00 a pack, as far as the scan cares");
  const name = createHash("sha256").update(good).digest("hex");
  const tapes = [path.join(t.dir, "tape1"), path.join(t.dir, "tape2")];
  writeFile(path.join(tapes[0]!, name), good.subarray(0, 20)); // a copy cut short
  writeFile(path.join(tapes[1]!, "x", name), good);
  const warnings: string[] = [];
  const store = await StagedStore.open(tapes, { onWarning: (m) => warnings.push(m) });
  assert.deepEqual(await store.load({ kind: "pack", name }), good);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0]!,
    new RegExp(`copy "${tapes[0]}/${name}" of pack "${name}" does not match`),
  );
  assert.match(warnings[0]!, new RegExp(`using "${tapes[1]}/x/${name}"`));
  assert.deepEqual(store.warnings, warnings);
});

Deno.test("StagedStore.open finds key files staged flat by their JSON and uses the copy that matches its name", async () => {
  await using t = await tempDir();
  const key = new TextEncoder().encode('{"format":"bendsave-key","version":1}\n');
  const name = createHash("sha256").update(key).digest("hex");
  const other = new TextEncoder().encode('{"format":"bendsave-key","version":1,"label":"b"}\n');
  const otherName = createHash("sha256").update(other).digest("hex");
  const tapes = [path.join(t.dir, "tape1"), path.join(t.dir, "tape2")];
  writeFile(path.join(tapes[0]!, name), key.subarray(0, 10)); // a copy cut short
  writeFile(path.join(tapes[1]!, name), key);
  writeFile(path.join(tapes[1]!, "keys", otherName), other); // the repository layout
  const store = await StagedStore.open(tapes);
  const listed: string[] = [];
  for await (const info of store.list("key")) listed.push(info.name);
  assert.deepEqual(listed.sort(), [name, otherName].sort());
  assert.deepEqual(await store.load({ kind: "key", name }), key);
  assert.equal(store.warnings.length, 1);
  assert.match(store.warnings[0]!, new RegExp(`copy "${tapes[0]}/${name}" of key "${name}"`));
});

Deno.test("StagedStore.open keeps the first of identical copies without a warning", async () => {
  await using t = await tempDir();
  const tapes = [path.join(t.dir, "tape1"), path.join(t.dir, "tape2")];
  writeFile(path.join(tapes[0]!, "config"), "{}");
  writeFile(path.join(tapes[1]!, "config"), "{}");
  writeFile(path.join(tapes[1]!, "20260101_000000.manifest"), "one");
  writeFile(path.join(tapes[0]!, "deep", "20260101_000000.manifest"), "two");
  const store = await StagedStore.open(tapes);
  assert.equal((await store.stat({ kind: "config", name: "config" })).size, 2);
  // Two different manifests, neither valid: the first (by directory order) with a warning.
  const manifest = await store.load({ kind: "manifest", name: "20260101_000000.manifest" });
  assert.equal(new TextDecoder().decode(manifest), "two");
  assert.equal(store.warnings.length, 1);
  assert.match(store.warnings[0]!, /no staged copy of manifest "20260101_000000.manifest"/);
});

Deno.test("StagedStore.open leaves out a 64-hex file that is neither a pack nor an index file", async () => {
  await using t = await tempDir();
  const name = "ab".repeat(32);
  writeFile(path.join(t.dir, name), "not a pack");
  writeFile(path.join(t.dir, ".tmp-0123", "config"), "{}");
  writeFile(path.join(t.dir, `.tmp-${name}`), "BSPK");
  const store = await StagedStore.open([t.dir]);
  for (const kind of ["pack", "index", "config"] as const) {
    for await (const info of store.list(kind)) assert.fail(`unexpected ${kind} ${info.name}`);
  }
  assert.equal(store.warnings.length, 1);
  assert.match(
    store.warnings[0]!,
    /starts with neither BSPK, BSIX nor "\{" \(a key file\): it is left out/,
  );
});

Deno.test("restore from a staged repository missing two packs names exactly those and writes nothing", async () => {
  await using t = await tempDir();
  const { repo, store: fsStore } = await repository(t.dir);
  const missing = await packsOnlyLargeNeeds(fsStore, t.dir);
  const tapes = [path.join(t.dir, "tape1"), path.join(t.dir, "tape2")];
  stageFlat(repo, tapes, missing);
  const store = await StagedStore.open(tapes);
  const dest = path.join(t.dir, "dest");
  await assert.rejects(restore(store, dest, { workers: 0 }), (err: unknown) => {
    assert.ok(err instanceof MissingPacks);
    assert.deepEqual(err.packs, missing);
    assert.equal(err.code, "missing_packs");
    assert.equal(
      err.message,
      `2 packs needed by this restore are not in ${store.location}: ${
        missing.join(", ")
      }; stage them and run again`,
    );
    return true;
  });
  assert.equal(fs.existsSync(dest), false, "nothing was written");
  fs.mkdirSync(dest);
  await assert.rejects(restore(store, dest, { workers: 0 }), MissingPacks);
  assert.deepEqual(fs.readdirSync(dest), [], "an empty target stays empty");
});

Deno.test("planRestore reports the packs a staged repository lacks in missingPacks", async () => {
  await using t = await tempDir();
  const { repo, store: fsStore } = await repository(t.dir);
  const missing = await packsOnlyLargeNeeds(fsStore, t.dir);
  const tapes = [path.join(t.dir, "tape1"), path.join(t.dir, "tape2")];
  stageFlat(repo, tapes, missing);
  const store = await StagedStore.open(tapes);
  const plan = await planRestore(store, path.join(t.dir, "dest"));
  const full = await planRestore(fsStore, path.join(t.dir, "dest"));
  assert.deepEqual(plan.missingPacks, missing);
  assert.deepEqual(plan.unlistedDirs, []);
  assert.deepEqual(plan.packs, full.packs, "the plan lists every pack, staged or not");
  assert.equal(plan.files, full.files);
  assert.deepEqual(full.missingPacks, []);
});

Deno.test("restore from a staged repository succeeds when the included paths need only staged packs", async () => {
  await using t = await tempDir();
  const { repo, store: fsStore } = await repository(t.dir);
  const missing = await packsOnlyLargeNeeds(fsStore, t.dir);
  const tapes = [path.join(t.dir, "tape1"), path.join(t.dir, "tape2")];
  stageFlat(repo, tapes, missing);
  const store = await StagedStore.open(tapes);
  const include = ["docs", "many", "data/random.bin"];
  assert.deepEqual((await planRestore(store, path.join(t.dir, "x"), { include })).missingPacks, []);
  const dest = path.join(t.dir, "dest");
  const reference = path.join(t.dir, "reference");
  await restore(store, dest, { workers: 0, include });
  await restore(fsStore, reference, { workers: 0, include });
  assert.ok(fs.existsSync(path.join(dest, "data/random.bin")));
  assert.deepEqual(describeTree(dest), describeTree(reference));
});

Deno.test("planRestore of a staged repository without packs names the root tree's pack", async () => {
  await using t = await tempDir();
  const { repo, store: fsStore } = await repository(t.dir);
  const tape = path.join(t.dir, "tape1");
  fs.mkdirSync(tape);
  for (const f of repositoryFiles(repo).others) {
    fs.copyFileSync(path.join(repo, f), path.join(tape, path.basename(f)));
  }
  const store = await StagedStore.open([tape]);
  const plan = await planRestore(store, path.join(t.dir, "dest"));
  assert.deepEqual(plan.unlistedDirs, [""]);
  assert.equal(plan.files, 0);
  assert.equal(plan.missingPacks.length, 1);
  const full = await planRestore(fsStore, path.join(t.dir, "dest"));
  assert.ok(full.packs.some((p) => p.id === plan.missingPacks[0]));
  await assert.rejects(restore(store, path.join(t.dir, "dest"), { workers: 0 }), (err: unknown) => {
    assert.ok(err instanceof MissingPacks);
    assert.match(err.message, /^pack [0-9a-f]{64} needed by this restore is not in staged:/);
    assert.match(err.message, /stage it and run again \(1 of the directories .* more packs/);
    return true;
  });
});

Deno.test("restore from a repository missing a pack fails before writing, naming the pack", async () => {
  await using t = await tempDir();
  const { repo, store } = await repository(t.dir);
  const [gone] = await packsOnlyLargeNeeds(store, t.dir);
  fs.rmSync(path.join(repo, "packs", gone!.slice(0, 2), gone!));
  const dest = path.join(t.dir, "dest");
  await assert.rejects(restore(store, dest, { workers: 0 }), {
    name: "MissingPacks",
    message:
      `pack ${gone} needed by this restore is missing from the repository ${repo}; copy it back from another copy of the repository (bendsave verify lists every affected backup)`,
  });
  assert.equal(fs.existsSync(dest), false);
  assert.deepEqual(filesUnder(path.join(repo, "locks")), [], "the lock was released");
});

Deno.test("restore from a staged repository refuses a pack copied incompletely", async () => {
  await using t = await tempDir();
  const { repo, store: fsStore } = await repository(t.dir);
  const [cut] = await packsOnlyLargeNeeds(fsStore, t.dir);
  const tapes = [path.join(t.dir, "tape1"), path.join(t.dir, "tape2")];
  stageFlat(repo, tapes);
  const copy = tapes.map((tape) => path.join(tape, cut!)).find((f) => fs.existsSync(f))!;
  fs.truncateSync(copy, 1000); // a copy from tape that stopped early
  const store = await StagedStore.open(tapes);
  const plan = await planRestore(store, path.join(t.dir, "dest"));
  assert.deepEqual(plan.missingPacks, [cut]);
  await assert.rejects(restore(store, path.join(t.dir, "dest"), { workers: 0 }), {
    name: "MissingPacks",
    message:
      `pack ${cut} needed by this restore is incomplete in ${store.location} (the size differs from the index); stage it and run again`,
  });
  assert.equal(fs.existsSync(path.join(t.dir, "dest")), false);
});
