/**
 * End to end through the CLI: per-table snapshots of a Databend cluster
 * backup in `show` and `list`, and table-level restore.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { assertRefusedWithoutPassphrase, cli, filesUnder, tempDir } from "../testing/mod.ts";
import { startMetaService } from "../testing/meta_service.ts";
import { startS3Server } from "../testing/s3_server.ts";
import { openClusterStorage } from "../sources/databend/cluster_storage.ts";
import { parseQueryConfig } from "../sources/databend/query_config.ts";
import { buildSampleCluster } from "../testdata/make_sample_cluster.ts";

const SAMPLE = path.resolve(import.meta.dirname!, "../testdata/sample-cluster");
const SAMPLE_CONFIG = path.join(SAMPLE, "query-node.toml");
const SAMPLE_EXPORT = path.join(SAMPLE, "meta-export.jsonl");

/** Backs up the sample cluster into `repo` through the CLI, with `env` in its environment. */
async function backupSample(
  repo: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<void> {
  const b = await cli([
    "backup",
    "--from",
    SAMPLE_CONFIG,
    "--to",
    repo,
    "--meta-export-file",
    SAMPLE_EXPORT,
    ...extra,
  ], { env });
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

const STAGE = "bendsave-restore/test-1/";

/** A target cluster config with fs storage in `dir/storage` (same tenant and cluster as the sample). */
function targetConfig(dir: string, extra = ""): { config: string; storage: string } {
  const storage = path.join(dir, "target", "storage");
  fs.mkdirSync(storage, { recursive: true });
  const config = path.join(dir, "target", "query-node.toml");
  fs.writeFileSync(
    config,
    `[query]\ntenant_id = "sample_tenant"\ncluster_id = "sample_cluster"\n${extra}` +
      `[meta]\nendpoints = ["127.0.0.1:9191"]\n[storage]\ntype = "fs"\n[storage.fs]\n` +
      `data_path = ${JSON.stringify(storage)}\n`,
  );
  return { config, storage };
}

/** The sample's snapshots of sales.orders, oldest first. */
function ordersSnapshots() {
  return buildSampleCluster().tables.find((x) => x.name === "orders")!.snapshots;
}

type PlanJson = {
  snapshot: { id: string; time: string; location: string; rowCount: number };
  statements: string[];
  tables: { objects: { name: string; staged: string; size: number }[]; hint: string }[];
};

async function restoreJson(args: string[], env?: Record<string, string>) {
  const r = await cli(["restore", ...args, "--json"], env ? { env } : {});
  const lines = r.stdout.trim().split("\n").filter((l) => l.startsWith("{"));
  return { ...r, json: lines.length ? JSON.parse(lines.at(-1)!) as PlanJson : null };
}

Deno.test("restore --table --as-of chooses the newest snapshot at or before the time; the dry run writes nothing", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  await backupSample(repo);
  const target = targetConfig(t.dir);
  const snaps = ordersSnapshots();
  const base = ["--from", repo, "--to", target.config, "--table", "sales.orders"];
  const cases: [string | null, number][] = [
    [null, 3], // default: the snapshot at backup time
    [snaps[0]!.timestamp, 0], // exactly at a snapshot
    ["2025-03-12 00:00", 1], // between the second and the third
    [snaps[3]!.timestamp.replace(/\.\d+Z$/, ".999999Z"), 3], // after the newest
  ];
  for (const [asOf, want] of cases) {
    const r = await restoreJson([
      ...base,
      ...(asOf === null ? [] : ["--as-of", asOf]),
      "--rename-to",
      "sales.orders_old",
      "--stage-prefix",
      STAGE,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json!.snapshot.id, snaps[want]!.id, `as of ${asOf}`);
    assert.equal(r.json!.snapshot.time, snaps[want]!.timestamp);
    assert.deepEqual(
      r.json!.tables[0]!.objects.map((o) => o.name),
      snaps[want]!.objects,
      "the snapshot, its segments, their blocks and bloom indexes",
    );
  }
  assert.deepEqual(fs.readdirSync(target.storage), [], "a dry run stages nothing");

  const before = await cli([...["restore"], ...base, "--as-of", "2025-03-10T11:00:00Z"]);
  assert.equal(before.code, 2);
  assert.match(
    before.stderr,
    new RegExp(
      `before the oldest snapshot of sales.orders the backups hold: its window is ${
        snaps[0]!.timestamp
      } to ${snaps[3]!.timestamp}`,
    ),
  );
});

/** The arguments of a restore of sales.orders as of `snap`, renamed to sales.orders_old and staged under {@linkcode STAGE}. */
function stageOrdersArgs(
  repo: string,
  config: string,
  snap: ReturnType<typeof ordersSnapshots>[number],
): string[] {
  return [
    "--from",
    repo,
    "--to",
    config,
    "--table",
    "sales.orders",
    "--rename-to",
    "sales.orders_old",
    "--as-of",
    snap.timestamp,
    "--stage-prefix",
    STAGE,
    "--confirm",
  ];
}

/**
 * Checks a `restore --table sales.orders --rename-to sales.orders_old --confirm` of `snap` staged
 * under {@linkcode STAGE} in the fs `storage`: exactly the snapshot's objects, byte for byte, and
 * its hint, and the exact statements of `plan`. Returns what was staged.
 */
function assertStagedSnapshot(
  storage: string,
  snap: ReturnType<typeof ordersSnapshots>[number],
  plan: PlanJson,
): string[] {
  const staged = filesUnder(storage);
  assert.deepEqual(
    staged,
    [...snap.objects.map((o) => STAGE + o), `${STAGE}8/32/last_snapshot_location_hint_v2`].sort(),
  );
  for (const o of snap.objects) {
    assert.deepEqual(
      fs.readFileSync(path.join(storage, STAGE + o)),
      fs.readFileSync(path.join(SAMPLE, "storage", o)),
      o,
    );
  }
  assert.deepEqual(
    JSON.parse(
      fs.readFileSync(
        path.join(storage, STAGE, "8/32/last_snapshot_location_hint_v2"),
        "utf8",
      ),
    ),
    {
      snapshot_full_path: `${storage}/${STAGE}${snap.location}`,
      entity_comments: { table_comment: "", field_comments: [] },
      indexes: {},
    },
  );
  const tmp = plan.statements[0]!.match(/`(_bendsave_tmp_orders_old_[0-9a-f]{6})`/)![1];
  assert.deepEqual(plan.statements, [
    `ATTACH TABLE \`sales\`.\`${tmp}\` 'fs://${storage}/${STAGE}8/32/';`,
    `CREATE TABLE \`sales\`.\`orders_old\` AS SELECT * FROM \`sales\`.\`${tmp}\`;`,
    `DROP TABLE \`sales\`.\`${tmp}\`;`,
  ]);
  return staged;
}

Deno.test("restore --table --confirm stages exactly the snapshot's objects and its hint; the statements are exact", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  await backupSample(repo);
  const target = targetConfig(t.dir);
  const snap = ordersSnapshots()[1]!;
  const args = stageOrdersArgs(repo, target.config, snap);
  const r = await restoreJson(args);
  assert.equal(r.code, 0, r.stderr);
  const staged = assertStagedSnapshot(target.storage, snap, r.json!);

  // The same stage prefix again: a collision, refused before anything is written.
  const again = await cli(["restore", ...args]);
  assert.equal(again.code, 2);
  assert.match(
    again.stderr,
    /already exists in .*: the stage prefix bendsave-restore\/test-1\/ is in use/,
  );
  assert.deepEqual(filesUnder(target.storage), staged);
});

Deno.test("restore --table from an encrypted repository stages the same objects; no or a wrong passphrase: exit 4, nothing staged", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  const pass = { BENDSAVE_PASSWORD: "table passphrase" };
  await backupSample(repo, ["--encrypt"], pass);
  assert.equal(JSON.parse(fs.readFileSync(path.join(repo, "config"), "utf8")).version, 2);
  const target = targetConfig(t.dir);
  const snap = ordersSnapshots()[1]!;
  const args = stageOrdersArgs(repo, target.config, snap);
  await assertRefusedWithoutPassphrase(
    ["restore", ...args],
    () => assert.deepEqual(fs.readdirSync(target.storage), []),
  );
  const r = await restoreJson(args, pass);
  assert.equal(r.code, 0, r.stderr);
  assertStagedSnapshot(target.storage, snap, r.json!);
});

