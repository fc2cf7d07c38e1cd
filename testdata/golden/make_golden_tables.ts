/**
 * Creates the golden repository of format 1.2 for Databend table snapshots:
 * `testdata/golden/v1.2-tables/repo/` and `testdata/golden/v1.2-tables/expected.json`,
 * from the sample cluster in `testdata/sample-cluster/`.
 *
 * One full backup of the sample cluster (fs storage, the meta export from its
 * file) whose catalog records, per table, the current snapshot
 * (`Table.snapshot_location`) and the snapshots the backup holds
 * (`Table.snapshots`, `TableSnapshot`), with the raft log after the state
 * machine snapshot replayed. expected.json records the catalog and, for each
 * snapshot of `sales.orders`, the objects a table restore as of its time
 * stages (path, size, SHA-256).
 *
 * Run it ONCE, then commit `repo/` and `expected.json`; never regenerate it
 * (see README.md). The script refuses to overwrite an existing fixture.
 *
 * ```sh
 * deno run --allow-all testdata/golden/make_golden_tables.ts
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
import { MemStore } from "../../store/drivers/mem.ts";
import { Repository } from "../../store/repository.ts";
import { clusterSource } from "../../sources/databend/cluster_source.ts";
import { loadQueryConfig } from "../../sources/databend/query_config.ts";
import { planTableRestore, stageTableRestore } from "../../sources/databend/table_restore.ts";
import { toHex } from "../../formats/hash.ts";
import { FORMAT_MINOR, FORMAT_VERSION } from "../../formats/version.ts";

/** Backup start time (UTC); also the manifest name. */
const T_BACKUP = Date.UTC(2026, 11, 1, 10, 0, 0);
const STAGE = "bendsave-restore/golden/";

function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

async function main(): Promise<void> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const sample = path.resolve(here, "../sample-cluster");
  const config = path.join(sample, "query-node.toml");
  const exportFile = path.join(sample, "meta-export.jsonl");
  const out = path.join(here, "v1.2-tables");
  const repoDir = path.join(out, "repo");
  if (fs.existsSync(repoDir) || fs.existsSync(path.join(out, "expected.json"))) {
    throw new Error(
      `${out} already holds a fixture: never regenerate an existing fixture (see testdata/golden/README.md)`,
    );
  }
  if (FORMAT_VERSION !== 1 || FORMAT_MINOR !== 2) {
    throw new Error(
      `this script writes the format 1.2 fixture, but the code writes ${FORMAT_VERSION}.${FORMAT_MINOR}`,
    );
  }
  const store = await FsStore.open(repoDir, { create: true });
  const r = await backup(store, await clusterSource(config, { metaExportFile: exportFile }), {
    workers: 0,
    now: () => T_BACKUP,
    labels: { fixture: "golden-v1.2-tables" },
    init: { now: new Date(T_BACKUP), packSize: 1024 * 1024 },
  });
  const m = r.manifest;
  if (m.incomplete || m.warnings.length > 0 || m.catalog === null) {
    throw new Error(`internal: ${r.name} is not a complete cluster backup with a catalog`);
  }
  const orders = m.catalog.databases.find((d) => d.name === "sales")!.tables.find((t) =>
    t.name === "orders"
  )!;
  const repo = await Repository.open(store);
  const qc = await loadQueryConfig(config);
  const restores = [];
  for (const s of orders.snapshots ?? []) {
    const target = new MemStore();
    const plan = await planTableRestore(
      repo,
      { config: qc, storage: target },
      [{ from: "sales.orders", to: "sales.orders_back" }],
      { asOfUs: s.timestampUs, stageRoot: STAGE },
    );
    await stageTableRestore(repo, target, plan);
    const objects = [];
    for (const o of plan.tables[0]!.objects) {
      const data = await target.load({ kind: "raw", name: o.staged });
      objects.push({ path: o.name, size: data.length, sha256: sha256Hex(data) });
    }
    restores.push({ asOfUs: s.timestampUs, snapshotId: plan.tables[0]!.snapshot.id, objects });
  }
  const expected = {
    formatVersion: m.formatVersion,
    formatMinor: m.formatMinor,
    manifest: r.name,
    id: toHex(r.id),
    catalog: m.catalog,
    stagePrefix: STAGE,
    ordersRestores: restores,
  };
  await store.cleanTemporaryFiles({ olderThanMs: 0 });
  fs.rmSync(path.join(repoDir, "locks"), { recursive: true, force: true });
  fs.writeFileSync(path.join(out, "expected.json"), JSON.stringify(expected, null, 2) + "\n");
  console.log(`wrote ${repoDir} (manifest ${r.name}) and expected.json`);
}

if (import.meta.main) await main();
