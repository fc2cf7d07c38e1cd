import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { Buffer } from "node:buffer";
import { fileURLToPath } from "node:url";
import { backup } from "../../store/backup/backup.ts";
import { FsStore } from "../../store/drivers/fs.ts";
import { CommandFailed, InvalidInput } from "../../store/errors.ts";
import { Repository } from "../../store/repository.ts";
import { restore } from "../../store/restore/restore.ts";
import type { Catalog } from "../../formats/manifest.ts";
import { cli, filesUnder, tempDir } from "../../testing/mod.ts";
import { buildSampleCluster } from "../../testdata/make_sample_cluster.ts";
import { buildCatalog } from "./catalog.ts";
import { clusterSource, META_EXPORT_FILE } from "./cluster_source.ts";
import { splitLines } from "./meta_export.ts";

const SAMPLE_DIR = fileURLToPath(new URL("../../testdata/sample-cluster/", import.meta.url));
const SAMPLE_CONFIG = path.join(SAMPLE_DIR, "query-node.toml");
const SAMPLE_EXPORT = path.join(SAMPLE_DIR, "meta-export.jsonl");
const SAMPLE_STORAGE = path.join(SAMPLE_DIR, "storage");
const STORAGE_FILES = filesUnder(SAMPLE_STORAGE);

/**
 * The catalog `buildCatalog` derives from an export file, with the snapshots
 * of the sample's storage a backup records per table (by storage prefix).
 */
async function catalogOf(file: string): Promise<Catalog> {
  const f = await Deno.open(file);
  const c = await buildCatalog(splitLines(f.readable), "sample_tenant", "sample_cluster");
  const sample = buildSampleCluster();
  for (const d of c.databases) {
    for (const t of d.tables) {
      const owner = sample.tables.find((x) => `${x.storagePrefix}/` === t.storagePrefix);
      if (owner === undefined || owner.snapshots.length === 0) continue;
      t.snapshots = owner.snapshots.map((s) => ({
        id: s.id,
        timestampUs: s.timestampUs,
        rowCount: s.rowCount,
        location: s.location,
        formatVersion: 4,
        prevId: s.prevId,
      }));
    }
  }
  return c;
}

/** A copy of the sample cluster in `dir` (config, export, storage); returns the config path. */
function copySample(dir: string): string {
  const to = path.join(dir, "cluster");
  fs.cpSync(SAMPLE_DIR, to, { recursive: true });
  return path.join(to, "query-node.toml");
}

/** Manifest names in the repository at `repo` (none when it was never created). */
async function manifestsOf(repo: string): Promise<string[]> {
  if (!fs.existsSync(path.join(repo, "config"))) return [];
  return await (await Repository.open(await FsStore.open(repo))).manifestNames();
}

/** Backs up the sample cluster with `options` into a new repository below `dir`. */
async function backupSample(
  dir: string,
  options: Parameters<typeof clusterSource>[1],
  config = SAMPLE_CONFIG,
) {
  const repo = path.join(dir, "repo");
  const store = await FsStore.open(repo, { create: true });
  const result = await backup(store, await clusterSource(config, options), { workers: 0 });
  return { repo, store, result };
}

/** Asserts that a backup of `config` with `options` rejects and leaves no manifest. */
async function assertBackupFails(
  dir: string,
  config: string,
  options: Parameters<typeof clusterSource>[1],
  check: (e: unknown) => boolean,
): Promise<string> {
  const repo = path.join(dir, "repo");
  const store = await FsStore.open(repo, { create: true });
  await assert.rejects(
    async () => await backup(store, await clusterSource(config, options), { workers: 0 }),
    check,
  );
  assert.deepEqual(await manifestsOf(repo), [], "no manifest is written");
  assert.deepEqual(filesUnder(path.join(repo, "manifests")), []);
  return repo;
}

/** A check for `assert.rejects`: InvalidInput whose message matches each pattern or holds each string. */
function invalid(...want: (RegExp | string)[]): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof InvalidInput, `expected InvalidInput, got ${String(e)}`);
    for (const w of want) {
      if (typeof w === "string") assert.ok(e.message.includes(w), e.message);
      else assert.match(e.message, w);
    }
    return true;
  };
}