Deno.test("restore --table refuses an existing target without --clean, and drops it first with --clean", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  await backupSample(repo);
  const target = targetConfig(t.dir);
  const base = [
    "--from",
    repo,
    "--to",
    target.config,
    "--table",
    "sales.orders",
    "--stage-prefix",
    STAGE,
  ];
  const refused = await cli(["restore", ...base]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /table sales.orders exists in the target cluster: pass --clean/);
  const clean = await restoreJson([...base, "--clean"]);
  assert.equal(clean.code, 0, clean.stderr);
  assert.equal(clean.json!.statements[0], "DROP TABLE IF EXISTS `sales`.`orders`;");
  assert.equal(clean.json!.statements.length, 4);
});

Deno.test("restore --table-list with --restore-target-list; bad input is refused in one line", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  await backupSample(repo);
  const target = targetConfig(t.dir);
  const list = path.join(t.dir, "tables.txt");
  const targets = path.join(t.dir, "targets.txt");
  fs.writeFileSync(list, "# tables\nsales.orders\nanalytics.page_views\n");
  fs.writeFileSync(targets, "sales.orders_copy\nanalytics.views_copy\n");
  const base = ["--from", repo, "--to", target.config, "--stage-prefix", STAGE];
  const ok = await restoreJson([...base, "--table-list", list, "--restore-target-list", targets]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.json!.statements.length, 6);
  assert.match(ok.json!.statements[4]!, /^CREATE TABLE `analytics`.`views_copy` AS SELECT/);

  fs.writeFileSync(targets, "sales.orders_copy\n");
  const short = await cli([
    "restore",
    ...base,
    "--table-list",
    list,
    "--restore-target-list",
    targets,
  ]);
  assert.equal(short.code, 2);
  assert.match(short.stderr, /--table-list lists 2 table\(s\) but --restore-target-list 1/);

  const unknown = await cli(["restore", ...base, "--table", "sales.nope"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /table sales.nope is in no backup of the repository/);
  assert.equal(unknown.stderr.trim().split("\n").length, 1);

  const badTime = await cli(["restore", ...base, "--table", "sales.orders", "--as-of", "soon"]);
  assert.equal(badTime.code, 2);
  assert.match(badTime.stderr, /--as-of "soon" is not a time/);
  assert.deepEqual(fs.readdirSync(target.storage), []);
});

