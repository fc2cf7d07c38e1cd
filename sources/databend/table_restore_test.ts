import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { backup } from "../../store/backup/backup.ts";
import { FsStore } from "../../store/drivers/fs.ts";
import { MemStore } from "../../store/drivers/mem.ts";
import { Repository } from "../../store/repository.ts";
import { tempDir } from "../../testing/mod.ts";
import { buildSampleCluster } from "../../testdata/make_sample_cluster.ts";
import { clusterSource } from "./cluster_source.ts";
import { loadQueryConfig } from "./query_config.ts";
import { planTableRestore, stageTableRestore } from "./table_restore.ts";

const SAMPLE_DIR = fileURLToPath(new URL("../../testdata/sample-cluster/", import.meta.url));

function copySample(dir: string) {
  const to = path.join(dir, "cluster");
  fs.cpSync(SAMPLE_DIR, to, { recursive: true });
  return {
    config: path.join(to, "query-node.toml"),
    storage: path.join(to, "storage"),
    exportFile: path.join(to, "meta-export.jsonl"),
  };
}

Deno.test("planTableRestore takes a snapshot purged since from the older backup that holds it", async () => {
  await using t = await tempDir();
  const c = copySample(t.dir);
  const store = await FsStore.open(path.join(t.dir, "repo"), { create: true });
  const first = await backup(
    store,
    await clusterSource(c.config, { metaExportFile: c.exportFile }),
    {
      workers: 0,
    },
  );
  // The cluster purges the oldest snapshot of sales.orders (past its retention).
  const orders = buildSampleCluster().tables.find((x) => x.name === "orders")!;
  fs.rmSync(path.join(c.storage, orders.snapshots[0]!.location));
  const second = await backup(
    store,
    await clusterSource(c.config, { metaExportFile: c.exportFile }),
    {
      workers: 0,
    },
  );
  const newest = second.manifest.catalog!.databases[1]!.tables.find((x) => x.name === "orders")!;
  assert.equal(newest.snapshots!.length, 3, "the second backup no longer holds it");

  const repo = await Repository.open(store);
  const config = await loadQueryConfig(c.config);
  const target = new MemStore();
  const sel = [{ from: "sales.orders", to: "sales.orders_v1" }];
  const old = await planTableRestore(repo, { config, storage: target }, sel, {
    asOfUs: orders.snapshots[0]!.timestampUs,
    stageRoot: "s/",
  });
  assert.equal(old.tables[0]!.snapshot.id, orders.snapshots[0]!.id);
  assert.equal(old.tables[0]!.snapshot.backup, first.name);
  assert.deepEqual(old.tables[0]!.window, {
    from: orders.snapshots[0]!.timestamp,
    to: orders.snapshots[3]!.timestamp,
  });
  const later = await planTableRestore(repo, { config, storage: target }, sel, {
    asOfUs: orders.snapshots[2]!.timestampUs,
    stageRoot: "s/",
  });
  assert.equal(later.tables[0]!.snapshot.backup, second.name, "the newest backup holding it");

  const written = await stageTableRestore(repo, target, old);
  assert.deepEqual(
    written,
    [...orders.snapshots[0]!.objects.map((o) => `s/${o}`), "s/8/32/last_snapshot_location_hint_v2"],
  );
  for (const o of orders.snapshots[0]!.objects) {
    const want = buildSampleCluster().files.find((f) => f.path === `storage/${o}`)!.bytes;
    assert.deepEqual(await target.load({ kind: "raw", name: `s/${o}` }), want, o);
  }
});

Deno.test("planTableRestore: an unreadable current snapshot, and a table without data, are refused in words", async () => {
  await using t = await tempDir();
  const c = copySample(t.dir);
  const customers = buildSampleCluster().tables.find((x) => x.name === "customers")!;
  fs.writeFileSync(path.join(c.storage, customers.snapshotLocation!), "{broken");
  const store = await FsStore.open(path.join(t.dir, "repo"), { create: true });
  const r = await backup(store, await clusterSource(c.config, { metaExportFile: c.exportFile }), {
    workers: 0,
  });
  assert.ok(r.manifest.warnings.some((w) => w.includes(customers.snapshotLocation!)));
  const repo = await Repository.open(store);
  const config = await loadQueryConfig(c.config);
  const target = { config, storage: new MemStore() };
  await assert.rejects(
    planTableRestore(repo, target, [{ from: "sales.customers", to: "sales.c2" }]),
    /backup .* does not hold the current snapshot of sales.customers: give --as-of/,
  );
  await assert.rejects(
    planTableRestore(repo, target, [{ from: "default.scratch", to: "default.s2" }]),
    /table default.scratch has no data in backup .*: nothing to restore/,
  );
  await assert.rejects(
    planTableRestore(repo, target, [{ from: "sales.orders", to: "sales.o2" }], {
      stageRoot: "../x/",
    }),
    /stage prefix "..\/x\/" must be a relative path of plain names/,
  );
  await assert.rejects(
    planTableRestore(repo, target, [{ from: "sales.orders", to: "sales.o2" }], { stageRoot: "8/" }),
    /stage prefix 8\/ collides with the storage prefix 8\/25\/ of table sales.customers/,
  );
});

Deno.test("planTableRestore stages the statistics file (ANALYZE) the chosen snapshot names", async () => {
  await using t = await tempDir();
  const c = copySample(t.dir);
  const store = await FsStore.open(path.join(t.dir, "repo"), { create: true });
  await backup(store, await clusterSource(c.config, { metaExportFile: c.exportFile }), {
    workers: 0,
  });
  const views = buildSampleCluster().tables.find((x) => x.name === "page_views")!;
  const stats = views.snapshots.at(-1)!.objects.find((o) => o.includes("/_ts/"));
  assert.ok(stats !== undefined, "the sample's newest page_views snapshot names a _ts file");
  const repo = await Repository.open(store);
  const config = await loadQueryConfig(c.config);
  const plan = await planTableRestore(
    repo,
    { config, storage: new MemStore() },
    [{ from: "analytics.page_views", to: "analytics.views_back" }],
    { stageRoot: "s/" },
  );
  assert.deepEqual(plan.tables[0]!.objects.map((o) => o.name), views.snapshots.at(-1)!.objects);
  const first = await planTableRestore(
    repo,
    { config, storage: new MemStore() },
    [{ from: "analytics.page_views", to: "analytics.views_back" }],
    { stageRoot: "s/", asOfUs: views.snapshots[0]!.timestampUs },
  );
  assert.ok(!first.tables[0]!.objects.some((o) => o.name.includes("/_ts/")), "not before ANALYZE");
});