Deno.test("clusterSource with metaExportFile backs up meta then storage with the export's catalog", async () => {
  await using t = await tempDir();
  const { store, result } = await backupSample(t.dir, { metaExportFile: SAMPLE_EXPORT });
  const m = result.manifest;
  assert.deepEqual(m.parts.map((p) => p.name), ["meta", "storage"]);
  assert.deepEqual(m.parts.map((p) => p.kind), ["stream", "tree"]);
  assert.equal(m.source.type, "databend");
  assert.equal(m.source.key, "databend:sample_tenant:sample_cluster");
  assert.equal(m.source.settings["meta_source"], "file");
  assert.equal(m.source.settings["data_path"], SAMPLE_STORAGE);
  assert.equal(m.incomplete, false);
  assert.deepEqual(m.warnings, []);
  const catalog = await catalogOf(SAMPLE_EXPORT);
  assert.ok(catalog.databases.length > 0, "the sample's catalog lists databases");
  assert.deepEqual(m.catalog, catalog);
  const storage = m.parts[1]!.stats;
  assert.equal(storage.files, STORAGE_FILES.length);
  assert.equal(storage.filesNew, STORAGE_FILES.length);

  // The committed manifest says the same.
  const repo = await Repository.open(store);
  const rec = await repo.loadManifest(result.name);
  assert.deepEqual(rec.manifest.catalog, catalog);
  assert.deepEqual(rec.manifest.parts.map((p) => p.name), ["meta", "storage"]);

  const metaOut = path.join(t.dir, "meta-out");
  await restore(store, metaOut, { part: "meta", workers: 0 });
  assert.deepEqual(filesUnder(metaOut), [META_EXPORT_FILE]);
  assert.deepEqual(
    fs.readFileSync(path.join(metaOut, META_EXPORT_FILE)),
    fs.readFileSync(SAMPLE_EXPORT),
  );

  const storageOut = path.join(t.dir, "storage-out");
  await restore(store, storageOut, { part: "storage", workers: 0 });
  assert.deepEqual(filesUnder(storageOut), STORAGE_FILES);
  for (const f of STORAGE_FILES) {
    assert.deepEqual(
      fs.readFileSync(path.join(storageOut, f)),
      fs.readFileSync(path.join(SAMPLE_STORAGE, f)),
      f,
    );
  }
});

Deno.test("clusterSource with metaExportCommand records the same catalog as the file", async () => {
  await using t = await tempDir();
  const { store, result } = await backupSample(t.dir, {
    metaExportCommand: `cat '${SAMPLE_EXPORT}'`,
  });
  const m = result.manifest;
  assert.deepEqual(m.parts.map((p) => p.name), ["meta", "storage"]);
  assert.equal(m.source.settings["meta_source"], "command");
  assert.deepEqual(m.catalog, await catalogOf(SAMPLE_EXPORT));
  const metaOut = path.join(t.dir, "meta-out");
  await restore(store, metaOut, { part: "meta", workers: 0 });
  assert.deepEqual(
    fs.readFileSync(path.join(metaOut, META_EXPORT_FILE)),
    fs.readFileSync(SAMPLE_EXPORT),
  );
});

Deno.test("clusterSource fails the backup with CommandFailed when the export command exits non-zero", async () => {
  for (
    const command of [
      "echo boom >&2; exit 3",
      // A complete export on standard output does not make up for the exit status.
      `cat '${SAMPLE_EXPORT}'; echo starting >&2; echo boom >&2; exit 3`,
    ]
  ) {
    await using t = await tempDir();
    await assertBackupFails(t.dir, SAMPLE_CONFIG, { metaExportCommand: command }, (e) => {
      assert.ok(e instanceof CommandFailed, `expected CommandFailed, got ${String(e)}`);
      assert.match(e.message, /status 3/);
      assert.match(e.message, /boom/);
      assert.doesNotMatch(e.message, /starting/, "only the last line of stderr is quoted");
      return true;
    });
  }
});

Deno.test("clusterSource rejects an empty export file and writes no manifest", async () => {
  await using t = await tempDir();
  const empty = path.join(t.dir, "empty.jsonl");
  fs.writeFileSync(empty, "");
  await assertBackupFails(t.dir, SAMPLE_CONFIG, { metaExportFile: empty }, invalid(/empty/));
  const blank = path.join(t.dir, "blank.jsonl");
  fs.writeFileSync(blank, "\n\n  \n");
  await assertBackupFails(t.dir, SAMPLE_CONFIG, { metaExportFile: blank }, invalid(/empty/));
});

Deno.test("clusterSource rejects a malformed export line, naming its number, and writes no manifest", async () => {
  await using t = await tempDir();
  const lines = fs.readFileSync(SAMPLE_EXPORT, "utf8").split("\n");
  lines.splice(4, 0, "not json");
  const bad = path.join(t.dir, "bad.jsonl");
  fs.writeFileSync(bad, lines.join("\n"));
  await assertBackupFails(
    t.dir,
    SAMPLE_CONFIG,
    { metaExportFile: bad },
    invalid(/line 5\b/, /not valid JSON/, bad),
  );
  // The same through a command.
  await using t2 = await tempDir();
  await assertBackupFails(
    t2.dir,
    SAMPLE_CONFIG,
    { metaExportCommand: `cat '${bad}'` },
    invalid(/line 5\b/),
  );
});

Deno.test("clusterSource stops an export command that is still writing after a malformed line", async () => {
  await using t = await tempDir();
  const started = Date.now();
  await assertBackupFails(
    t.dir,
    SAMPLE_CONFIG,
    // Without the stop, `yes` would write forever.
    { metaExportCommand: `echo 'not json'; yes '["raft_log",{"NodeId":1}]'` },
    invalid(/line 1\b/, /not valid JSON/),
  );
  assert.ok(Date.now() - started < 30_000);
});

