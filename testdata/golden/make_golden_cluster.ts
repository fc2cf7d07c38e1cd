/**
 * Creates the golden repository of format 1.1 for a Databend cluster:
 * `testdata/golden/v1.1-cluster/repo/` and
 * `testdata/golden/v1.1-cluster/expected.json`, from the sample cluster in
 * `testdata/sample-cluster/`.
 *
 * Two backups of the same source key `databend:sample_tenant:sample_cluster`:
 *
 * 1. the cluster as `clusterSource` reads it from fs storage: part `meta` (the
 *    export file, a stream) and part `storage` (a directory tree);
 * 2. the same cluster as if its storage were an S3 bucket: the same `meta`
 *    part, and part `storage` as an `ObjectsPart` listing every storage file
 *    with a fixed modification time and an S3-style ETag (the quoted MD5 of
 *    the content), so that the tree nodes carry `etag` (format 1.1).
 *
 * Both manifests carry the catalog derived from the export (format 1.1).
 *
 * Run it ONCE, then commit `repo/` and `expected.json`. Never regenerate the
 * fixture: its point is that it was written by the code of format 1.1 (see
 * README.md). The script refuses to overwrite an existing fixture.
 *
 * ```sh
 * deno run --allow-all testdata/golden/make_golden_cluster.ts
 * ```
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { backup } from "../../store/backup/backup.ts";
import { FsStore } from "../../store/drivers/fs.ts";
import { clusterSource, META_EXPORT_FILE } from "../../sources/databend/cluster_source.ts";
import type { ObjectsPart, Source, SourceObject } from "../../sources/types.ts";
import { DEFAULT_FASTCDC } from "../../formats/chunker.ts";
import type { Catalog } from "../../formats/manifest.ts";
import { toHex } from "../../formats/hash.ts";
import { FORMAT_MINOR, FORMAT_VERSION } from "../../formats/version.ts";

/** One restored storage file, as expected.json records it. */
export interface ExpectedFile {
  /** Path relative to the storage root, with `/`. */
  path: string;
  size: number;
  /** Permission bits the restore sets. */
  mode: number;
  /** Modification time (ms since the epoch) the restore sets. */
  mtimeMs: number;
  /** SHA-256 (hex) of the content. */
  sha256: string;
  /** The node's ETag (quotes included); only for object-store backups. */
  etag?: string;
}

/** One manifest of the fixture, as expected.json records it. */
export interface ExpectedManifest {
  /** SHA-256 of the manifest file (its id). */
  id: string;
  formatVersion: number;
  formatMinor: number;
  kind: "full" | "incremental";
  parent: string | null;
  sourceType: string;
  sourceKey: string;
  /** `settings.storage_type` of the source: "fs" or "s3". */
  storageType: string;
  parts: { name: string; kind: "tree" | "stream" }[];
  catalog: Catalog;
  /** The meta export (the single file of the `meta` part). */
  meta: { file: string; size: number; sha256: string };
  /** Every directory of the restored storage (empty ones included), sorted. */
  storageDirs: string[];
  /** Every file of the restored storage, sorted by path. */
  storageFiles: ExpectedFile[];
}

/** The content of expected.json. */
export interface ExpectedCluster {
  formatVersion: number;
  formatMinor: number;
  tenant: string;
  cluster: string;
  /** Manifest file name -> what it holds. */
  manifests: Record<string, ExpectedManifest>;
}

/** Backup start times (UTC) of the two backups; also the manifest names. */
const T_FS = Date.UTC(2026, 10, 20, 10, 0, 0);
const T_S3 = Date.UTC(2026, 10, 21, 10, 0, 0);
/** LastModified of every object of the S3-style backup (milliseconds are deliberate). */
const OBJECT_MTIME = Date.UTC(2026, 10, 19, 8, 30, 0) + 789;
const TENANT = "sample_tenant";
const CLUSTER = "sample_cluster";
const SOURCE_KEY = `databend:${TENANT}:${CLUSTER}`;
/** Bucket and root of the S3 config (fake; nothing connects to it). */
const S3_BUCKET = "sample-databend-data";
const S3_ROOT = "sample-cluster/";
const S3_LOCATION = `s3://${S3_BUCKET}/${S3_ROOT}`;
/** Settings a Databend source may record; anything else could be a secret. */
const ALLOWED_SETTINGS = new Set([
  "tenant",
  "cluster",
  "storage_type",
  "meta_endpoints",
  "meta_source",
  "host",
  "data_path",
  "bucket",
  "root",
  "endpoint_url",
  "region",
]);