/** A recording stand-in for Databend's HTTP query API; fails statements matching `failOn`. */
function startQueryServer(failOn?: RegExp) {
  const seen: { sql: string; auth: string | null }[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const body = await req.json() as { sql: string };
    seen.push({ sql: body.sql, auth: req.headers.get("authorization") });
    if (failOn?.test(body.sql)) {
      return Response.json({ state: "Failed", error: { code: 1025, message: "Unknown database" } });
    }
    return Response.json({ state: "Succeeded", error: null, data: [], next_uri: null });
  });
  return { seen, server, url: `http://127.0.0.1:${server.addr.port}` };
}

Deno.test("restore --table --confirm --execute runs the statements over /v1/query and removes what it staged", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  await backupSample(repo);
  const q = startQueryServer();
  try {
    const target = targetConfig(t.dir);
    const r = await restoreJson([
      "--from",
      repo,
      "--to",
      target.config,
      "--table",
      "sales.returns",
      "--rename-to",
      "sales.returns_back",
      "--stage-prefix",
      STAGE,
      "--confirm",
      "--execute",
      "--query-url",
      q.url,
      "--query-user",
      "restorer",
    ], { BENDSAVE_QUERY_PASSWORD: "s3cret-pw" });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(q.seen.map((s) => s.sql), r.json!.statements);
    assert.equal(q.seen[0]!.auth, "Basic " + btoa("restorer:s3cret-pw"));
    assert.ok(!r.stdout.includes("s3cret-pw") && !r.stderr.includes("s3cret-pw"));
    assert.deepEqual(filesUnder(target.storage), [], "the staged objects are removed");
  } finally {
    await q.server.shutdown();
  }
});

Deno.test("restore --execute against an endpoint that refuses: before ATTACH nothing is left; after it, where it is", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  await backupSample(repo);
  for (const [failOn, left] of [[/^ATTACH/, false], [/^CREATE/, true]] as const) {
    const q = startQueryServer(failOn);
    try {
      const target = targetConfig(path.join(t.dir, String(left)));
      const r = await cli([
        "restore",
        "--from",
        repo,
        "--to",
        target.config,
        "--table",
        "sales.returns",
        "--rename-to",
        "sales.returns_back",
        "--stage-prefix",
        STAGE,
        "--confirm",
        "--execute",
        "--query-url",
        q.url,
      ]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /Unknown database \(code 1025\)/);
      if (left) {
        assert.match(
          r.stderr,
          /1 statement\(s\) ran: the staged objects are left under bendsave-restore\/test-1\/8\/83\//,
        );
        assert.ok(filesUnder(target.storage).length > 0);
      } else {
        assert.match(r.stderr, /the staged objects were removed again, nothing was changed/);
        assert.deepEqual(filesUnder(target.storage), []);
      }
    } finally {
      await q.server.shutdown();
    }
  }
});

