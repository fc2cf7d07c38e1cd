import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { backup } from "../../store/backup/backup.ts";
import { FsStore } from "../../store/drivers/fs.ts";
import { InvalidInput } from "../../store/errors.ts";
import { Repository } from "../../store/repository.ts";
import { pgSource } from "./pg_source.ts";
import {
  loadRelationMap,
  PG_RELATIONS_PART,
  type PgRelationMap,
  relationSelector,
  selectionOf,
  splitName,
  uriForDatabase,
  withRelationMap,
} from "./relation_map.ts";
import { pgIgnore, startPgCluster } from "../../testing/pg_cluster.ts";
import { cli, tempDir } from "../../testing/mod.ts";

Deno.test("splitName splits at dots, honouring double quotes", () => {
  assert.deepEqual(splitName("shop.billing.invoices", 3), ["shop", "billing", "invoices"]);
  assert.deepEqual(splitName('shop."a.b"."x""y"', 3), ["shop", "a.b", 'x"y']);
  assert.deepEqual(splitName("billing.old", 2), ["billing", "old"]);
  for (const bad of ["a.b", "a.b.c.d", "a..c", "a.b.", '"a.b.c']) {
    assert.throws(() => splitName(bad, 3), InvalidInput, bad);
  }
});

Deno.test("uriForDatabase replaces the database and keeps the parameters", () => {
  assert.equal(
    uriForDatabase("postgresql://postgres@/postgres?host=/tmp/s&port=5", "shop db"),
    "postgresql://postgres@/shop%20db?host=/tmp/s&port=5",
  );
  assert.equal(uriForDatabase("postgres://u:p@h:5432", "x"), "postgres://u:p@h:5432/x");
});

const MAP: PgRelationMap = {
  version: 1,
  time: "2026-01-01T00:00:00Z",
  databases: [{
    name: "shop",
    oid: "16384",
    path: "base/16384",
    catalog: { "base/16384/1259": 8192, "base/16384/1259_fsm": 8192 },
    schemas: [{
      name: "billing",
      oid: "16385",
      tables: [
        {
          name: "invoices",
          oid: "16386",
          kind: "r",
          relations: [
            {
              role: "table",
              name: "invoices",
              oid: "16386",
              path: "base/16384/16386",
              files: { "base/16384/16386": 8192, "base/16384/16386.1": 8192 },
            },
            {
              role: "index",
              name: "invoices_pkey",
              oid: "16390",
              path: "base/16384/16390",
              files: { "base/16384/16390": 8192 },
            },
          ],
        },
        {
          name: "lines",
          oid: "16400",
          kind: "r",
          relations: [
            {
              role: "table",
              name: "lines",
              oid: "16400",
              path: "base/16384/16400",
              files: { "base/16384/16400": 8192 },
            },
          ],
        },
      ],
    }],
  }, {
    name: "other",
    oid: "17000",
    path: "base/17000",
    catalog: { "base/17000/1259": 8192 },
    schemas: [],
  }],
};

Deno.test("relationSelector keeps the selected tables, their database's catalog and everything else outside", () => {
  const keep = relationSelector(MAP, selectionOf(MAP, ["shop.billing.invoices"]));
  for (
    const p of [
      "global/1262",
      "pg_xact/0000",
      "PG_VERSION",
      "base/16384/PG_VERSION",
      "base/16384/pg_filenode.map",
      "base/16384/1259",
      "base/16384/1259_fsm",
      "base/16384/16386",
      "base/16384/16386.1",
      "base/16384/16390",
      "base/16384/99999", // not in the map: kept
      "base/17000/PG_VERSION",
    ]
  ) assert.ok(keep(p), p);
  for (const p of ["base/16384/16400", "base/17000/1259"]) assert.ok(!keep(p), p);
  // A schema selects all its tables.
  assert.equal(selectionOf(MAP, ["shop.billing"]).length, 2);
});

