import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { backup } from "../../store/backup/backup.ts";
import { FsStore } from "../../store/drivers/fs.ts";
import { tempDir } from "../../testing/mod.ts";
import { buildSampleCluster } from "../../testdata/make_sample_cluster.ts";
import { clusterSource } from "./cluster_source.ts";
import { type CapturedObjects, scanTableSnapshots } from "./snapshot_scan.ts";

const SAMPLE_DIR = fileURLToPath(new URL("../../testdata/sample-cluster/", import.meta.url));

function copySample(dir: string): { config: string; storage: string; exportFile: string } {
  const to = path.join(dir, "cluster");
  fs.cpSync(SAMPLE_DIR, to, { recursive: true });
  return {
    config: path.join(to, "query-node.toml"),
    storage: path.join(to, "storage"),
    exportFile: path.join(to, "meta-export.jsonl"),
  };
}

async function backupCopy(dir: string, c: ReturnType<typeof copySample>) {
  const store = await FsStore.open(path.join(dir, "repo"), { create: true });
  const warnings: string[] = [];
  const source = await clusterSource(c.config, {
    metaExportFile: c.exportFile,
    onWarning: (w) => warnings.push(w),
  });
  const result = await backup(store, source, { workers: 0 });
  return { result, warnings };
}

function tableOf(
  m: Awaited<ReturnType<typeof backupCopy>>["result"]["manifest"],
  db: string,
  name: string,
) {
  return m.catalog!.databases.find((d) => d.name === db)!.tables.find((t) => t.name === name)!;
}

Deno.test("a cluster backup records per table the snapshots it holds, oldest first", async () => {
  await using t = await tempDir();
  const c = copySample(t.dir);
  const { result, warnings } = await backupCopy(t.dir, c);
  assert.deepEqual(warnings, []);
  assert.equal(result.manifest.incomplete, false);
  const orders = tableOf(result.manifest, "sales", "orders");
  const sample = buildSampleCluster().tables.find((x) => x.name === "orders")!;
  assert.deepEqual(orders.snapshots!.map((s) => s.id), sample.snapshots.map((s) => s.id));
  assert.deepEqual(orders.snapshots!.map((s) => s.rowCount), [61440, 63340, 65640, 66740]);
  assert.equal(orders.snapshots![1]!.prevId, orders.snapshots![0]!.id);
  assert.equal(tableOf(result.manifest, "default", "scratch").snapshots, undefined);
});

Deno.test("an unreadable snapshot is a warning naming it, never a failed backup", async () => {
  await using t = await tempDir();
  const c = copySample(t.dir);
  const sample = buildSampleCluster().tables.find((x) => x.name === "orders")!;
  const bad = sample.snapshots[1]!.location; // an old one: the current snapshot stays readable
  fs.writeFileSync(path.join(c.storage, bad), new Uint8Array([4, 0, 0, 0, 0, 0, 0, 0, 2, 1, 9]));
  const when = new Date(sample.snapshots[1]!.timestampUs / 1000);
  fs.utimesSync(path.join(c.storage, bad), when, when);
  const { result, warnings } = await backupCopy(t.dir, c);
  assert.equal(result.manifest.incomplete, false);
  assert.equal(warnings.length, 1, warnings.join("\n")); // once for the prefix orders_shared shares
  assert.match(warnings[0]!, new RegExp(`table sales.orders: the snapshot ${bad} cannot be read`));
  assert.ok(result.manifest.warnings.some((w) => w.includes(bad)));
  const orders = tableOf(result.manifest, "sales", "orders");
  assert.equal(orders.snapshots!.length, 3);
  assert.ok(!orders.snapshots!.some((s) => s.location === bad));
});

Deno.test("the consistency guard: a missing current snapshot or segment marks the backup incomplete, by table", async () => {
  await using t = await tempDir();
  const c = copySample(t.dir);
  const tables = buildSampleCluster().tables;
  const customers = tables.find((x) => x.name === "customers")!;
  const views = tables.find((x) => x.name === "page_views")!;
  fs.rmSync(path.join(c.storage, customers.snapshotLocation!)); // vacuumed during the backup
  const segment = views.snapshots.at(-1)!.segments[1]!;
  fs.rmSync(path.join(c.storage, segment));
  const { result, warnings } = await backupCopy(t.dir, c);
  assert.equal(result.manifest.incomplete, true);
  assert.deepEqual(warnings, [
    `table sales.customers: its current snapshot ${customers.snapshotLocation} is not in the backup`,
    `table analytics.page_views: segment ${segment} of its current snapshot is not in the backup`,
  ]);
  assert.deepEqual(result.manifest.warnings, warnings);
});