Deno.test("backup --database/--table of a cluster is partial: show marks it, whole restore refuses it, table restore uses it", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  await backupSample(repo, ["--database", "analytics", "--table", "sales.orders"]);
  const shown = await cli(["show", repo]);
  assert.match(shown.stdout, /source {5}Databend .*\(partial: analytics, sales.orders\)/);
  assert.match(shown.stdout, /partial = analytics,sales.orders/);
  const target = targetConfig(t.dir);
  const whole = await cli(["restore", "--from", repo, "--to", target.config]);
  assert.equal(whole.code, 2);
  assert.match(whole.stderr, /is partial \(it holds the objects of analytics, sales.orders only\)/);
  const base = ["--from", repo, "--to", target.config, "--stage-prefix", STAGE];
  const ok = await restoreJson([...base, "--table", "sales.orders", "--rename-to", "sales.o2"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.json!.snapshot.id, ordersSnapshots()[3]!.id);
  const left = await cli([
    "restore",
    ...base,
    "--table",
    "sales.customers",
    "--rename-to",
    "sales.c2",
  ]);
  assert.equal(left.code, 2);
  assert.match(
    left.stderr,
    /table sales.customers is only in partial backups that left its objects out/,
  );

  const bad = await cli([
    "backup",
    "--from",
    SAMPLE_CONFIG,
    "--to",
    repo,
    "--meta-export-file",
    SAMPLE_EXPORT,
    "--table",
    "sales",
  ]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--table "sales" is not DB.TABLE/);
  const unknown = await cli([
    "backup",
    "--from",
    SAMPLE_CONFIG,
    "--to",
    path.join(t.dir, "repo2"),
    "--meta-export-file",
    SAMPLE_EXPORT,
    "--database",
    "nope",
  ]);
  assert.equal(unknown.code, 2);
  assert.match(
    unknown.stderr,
    /database nope \(of --database nope\) is not in the cluster's catalog/,
  );
});