Deno.test("selectionOf refuses the names the map does not hold, by name", () => {
  assert.throws(
    () => selectionOf(MAP, ["shop.billing.nope", "shop.billing.invoices", "shop.gone"]),
    (e: Error) =>
      e instanceof InvalidInput && e.message.includes('"shop.billing.nope", "shop.gone" are not'),
  );
});

Deno.test({
  name:
    "withRelationMap records every table's relation files while the base backup runs; show prints them",
  ignore: pgIgnore,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using pg = await startPgCluster();
    await using t = await tempDir();
    await pg.sql("CREATE DATABASE shop");
    await pg.sql(
      `CREATE SCHEMA billing; CREATE SCHEMA crm;
       CREATE TABLE crm.customers (id serial PRIMARY KEY, name text NOT NULL);
       CREATE INDEX customers_name ON crm.customers (name);
       CREATE TABLE billing.invoices (id int PRIMARY KEY, customer int REFERENCES crm.customers,
                                      body text);
       INSERT INTO crm.customers (name) SELECT 'c' || g FROM generate_series(1, 100) g;
       INSERT INTO billing.invoices SELECT g, 1 + g % 100,
           (SELECT string_agg(md5(g || ':' || i), '') FROM generate_series(1, 300) i)
         FROM generate_series(1, 50) g;
       CHECKPOINT;`,
      { db: "shop" },
    );
    const store = await FsStore.open(path.join(t.dir, "repo"), { create: true });
    const src = withRelationMap(
      await pgSource(pg.uri(), {
        archived: (_id, name) => Promise.resolve(fs.existsSync(path.join(pg.walArchiveDir, name))),
        archiveWaitMs: 30_000,
      }),
      pg.uri(),
    );
    const r = await backup(store, src, { workers: 1 });
    assert.ok(r.manifest.parts.some((p) => p.name === PG_RELATIONS_PART));
    const repo = await Repository.open(store);
    const map = (await loadRelationMap(repo, await repo.loadManifest(r.name)))!;
    const shop = map.databases.find((d) => d.name === "shop")!;
    assert.ok(map.databases.some((d) => d.name === "postgres"));
    assert.equal(shop.oid, await pg.sql("SELECT oid FROM pg_database WHERE datname = 'shop'"));
    assert.ok(Object.keys(shop.catalog).includes(`base/${shop.oid}/1259`), "pg_class");
    const inv = shop.schemas.find((s) => s.name === "billing")!.tables[0]!;
    assert.equal(inv.name, "invoices");
    const roles = inv.relations.map((x) => x.role);
    assert.deepEqual(roles, ["table", "toast", "toast_index", "index"]);
    for (const rel of inv.relations) {
      const want = await pg.sql(`SELECT pg_relation_filepath(${rel.oid})`, { db: "shop" });
      assert.equal(rel.path, want);
      assert.ok(rel.path in rel.files, rel.path);
    }
    const toast = inv.relations.find((x) => x.role === "toast")!;
    assert.ok(toast.files[toast.path]! > 0, "the TOAST table holds the long bodies");
    const cust = shop.schemas.find((s) => s.name === "crm")!.tables[0]!;
    assert.deepEqual(
      cust.relations.map((x) => `${x.role}:${x.name.replace(/\d+/, "N")}`).sort(),
      [
        "index:customers_name",
        "index:customers_pkey",
        "sequence:customers_id_seq",
        "table:customers",
        "toast:pg_toast_N",
        "toast_index:pg_toast_N_index",
      ],
    );
    const main = cust.relations[0]!;
    assert.ok(`${main.path}_fsm` in main.files || Object.keys(main.files).length >= 1);

    const shown = await cli(["show", path.join(t.dir, "repo"), "--json"]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.deepEqual(JSON.parse(shown.stdout).relation_map, map);
    const text = await cli(["show", path.join(t.dir, "repo")]);
    assert.match(text.stdout, /table {2}shop\.billing\.invoices \(oid \d+, \d+ bytes\)/);
    assert.match(text.stdout, /toast_index +pg_toast_\d+_index base\/\d+\/\d+/);
  },
});