Deno.test("clusterSource rejects both metaExportFile and metaExportCommand", async () => {
  await assert.rejects(
    clusterSource(SAMPLE_CONFIG, {
      metaExportFile: SAMPLE_EXPORT,
      metaExportCommand: `cat '${SAMPLE_EXPORT}'`,
    }),
    invalid(/--meta-export-file/, /--meta-export-command/),
  );
});

Deno.test("clusterSource rejects a missing export file and writes no manifest", async () => {
  await using t = await tempDir();
  const missing = path.join(t.dir, "missing.jsonl");
  await assertBackupFails(
    t.dir,
    SAMPLE_CONFIG,
    { metaExportFile: missing },
    invalid(/does not exist/, missing),
  );
});

Deno.test("clusterSource rejects a missing data_path before the export is taken", async () => {
  await using t = await tempDir();
  const config = copySample(t.dir);
  fs.rmSync(path.join(path.dirname(config), "storage"), { recursive: true });
  const marker = path.join(t.dir, "export-ran");
  const repo = await assertBackupFails(
    t.dir,
    config,
    { metaExportCommand: `touch '${marker}'; cat '${SAMPLE_EXPORT}'` },
    invalid(/data_path/, /does not exist/),
  );
  assert.equal(fs.existsSync(marker), false, "the export command never ran");
  assert.deepEqual(filesUnder(path.join(repo, "packs")), [], "no pack is written");
  assert.deepEqual(filesUnder(path.join(repo, "index")), [], "no index is written");
});

Deno.test("clusterSource keeps the meta password out of every repository file and of show --json", async () => {
  await using t = await tempDir();
  const secret = "S3CRET-meta-pw-123";
  const config = path.join(t.dir, "query-node.toml");
  fs.writeFileSync(
    config,
    `[query]
tenant_id = "sample_tenant"
cluster_id = "sample_cluster"

[meta]
endpoints = ["127.0.0.1:9191"]
username = "root"
password = "${secret}"

[storage]
type = "fs"

[storage.fs]
data_path = "${SAMPLE_STORAGE}"
`,
  );
  const { repo, result } = await backupSample(t.dir, { metaExportFile: SAMPLE_EXPORT }, config);
  assert.deepEqual(result.manifest.catalog, await catalogOf(SAMPLE_EXPORT));
  const needle = new TextEncoder().encode(secret);
  const contains = (hay: Uint8Array, n: Uint8Array) => Buffer.from(hay).indexOf(n) !== -1;
  const files = filesUnder(repo);
  assert.ok(files.some((f) => f.startsWith("manifests/")), files.join(", "));
  for (const f of files) {
    assert.equal(contains(fs.readFileSync(path.join(repo, f)), needle), false, `${f} holds it`);
  }
  // The scan would see a string of the source in the manifest: the tenant is there in clear.
  const manifest = files.find((f) => f.startsWith("manifests/"))!;
  assert.ok(
    contains(fs.readFileSync(path.join(repo, manifest)), new TextEncoder().encode("sample_tenant")),
  );
  assert.ok(!JSON.stringify(result.manifest).includes(secret));

  const shown = await cli(["show", repo, "--json"]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /databend:sample_tenant:sample_cluster/);
  assert.ok(!shown.stdout.includes(secret), shown.stdout);
  assert.ok(!shown.stderr.includes(secret), shown.stderr);
});

Deno.test("clusterSource makes the second backup incremental with every storage file unchanged", async () => {
  await using t = await tempDir();
  const { store, result: first } = await backupSample(t.dir, { metaExportFile: SAMPLE_EXPORT });
  const second = await backup(
    store,
    await clusterSource(SAMPLE_CONFIG, { metaExportFile: SAMPLE_EXPORT }),
    { workers: 0 },
  );
  assert.equal(second.manifest.kind, "incremental");
  assert.equal(second.parent, first.name);
  const storage = second.manifest.parts.find((p) => p.name === "storage")!.stats;
  assert.equal(storage.files, STORAGE_FILES.length);
  assert.equal(storage.filesUnchanged, storage.files);
  assert.equal(storage.filesNew, 0);
  assert.equal(storage.bytesRead, 0);
  assert.deepEqual(second.manifest.parts[1]!.root, first.manifest.parts[1]!.root);
  // The meta export is taken again each time; its data blocks are the first backup's.
  const meta = second.manifest.parts.find((p) => p.name === "meta")!.stats;
  assert.equal(meta.bytesRead, fs.statSync(SAMPLE_EXPORT).size);
  const repo = await Repository.open(store);
  await repo.loadIndex();
  const exportNode = async (root: Uint8Array) => (await repo.loadTree(root))[0]!;
  const [a, b] = [
    await exportNode(first.manifest.parts[0]!.root),
    await exportNode(second.manifest.parts[0]!.root),
  ];
  assert.equal(b.name, META_EXPORT_FILE);
  assert.ok(b.blocks.length > 0);
  assert.deepEqual(b.blocks, a.blocks);
  assert.deepEqual(second.manifest.catalog, first.manifest.catalog);
});