Deno.test("scanTableSnapshots over an object listing: only listed objects count", async () => {
  const files = new Map<string, Uint8Array>();
  for (const f of buildSampleCluster().files) {
    if (f.path.startsWith("storage/")) files.set(f.path.slice("storage/".length), f.bytes);
  }
  const sample = buildSampleCluster().tables.find((x) => x.name === "returns")!;
  const listing: CapturedObjects = {
    list: (dir) =>
      Promise.resolve(
        [...files.keys()].filter((n) => n.startsWith(dir) && !n.slice(dir.length).includes("/")),
      ),
    has: (n) => Promise.resolve(files.has(n)),
    read: (n) => Promise.resolve(files.get(n)!),
  };
  const catalog = {
    tenant: "t",
    clusterId: "",
    databases: [{
      name: "sales",
      id: 8,
      tables: [{
        name: "returns",
        id: 83,
        storagePrefix: "8/83/",
        snapshotLocation: sample.snapshotLocation!,
      }],
    }],
  };
  const ok = await scanTableSnapshots(catalog, listing);
  assert.deepEqual(ok.missing, []);
  assert.equal(ok.catalog.databases[0]!.tables[0]!.snapshots!.length, 1);
  files.delete(sample.snapshots[0]!.segments[0]!);
  const gone = await scanTableSnapshots(catalog, listing);
  assert.equal(gone.missing.length, 1);
  assert.match(gone.missing[0]!, /^table sales.returns: segment 8\/83\/_sg\//);
});

Deno.test("a partial backup (select) holds the whole meta export and only the selected tables' objects", async () => {
  await using t = await tempDir();
  const c = copySample(t.dir);
  const store = await FsStore.open(path.join(t.dir, "repo"), { create: true });
  const warnings: string[] = [];
  const source = await clusterSource(c.config, {
    metaExportFile: c.exportFile,
    onWarning: (w) => warnings.push(w),
    select: ["sales.orders", "analytics"],
  });
  const r = await backup(store, source, { workers: 0 });
  const m = r.manifest;
  assert.deepEqual(warnings, []);
  assert.equal(m.incomplete, false);
  assert.equal(m.source.settings["partial"], "sales.orders,analytics");
  assert.match(m.source.description, /\(partial: sales.orders, analytics\)$/);
  assert.equal(m.parts[0]!.stats.bytes, fs.statSync(c.exportFile).size, "the whole export");
  // 8/32/ (orders, shared by analytics.orders_shared) and 13/46/ (page_views) only.
  const sample = buildSampleCluster();
  const want = sample.files.filter((f) =>
    f.path.startsWith("storage/8/32/") || f.path.startsWith("storage/13/46/")
  );
  assert.equal(m.parts[1]!.stats.files, want.length);
  assert.equal(tableOf(m, "sales", "customers").snapshots, undefined);
  assert.equal(tableOf(m, "sales", "orders").snapshots!.length, 4);
  assert.equal(tableOf(m, "analytics", "page_views").snapshots!.length, 3);

  // A whole-cluster restore from it is refused.
  const { planClusterRestore } = await import("./cluster_target.ts");
  const target = path.join(t.dir, "target.toml");
  fs.writeFileSync(
    target,
    `[query]\ntenant_id = "sample_tenant"\ncluster_id = "sample_cluster"\n[meta]\nendpoints = ["127.0.0.1:9191"]\n` +
      `[storage]\ntype = "fs"\n[storage.fs]\ndata_path = ${
        JSON.stringify(path.join(t.dir, "t"))
      }\n`,
  );
  await assert.rejects(
    planClusterRestore(store, target),
    /is partial \(it holds the objects of sales.orders, analytics only\): a whole-cluster restore needs a full backup/,
  );
});

Deno.test("a partial backup of an unknown table fails naming it, writing no manifest", async () => {
  await using t = await tempDir();
  const c = copySample(t.dir);
  const store = await FsStore.open(path.join(t.dir, "repo"), { create: true });
  const source = await clusterSource(c.config, {
    metaExportFile: c.exportFile,
    select: ["sales.nope"],
  });
  await assert.rejects(
    backup(store, source, { workers: 0 }),
    /table sales.nope \(--table\) is not in the cluster's catalog/,
  );
});

Deno.test("scanTableSnapshots reads a snapshot the parent backup already read only for the guard", async () => {
  const files = new Map<string, Uint8Array>();
  for (const f of buildSampleCluster().files) {
    if (f.path.startsWith("storage/")) files.set(f.path.slice("storage/".length), f.bytes);
  }
  const reads: string[] = [];
  const listing: CapturedObjects = {
    list: (dir) =>
      Promise.resolve(
        [...files.keys()].filter((n) => n.startsWith(dir) && !n.slice(dir.length).includes("/")),
      ),
    has: (n) => Promise.resolve(files.has(n)),
    read: (n) => {
      reads.push(n);
      return Promise.resolve(files.get(n)!);
    },
  };
  const orders = buildSampleCluster().tables.find((x) => x.name === "orders")!;
  const catalog = {
    tenant: "t",
    clusterId: "",
    databases: [{
      name: "sales",
      id: 8,
      tables: [{
        name: "orders",
        id: 32,
        storagePrefix: "8/32/",
        snapshotLocation: orders.snapshotLocation!,
      }],
    }],
  };
  const first = await scanTableSnapshots(catalog, listing);
  assert.equal(reads.length, 4);
  const known = new Map(
    first.catalog.databases[0]!.tables[0]!.snapshots!.map((s) => [s.location, s]),
  );
  reads.length = 0;
  const second = await scanTableSnapshots(catalog, listing, { known });
  assert.deepEqual(second.catalog, first.catalog);
  assert.deepEqual(reads, [orders.snapshotLocation], "only the current snapshot, for its segments");
});
