/**
 * The format 1.1 golden repository of a Databend cluster
 * (`testdata/golden/v1.1-cluster/`, written once by make_golden_cluster.ts,
 * never regenerated) must still restore as a cluster, byte for byte, and
 * still say what it said: format minor, parts, catalog, and the ETags of the
 * object-store backup's tree nodes; and it must verify clean with read-data.
 *
 * The fixture is never written to: the test copies `repo/` to a temporary
 * directory first and checks afterwards that the fixture is unchanged.
 *
 * @module
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { FsStore } from "../../store/drivers/fs.ts";
import { Repository } from "../../store/repository.ts";
import { verify } from "../../store/verify.ts";
import { planClusterRestore, restoreCluster } from "../../sources/databend/cluster_target.ts";
import { toHex } from "../../formats/hash.ts";
import { NodeType } from "../../formats/tree.ts";

// Deliberately not imported from make_golden_cluster.ts: the check of this
// fixture must not change when a generator changes.
interface ExpectedFile {
  path: string;
  size: number;
  mode: number;
  mtimeMs: number;
  sha256: string;
  etag?: string;
}

interface ExpectedManifest {
  id: string;
  formatVersion: number;
  formatMinor: number;
  kind: "full" | "incremental";
  parent: string | null;
  sourceType: string;
  sourceKey: string;
  storageType: string;
  parts: { name: string; kind: "tree" | "stream" }[];
  catalog: unknown;
  meta: { file: string; size: number; sha256: string };
  storageDirs: string[];
  storageFiles: ExpectedFile[];
}

interface ExpectedCluster {
  formatVersion: number;
  formatMinor: number;
  tenant: string;
  cluster: string;
  manifests: Record<string, ExpectedManifest>;
}

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), "v1.1-cluster");
const EXPECTED: ExpectedCluster = JSON.parse(
  fs.readFileSync(path.join(FIXTURE, "expected.json"), "utf8"),
);
const NAMES = Object.keys(EXPECTED.manifests).sort();

function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Every file below `dir` with its SHA-256 (to prove the fixture is untouched). */
function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) visit(r);
      else out[r] = sha256Hex(fs.readFileSync(path.join(dir, r)));
    }
  };
  visit("");
  return out;
}

/** Files and directories below `root` (relative, `/`-separated, sorted). */
function walk(root: string): { files: string[]; dirs: string[] } {
  const files: string[] = [];
  const dirs: string[] = [];
  const visit = (rel: string) => {
    for (
      const e of fs.readdirSync(rel === "" ? root : path.join(root, rel), { withFileTypes: true })
    ) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        dirs.push(r);
        visit(r);
      } else {
        files.push(r);
      }
    }
  };
  visit("");
  return { files: files.sort(), dirs: dirs.sort() };
}

/** A databend-query config of the sample tenant and cluster with fs storage in `./data`. */
function targetConfig(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "query-node.toml");
  fs.writeFileSync(
    file,
    `[query]
tenant_id = "${EXPECTED.tenant}"
cluster_id = "${EXPECTED.cluster}"

[meta]
endpoints = ["127.0.0.1:9191"]

[storage]
type = "fs"

[storage.fs]
data_path = "./data"
`,
  );
  return file;
}

/** File nodes of a tree, by path: etag (or undefined) and size. */
async function fileNodes(
  repo: Repository,
  root: Uint8Array,
): Promise<Map<string, { etag: string | undefined; size: number }>> {
  const out = new Map<string, { etag: string | undefined; size: number }>();
  const visit = async (id: Uint8Array, rel: string) => {
    for (const n of await repo.loadTree(id)) {
      const p = rel === "" ? n.name : `${rel}/${n.name}`;
      if (n.type === NodeType.file) out.set(p, { etag: n.etag, size: n.size });
      else if (n.type === NodeType.dir && n.subtree) await visit(n.subtree, p);
    }
  };
  await visit(root, "");
  return out;
}

Deno.test("golden v1.1-cluster holds two cluster backups of format 1.1", () => {
  assert.equal(EXPECTED.formatVersion, 1);
  assert.equal(EXPECTED.formatMinor, 1);
  assert.equal(NAMES.length, 2);
  const storageTypes = NAMES.map((n) => EXPECTED.manifests[n]!.storageType);
  assert.deepEqual(storageTypes, ["fs", "s3"]);
  assert.ok(
    EXPECTED.manifests[NAMES[1]!]!.storageFiles.every((f) => typeof f.etag === "string"),
    "the object-store backup records an etag per file",
  );
});

