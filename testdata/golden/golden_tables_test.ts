/**
 * The format 1.2 golden repository of Databend table snapshots
 * (`testdata/golden/v1.2-tables/`, written once by make_golden_tables.ts,
 * never regenerated) must still say what it said: the catalog with each
 * table's current snapshot and the snapshots the backup holds; and a table
 * restore as of each snapshot of `sales.orders` must still choose that
 * snapshot and stage the same objects, byte for byte.
 *
 * The fixture is never written to: the test reads a temporary copy and
 * checks afterwards that the fixture is unchanged.
 *
 * @module
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { FsStore } from "../../store/drivers/fs.ts";
import { MemStore } from "../../store/drivers/mem.ts";
import { Repository } from "../../store/repository.ts";
import { parseQueryConfig } from "../../sources/databend/query_config.ts";
import { planTableRestore, stageTableRestore } from "../../sources/databend/table_restore.ts";
import { toHex } from "../../formats/hash.ts";

// Deliberately not imported from make_golden_tables.ts: the check of this
// fixture must not change when the generator changes.
interface Expected {
  formatVersion: number;
  formatMinor: number;
  manifest: string;
  id: string;
  catalog: unknown;
  stagePrefix: string;
  ordersRestores: {
    asOfUs: number;
    snapshotId: string;
    objects: { path: string; size: number; sha256: string }[];
  }[];
}

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), "v1.2-tables");
const EXPECTED: Expected = JSON.parse(fs.readFileSync(path.join(FIXTURE, "expected.json"), "utf8"));

function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

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

Deno.test("golden v1.2-tables: the catalog with table snapshots, and table restores as of each snapshot", async () => {
  const before = fingerprint(FIXTURE);
  const tmp = fs.mkdtempSync(
    path.join(Deno.env.get("TMPDIR") ?? "/tmp", "bendsave-golden-tables-"),
  );
  try {
    fs.cpSync(path.join(FIXTURE, "repo"), path.join(tmp, "repo"), { recursive: true });
    const repo = await Repository.open(await FsStore.open(path.join(tmp, "repo")));
    const rec = await repo.loadManifest(EXPECTED.manifest);
    assert.equal(toHex(rec.id), EXPECTED.id);
    assert.equal(rec.manifest.formatVersion, EXPECTED.formatVersion);
    assert.equal(rec.manifest.formatMinor, EXPECTED.formatMinor);
    assert.deepEqual(rec.manifest.catalog, EXPECTED.catalog);
    const file = path.join(tmp, "query-node.toml");
    const config = parseQueryConfig(
      `[query]\ntenant_id = "sample_tenant"\ncluster_id = "other"\n[meta]\nendpoints = ["127.0.0.1:9191"]\n` +
        `[storage]\ntype = "fs"\n[storage.fs]\ndata_path = "data"\n`,
      file,
    );
    assert.ok(EXPECTED.ordersRestores.length >= 2);
    for (const want of EXPECTED.ordersRestores) {
      const target = new MemStore();
      const plan = await planTableRestore(
        repo,
        { config, storage: target },
        [{ from: "sales.orders", to: "sales.orders_back" }],
        { asOfUs: want.asOfUs, stageRoot: EXPECTED.stagePrefix },
      );
      assert.equal(plan.tables[0]!.snapshot.id, want.snapshotId);
      await stageTableRestore(repo, target, plan);
      const got = [];
      for (const o of plan.tables[0]!.objects) {
        const data = await target.load({ kind: "raw", name: o.staged });
        got.push({ path: o.name, size: data.length, sha256: sha256Hex(data) });
      }
      assert.deepEqual(got, want.objects);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  assert.deepEqual(fingerprint(FIXTURE), before, "the fixture is unchanged");
});
