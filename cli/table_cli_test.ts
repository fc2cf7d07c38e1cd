/**
 * End to end through the CLI: per-table snapshots of a Databend cluster
 * backup in `show` and `list`, and table-level restore.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { cli, tempDir } from "../testing/mod.ts";
import { buildSampleCluster } from "../testdata/make_sample_cluster.ts";

const SAMPLE = path.resolve(import.meta.dirname!, "../testdata/sample-cluster");
const SAMPLE_CONFIG = path.join(SAMPLE, "query-node.toml");
const SAMPLE_EXPORT = path.join(SAMPLE, "meta-export.jsonl");

/** Backs up the sample cluster into `repo` through the CLI. */
async function backupSample(repo: string, extra: string[] = []): Promise<void> {
  const b = await cli([
    "backup",
    "--from",
    SAMPLE_CONFIG,
    "--to",
    repo,
    "--meta-export-file",
    SAMPLE_EXPORT,
    ...extra,
  ]);
  assert.equal(b.code, 0, b.stderr);
}

Deno.test("show and list --json give per table its snapshots and the window", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  await backupSample(repo);
  const orders = buildSampleCluster().tables.find((x) => x.name === "orders")!;

  const shown = await cli(["show", repo, "--json"]);
  assert.equal(shown.code, 0, shown.stderr);
  const tables = JSON.parse(shown.stdout).tables as {
    table: string;
    current_snapshot: string | null;
    snapshots: { id: string; time: string; row_count: number; location: string }[];
    window: { from: string; to: string } | null;
  }[];
  const o = tables.find((x) => x.table === "sales.orders")!;
  assert.deepEqual(o.snapshots.map((s) => s.id), orders.snapshots.map((s) => s.id));
  assert.deepEqual(o.snapshots.map((s) => s.time), orders.snapshots.map((s) => s.timestamp));
  assert.deepEqual(o.window, {
    from: orders.snapshots[0]!.timestamp,
    to: orders.snapshots.at(-1)!.timestamp,
  });
  assert.equal(o.current_snapshot, orders.snapshotLocation);
  assert.equal(tables.find((x) => x.table === "default.scratch")!.window, null);

  const text = await cli(["show", repo]);
  assert.match(
    text.stdout,
    new RegExp(
      `table    sales.orders .*\\n +restorable ${orders.snapshots[0]!.timestamp} to ${
        orders.snapshots.at(-1)!.timestamp
      } \\(4 snapshots\\)`,
    ),
  );
  assert.match(
    text.stdout,
    new RegExp(`snapshot ${orders.snapshots.at(-1)!.id} .* 66740 rows \\(current\\)`),
  );

  const listed = await cli(["list", repo, "--json"]);
  assert.equal(listed.code, 0, listed.stderr);
  const [first] = JSON.parse(listed.stdout) as { tables: typeof tables }[];
  assert.deepEqual(first!.tables, tables);
});