function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** S3's ETag of an object uploaded in one part: the quoted MD5 (hex) of its content. */
function s3Etag(data: Uint8Array): string {
  return `"${createHash("md5").update(data).digest("hex")}"`;
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
      } else if (e.isFile()) {
        files.push(r);
      } else {
        throw new Error(`${path.join(root, r)} is neither a file nor a directory`);
      }
    }
  };
  visit("");
  return { files: files.sort(), dirs: dirs.sort() };
}

/** The directories that the files' paths imply (what an object store has). */
function impliedDirs(files: string[]): string[] {
  const dirs = new Set<string>();
  for (const f of files) {
    const segments = f.split("/");
    for (let i = 1; i < segments.length; i++) dirs.add(segments.slice(0, i).join("/"));
  }
  return [...dirs].sort();
}

/** A databend-query config of the sample cluster whose storage is an S3 bucket (no keys). */
function s3Config(dir: string): string {
  const file = path.join(dir, "query-node-s3.toml");
  fs.writeFileSync(
    file,
    `[query]
tenant_id = "${TENANT}"
cluster_id = "${CLUSTER}"

[meta]
endpoints = ["127.0.0.1:9191"]

[storage]
type = "s3"

[storage.s3]
bucket = "${S3_BUCKET}"
root = "${S3_ROOT}"
endpoint_url = "http://127.0.0.1:9000"
region = "us-east-1"
`,
  );
  return file;
}

/**
 * The sample cluster with object-store semantics: the meta part and the
 * catalog of a `clusterSource` of the fs config, the info of a
 * `clusterSource` of an S3 config (same key), and the storage files listed
 * as objects with fixed times and ETags.
 */
async function objectStoreSource(
  fsConfig: string,
  s3ConfigFile: string,
  exportFile: string,
  storageRoot: string,
): Promise<Source> {
  const s3 = await clusterSource(s3ConfigFile, { metaExportFile: exportFile });
  const fsSource = await clusterSource(fsConfig, { metaExportFile: exportFile });
  const [meta] = await fsSource.parts();
  if (!meta || meta.kind !== "stream" || meta.name !== "meta") {
    throw new Error("internal: the first part of a cluster source is not the meta stream");
  }
  const names = walk(storageRoot).files;
  const storage: ObjectsPart = {
    name: "storage",
    kind: "objects",
    // As clusterSource's own S3 storage part.
    chunker: DEFAULT_FASTCDC,
    location: S3_LOCATION,
    async *list(): AsyncIterable<SourceObject> {
      for (const name of names) {
        const data = await fs.promises.readFile(path.join(storageRoot, name));
        yield { name, size: data.length, mtimeMs: OBJECT_MTIME, etag: s3Etag(data) };
      }
    },
    read: async (name) => new Uint8Array(await fs.promises.readFile(path.join(storageRoot, name))),
  };
  return {
    info: s3.info,
    parts: () => Promise.resolve([meta, storage]),
    // Asked after every part is backed up: the fs source built it from the meta part it streamed.
    catalog: () => fsSource.catalog?.() ?? null,
    close: async () => {
      await fsSource.close?.();
      await s3.close?.();
    },
  };
}

