import assert from "node:assert/strict";
import { buildSampleCluster } from "../../testdata/make_sample_cluster.ts";
import { buildCatalog, CatalogBuilder } from "./catalog.ts";
import { splitLines } from "./meta_export.ts";

const SAMPLE = new URL("../../testdata/sample-cluster/meta-export.jsonl", import.meta.url);

function kv(key: string, data: number[] | string): string {
  const bytes = typeof data === "string" ? [...new TextEncoder().encode(data)] : data;
  return JSON.stringify([
    "state_machine/0",
    { GenericKV: { key, value: { seq: 1, meta: null, data: bytes } } },
  ]);
}

Deno.test("the sample cluster's catalog is its current state: the log after the snapshot replayed", async () => {
  const file = await Deno.open(SAMPLE);
  const c = await buildCatalog(splitLines(file.readable), "sample_tenant", "sample_cluster");
  const sample = buildSampleCluster();
  const loc = (name: string) => sample.tables.find((t) => t.name === name)!.snapshotLocation!;
  assert.deepEqual(c, {
    tenant: "sample_tenant",
    clusterId: "sample_cluster",
    databases: [
      { name: "default", id: 1, tables: [{ name: "scratch", id: 18, storagePrefix: "1/18/" }] },
      {
        name: "sales",
        id: 8,
        tables: [
          { name: "customers", id: 25, storagePrefix: "8/25/", snapshotLocation: loc("customers") },
          // The snapshot location written after the state machine snapshot.
          { name: "orders", id: 32, storagePrefix: "8/32/", snapshotLocation: loc("orders") },
          // orders_2023 (39) is dropped after the snapshot and tmp_import (65) vacuumed:
          // both excluded; returns (83) is created after the snapshot.
          { name: "returns", id: 83, storagePrefix: "8/83/", snapshotLocation: loc("returns") },
        ],
      },
      {
        name: "analytics",
        id: 13,
        tables: [
          {
            name: "page_views",
            id: 46,
            storagePrefix: "13/46/",
            snapshotLocation: loc("page_views"),
          },
          { name: "orders_shared", id: 75, storagePrefix: "8/32/" },
        ],
      },
    ],
  });
  const orders = sample.tables.find((t) => t.name === "orders")!;
  assert.equal(orders.snapshots.at(-1)!.location, loc("orders"));
});

Deno.test("the state machine snapshot alone would be stale (the case the replay fixes)", async () => {
  const lines = (await Deno.readTextFile(SAMPLE)).split("\n");
  const b = new CatalogBuilder("sample_tenant");
  for (const line of lines) if (!line.startsWith('["raft_log"')) b.addLine(line);
  const stale = b.build();
  const names = stale.databases.flatMap((d) => d.tables.map((t) => t.name));
  assert.ok(names.includes("orders_2023") && !names.includes("returns"));
  const full = new CatalogBuilder("sample_tenant");
  for (const line of lines) full.addLine(line);
  full.build();
  assert.equal(full.lastApplied, buildSampleCluster().snapshotIndex);
  assert.ok(full.replayed > 5);
});

Deno.test("another tenant sees nothing; raft_log history is ignored", async () => {
  const text = await Deno.readTextFile(SAMPLE);
  const c = await buildCatalog(text.split("\n"), "other");
  assert.deepEqual(c, { tenant: "other", clusterId: "", databases: [] });
  const raftOnly = JSON.stringify([
    "raft_log",
    { GenericKV: { key: "__fd_database/t/x", value: { seq: 1, meta: null, data: [49] } } },
  ]);
  assert.deepEqual((await buildCatalog([raftOnly], "t")).databases, []);
});

Deno.test("escaped key segments, a missing TableMeta and a dropped TableMeta", async () => {
  const dropped = [194, 1, 1, 120]; // drop_on = "x"
  const c = await buildCatalog(
    [
      kv("__fd_database/my%2Dtenant/db%20one", "3"),
      kv("__fd_table/3/t%2F1", "5"),
      kv("__fd_table/3/gone", "6"),
      kv("__fd_table_by_id/6", dropped),
      kv("__fd_table/99/orphan", "7"),
    ],
    "my-tenant",
  );
  assert.deepEqual(c.databases, [
    { name: "db one", id: 3, tables: [{ name: "t/1", id: 5, storagePrefix: "3/5/" }] },
  ]);
});

Deno.test("bad values are refused naming the key", async () => {
  await assert.rejects(
    buildCatalog(["", kv("__fd_database/t/d", "x1")], "t"),
    (e: unknown) =>
      e instanceof SyntaxError &&
      /meta key "__fd_database\/t\/d": the value is not a decimal id/.test(e.message),
  );
  await assert.rejects(
    buildCatalog([
      kv("__fd_database/t/d", "3"),
      kv("__fd_table/3/x", "4"),
      kv("__fd_table_by_id/4", [42, 9]),
    ], "t"),
    (e: unknown) =>
      e instanceof RangeError && /TableMeta of table 4 cannot be decoded/.test(e.message),
  );
  const entry = [
    10,
    14,
    ...new TextEncoder().encode("storage_prefix"),
    18,
    4,
    ...new TextEncoder().encode("../x"),
  ];
  await assert.rejects(
    buildCatalog(
      [
        kv("__fd_database/t/d", "3"),
        kv("__fd_table/3/x", "4"),
        kv("__fd_table_by_id/4", [42, entry.length, ...entry]),
      ],
      "t",
    ),
    /table 4 has a storage_prefix with "." or ".." segments/,
  );
});