Deno.test("backup --meta-chunk-size and --meta-timeout reach the gRPC export; bad values are refused", async () => {
  await using t = await tempDir();
  const lines = fs.readFileSync(SAMPLE_EXPORT, "utf8").trimEnd().split("\n");
  const meta = await startMetaService({ lines });
  try {
    const config = path.join(t.dir, "query-node.toml");
    fs.writeFileSync(
      config,
      fs.readFileSync(SAMPLE_CONFIG, "utf8")
        .replace(/endpoints = \[.*\]/, `endpoints = ["${meta.endpoint}"]`)
        .replace(
          'data_path = "./storage"',
          `data_path = ${JSON.stringify(path.join(SAMPLE, "storage"))}`,
        ),
    );
    const b = await cli([
      "backup",
      "--from",
      config,
      "--to",
      path.join(t.dir, "repo"),
      "--meta-chunk-size",
      "5",
      "--meta-timeout",
      "90",
    ]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(meta.requests.find((r) => r.path.endsWith("/ExportV1"))!.chunkSize, 5);
  } finally {
    await meta.close();
  }
  for (
    const [flag, value, want] of [
      ["--meta-chunk-size", "0", /--meta-chunk-size must be a whole number of lines/],
      ["--meta-timeout", "soon", /--meta-timeout must be a number of seconds/],
    ] as const
  ) {
    const r = await cli([
      "backup",
      "--from",
      SAMPLE_CONFIG,
      "--to",
      path.join(t.dir, "r3"),
      flag,
      value,
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, want);
  }
});

Deno.test("S3 storage: a partial backup lists only the selected prefixes; a table restore stages into the bucket", async () => {
  await using t = await tempDir();
  const s3 = await startS3Server();
  try {
    await s3.bucket("cluster-data");
    const env = {
      AWS_REGION: s3.region,
      AWS_CONFIG_FILE: path.join(t.dir, "no-aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: path.join(t.dir, "no-aws-credentials"),
    };
    const config = path.join(t.dir, "node", "query-node.toml");
    fs.mkdirSync(path.dirname(config), { recursive: true });
    fs.writeFileSync(
      config,
      `[query]\ntenant_id = "sample_tenant"\ncluster_id = "sample_cluster"\n` +
        `[meta]\nendpoints = ["127.0.0.1:9191"]\n[storage]\ntype = "s3"\n[storage.s3]\n` +
        `bucket = "cluster-data"\nroot = "prod"\nendpoint_url = "${s3.endpoint}"\nregion = "${s3.region}"\n` +
        `access_key_id = "${s3.credentials.accessKeyId}"\nsecret_access_key = "${s3.credentials.secretAccessKey}"\n`,
    );
    const store = await openClusterStorage(
      parseQueryConfig(fs.readFileSync(config, "utf8"), config).storage,
    );
    for (const f of buildSampleCluster().files) {
      if (f.path.startsWith("storage/")) {
        await store.save({ kind: "raw", name: f.path.slice("storage/".length) }, f.bytes);
      }
    }
    await store.close?.();
    const repo = path.join(t.dir, "repo");
    const b = await cli([
      "backup",
      "--from",
      config,
      "--to",
      repo,
      "--meta-export-file",
      SAMPLE_EXPORT,
      "--table",
      "sales.returns",
      "--json",
    ], { env });
    assert.equal(b.code, 0, b.stderr);
    const returns = buildSampleCluster().tables.find((x) => x.name === "returns")!;
    const held = buildSampleCluster().files.filter((f) => f.path.startsWith("storage/8/83/"));
    const summary = b.stdout.trim().split("\n").map((l) => JSON.parse(l)).findLast((e) =>
      e.type === "summary"
    );
    assert.equal(summary.files, held.length + 1); // the prefix's objects and the meta export

    const r = await restoreJson([
      "--from",
      repo,
      "--to",
      config,
      "--table",
      "sales.returns",
      "--rename-to",
      "sales.returns_back",
      "--stage-prefix",
      STAGE,
      "--connection",
      "prod_s3",
      "--confirm",
    ], env);
    assert.equal(r.code, 0, r.stderr);
    const snap = returns.snapshots[0]!;
    const keys = await s3.keys("cluster-data");
    const staged = keys.filter((k) => k.startsWith(`prod/${STAGE}`));
    assert.deepEqual(
      staged,
      [
        ...snap.objects.map((o) => `prod/${STAGE}${o}`),
        `prod/${STAGE}8/83/last_snapshot_location_hint_v2`,
      ].sort(),
    );
    const tmp = r.json!.statements[0]!.match(/`(_bendsave_tmp_returns_back_[0-9a-f]{6})`/)![1];
    assert.equal(
      r.json!.statements[0],
      `ATTACH TABLE \`sales\`.\`${tmp}\` 's3://cluster-data/prod/${STAGE}8/83/' CONNECTION = (CONNECTION_NAME = 'prod_s3');`,
    );
    const hintStore = await openClusterStorage(
      parseQueryConfig(fs.readFileSync(config, "utf8"), config).storage,
    );
    const hint = JSON.parse(
      new TextDecoder().decode(
        await hintStore.load({ kind: "raw", name: `${STAGE}8/83/last_snapshot_location_hint_v2` }),
      ),
    );
    await hintStore.close?.();
    assert.equal(hint.snapshot_full_path, `/prod/${STAGE}${snap.location}`);
    assert.ok(!r.stdout.includes(s3.credentials.secretAccessKey));
  } finally {
    await s3.stop();
  }
});

Deno.test("restore --clean --execute: a refused ATTACH after the DROP says that the DROP ran", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  await backupSample(repo);
  const q = startQueryServer(/^ATTACH/);
  try {
    const target = targetConfig(t.dir);
    const r = await cli([
      "restore",
      "--from",
      repo,
      "--to",
      target.config,
      "--table",
      "sales.returns",
      "--clean",
      "--stage-prefix",
      STAGE,
      "--confirm",
      "--execute",
      "--query-url",
      q.url,
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /the staged objects were removed again, after 1 statement\(s\) ran: DROP TABLE IF EXISTS `sales`.`returns`;/,
    );
    assert.deepEqual(filesUnder(target.storage), []);
  } finally {
    await q.server.shutdown();
  }
});

Deno.test("the consistency guard through the CLI: a missing current snapshot is named by table, exit 3", async () => {
  await using t = await tempDir();
  const cluster = path.join(t.dir, "cluster");
  fs.cpSync(SAMPLE, cluster, { recursive: true });
  const customers = buildSampleCluster().tables.find((x) => x.name === "customers")!;
  fs.rmSync(path.join(cluster, "storage", customers.snapshotLocation!));
  const b = await cli([
    "backup",
    "--from",
    path.join(cluster, "query-node.toml"),
    "--to",
    path.join(t.dir, "repo"),
    "--meta-export-file",
    path.join(cluster, "meta-export.jsonl"),
  ]);
  assert.equal(b.code, 3, b.stderr);
  assert.match(
    b.stderr + b.stdout,
    new RegExp(
      `table sales.customers: its current snapshot ${customers.snapshotLocation} is not in the backup`,
    ),
  );
  assert.match(
    b.stdout,
    /objects the meta export refers to are missing from the backup; it is marked incomplete/,
  );
  const shown = await cli(["show", path.join(t.dir, "repo")]);
  assert.match(shown.stdout, /\(incomplete\)/);
});