Deno.test("golden v1.1-cluster restores, reads and verifies as recorded", async (t) => {
  const tmp = fs.mkdtempSync(
    path.join(Deno.env.get("TMPDIR") ?? "/tmp", "bendsave-golden-v1.1-cluster-"),
  );
  const before = fingerprint(path.join(FIXTURE, "repo"));
  try {
    const repoDir = path.join(tmp, "repo");
    fs.cpSync(path.join(FIXTURE, "repo"), repoDir, { recursive: true });
    const store = await FsStore.open(repoDir);

    await t.step("config says format 1.1", async () => {
      const config = JSON.parse(fs.readFileSync(path.join(repoDir, "config"), "utf8"));
      assert.equal(config.format, "bendsave-repository");
      assert.equal(config.version, EXPECTED.formatVersion);
      assert.equal(config.minor, EXPECTED.formatMinor);
      const repo = await Repository.open(store);
      assert.equal(repo.config.version, EXPECTED.formatVersion);
      assert.deepEqual(await repo.manifestNames(), NAMES);
    });

    for (const name of NAMES) {
      const want = EXPECTED.manifests[name]!;

      await t.step(`${name}: manifest, parts and catalog`, async () => {
        const repo = await Repository.open(store);
        const rec = await repo.loadManifest(name);
        const m = rec.manifest;
        assert.equal(
          sha256Hex(fs.readFileSync(path.join(repoDir, "manifests", name))),
          want.id,
          "manifest file hash",
        );
        assert.equal(toHex(rec.id), want.id);
        assert.equal(m.formatVersion, want.formatVersion);
        assert.equal(m.formatMinor, want.formatMinor);
        assert.equal(m.formatMinor, 1);
        assert.equal(m.kind, want.kind);
        assert.equal(m.parentName, want.parent);
        assert.equal(m.source.type, want.sourceType);
        assert.equal(m.source.key, want.sourceKey);
        assert.equal(m.source.settings["storage_type"], want.storageType);
        assert.equal(m.incomplete, false);
        assert.deepEqual(m.warnings, []);
        assert.deepEqual(m.parts.map((p) => ({ name: p.name, kind: p.kind })), want.parts);
        assert.deepEqual(m.catalog, want.catalog);
      });

      await t.step(`${name}: storage tree nodes (sizes, etags)`, async () => {
        const repo = await Repository.open(store);
        const { manifest } = await repo.loadManifest(name);
        await repo.loadIndex();
        const storage = manifest.parts.find((p) => p.name === "storage");
        assert.ok(storage, "the manifest has a storage part");
        const nodes = await fileNodes(repo, storage.root);
        assert.deepEqual([...nodes.keys()].sort(), want.storageFiles.map((f) => f.path));
        for (const f of want.storageFiles) {
          const n = nodes.get(f.path)!;
          assert.equal(n.size, f.size, `${f.path}: size`);
          assert.equal(n.etag, f.etag, `${f.path}: etag`);
        }
      });

      await t.step(`${name}: restoreCluster into fs storage`, async () => {
        const dir = path.join(tmp, `cluster-${name}`);
        const config = targetConfig(dir);
        const metaExportTo = path.join(dir, "restored-meta-export.jsonl");
        const plan = await planClusterRestore(store, config, { manifest: name, metaExportTo });
        assert.equal(plan.manifest, name);
        assert.equal(plan.manifestId, want.id);
        assert.equal(plan.tenant, EXPECTED.tenant);
        assert.equal(plan.clusterId, EXPECTED.cluster);
        assert.equal(plan.metaExport.bytes, want.meta.size);
        assert.deepEqual(plan.notes, []);

        const r = await restoreCluster(store, config, { manifest: name, metaExportTo });
        assert.equal(r.manifest, name);
        assert.equal(r.storageType, "fs");
        assert.equal(r.metaImported, false);

        const meta = fs.readFileSync(metaExportTo);
        assert.equal(meta.length, want.meta.size, "meta export size");
        assert.equal(sha256Hex(meta), want.meta.sha256, "meta export content");

        const data = path.join(dir, "data");
        const got = walk(data);
        assert.deepEqual(got.files, want.storageFiles.map((f) => f.path), "restored files");
        assert.deepEqual(got.dirs, want.storageDirs, "restored directories");
        for (const f of want.storageFiles) {
          const p = path.join(data, f.path);
          const st = fs.statSync(p);
          assert.equal(st.size, f.size, `${f.path}: size`);
          assert.equal(sha256Hex(fs.readFileSync(p)), f.sha256, `${f.path}: content`);
          assert.equal((st.mode & 0o7777).toString(8), f.mode.toString(8), `${f.path}: mode`);
          assert.equal(Math.round(st.mtimeMs), Math.round(f.mtimeMs), `${f.path}: mtime`);
        }
      });
    }

    await t.step("verify with read-data on a copy is clean", async () => {
      const copy = path.join(tmp, "verify-repo");
      fs.cpSync(path.join(FIXTURE, "repo"), copy, { recursive: true });
      const packs = Object.keys(fingerprint(path.join(copy, "packs"))).length;
      const report = await verify(await FsStore.open(copy), { readData: true });
      assert.deepEqual(report.problems, []);
      assert.equal(report.ok, true);
      assert.equal(report.checked.manifests, NAMES.length);
      assert.equal(report.checked.packsRead, packs);
    });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  assert.deepEqual(
    fingerprint(path.join(FIXTURE, "repo")),
    before,
    "the fixture must never be written to",
  );
});