async function main(): Promise<void> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const sample = path.resolve(here, "../sample-cluster");
  const fsConfig = path.join(sample, "query-node.toml");
  const exportFile = path.join(sample, "meta-export.jsonl");
  const storageRoot = path.join(sample, "storage");
  const out = path.join(here, "v1.1-cluster");
  const repoDir = path.join(out, "repo");
  if (fs.existsSync(repoDir) || fs.existsSync(path.join(out, "expected.json"))) {
    throw new Error(
      `${out} already holds a fixture: never regenerate an existing fixture (see testdata/golden/README.md)`,
    );
  }
  if (FORMAT_VERSION !== 1 || FORMAT_MINOR !== 1) {
    throw new Error(
      `this script writes the format 1.1 fixture, but the code writes ${FORMAT_VERSION}.${FORMAT_MINOR}`,
    );
  }
  const tmp = fs.mkdtempSync(
    path.join(Deno.env.get("TMPDIR") ?? "/tmp", "bendsave-golden-cluster-"),
  );
  try {
    const store = await FsStore.open(repoDir, { create: true });
    const labels = { fixture: "golden-v1.1-cluster" };

    const first = await backup(
      store,
      await clusterSource(fsConfig, { metaExportFile: exportFile }),
      {
        workers: 0,
        now: () => T_FS,
        labels,
        init: { now: new Date(T_FS), packSize: 1024 * 1024 },
      },
    );
    const second = await backup(
      store,
      await objectStoreSource(fsConfig, s3Config(tmp), exportFile, storageRoot),
      { workers: 0, now: () => T_S3, labels },
    );
    if (
      first.manifest.kind !== "full" || second.manifest.kind !== "incremental" ||
      second.parent !== first.name
    ) {
      throw new Error("internal: the second backup is not an incremental child of the first");
    }

    const exportBytes = fs.readFileSync(exportFile);
    const { files, dirs } = walk(storageRoot);
    const expected: ExpectedCluster = {
      formatVersion: FORMAT_VERSION,
      formatMinor: FORMAT_MINOR,
      tenant: TENANT,
      cluster: CLUSTER,
      manifests: {},
    };
    for (const [r, objects] of [[first, false], [second, true]] as const) {
      const m = r.manifest;
      if (m.source.key !== SOURCE_KEY || m.incomplete || m.warnings.length > 0) {
        throw new Error(`internal: ${r.name} is not a complete backup of ${SOURCE_KEY}`);
      }
      for (const k of Object.keys(m.source.settings)) {
        if (!ALLOWED_SETTINGS.has(k)) throw new Error(`internal: ${r.name} records setting ${k}`);
      }
      if (!m.catalog || m.catalog.databases.length === 0) {
        throw new Error(`internal: ${r.name} has no catalog`);
      }
      expected.manifests[r.name] = {
        id: toHex(r.id),
        formatVersion: m.formatVersion,
        formatMinor: m.formatMinor,
        kind: m.kind,
        parent: m.parentName,
        sourceType: m.source.type,
        sourceKey: m.source.key,
        storageType: m.source.settings["storage_type"] ?? "",
        parts: m.parts.map((p) => ({ name: p.name, kind: p.kind })),
        catalog: m.catalog,
        meta: { file: META_EXPORT_FILE, size: exportBytes.length, sha256: sha256Hex(exportBytes) },
        storageDirs: objects ? impliedDirs(files) : dirs,
        storageFiles: files.map((f) => {
          const p = path.join(storageRoot, f);
          const data = fs.readFileSync(p);
          const st = fs.statSync(p);
          return {
            path: f,
            size: data.length,
            mode: objects ? 0o644 : st.mode & 0o7777,
            mtimeMs: objects ? OBJECT_MTIME : st.mtimeMs,
            sha256: sha256Hex(data),
            ...(objects ? { etag: s3Etag(data) } : {}),
          };
        }),
      };
    }
    const removed = await store.cleanTemporaryFiles({ olderThanMs: 0 });
    fs.rmSync(path.join(repoDir, "locks"), { recursive: true, force: true });
    fs.writeFileSync(path.join(out, "expected.json"), JSON.stringify(expected, null, 2) + "\n");
    console.log(
      `wrote ${repoDir} (manifests ${first.name}, ${second.name}; ${removed} temporary files removed) and expected.json`,
    );
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
