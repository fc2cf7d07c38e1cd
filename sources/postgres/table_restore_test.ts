/**
 * Single-table restores end to end on a real PostgreSQL 15 (issue 12): a
 * whole-cluster base backup with its relation map, continuous WAL archiving
 * through `bendsave wal-push`, and `restore --to postgresql://... --table`
 * into the live server while pgbench runs on it. The server and every
 * bendsave command run as the `postgres` user.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {
  bendsaveAsPostgres,
  bendsaveCommand,
  type PgCluster,
  pgIgnore,
  pgTempDir,
  prepareBendsaveForPostgres,
  shellQuote,
  startPgCluster,
  writeAsPostgres,
} from "../../testing/pg_cluster.ts";
import { invalidPagesOf } from "./table_restore.ts";
import type { FoundTable } from "./relation_map.ts";

const bendsave = bendsaveAsPostgres;

/** The arguments of `restore --from repo --to to --table table`, then `more`. */
function restoreTable(repo: string, to: string, table: string, ...more: string[]): string[] {
  return ["restore", "--from", repo, "--to", to, "--table", table, ...more];
}

async function ok(args: string[]): Promise<string> {
  const r = await bendsave(args);
  assert.equal(r.code, 0, `bendsave ${args.join(" ")}:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** An ordered checksum of a table's rows. */
function checksum(pg: PgCluster, table: string): Promise<string> {
  return pg.sql(
    `SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY id)), '-') FROM ${table} t`,
    { db: "shop" },
  );
}

/** The index definitions of a table, with its name replaced by T. */
async function indexes(pg: PgCluster, schema: string, table: string): Promise<string> {
  return (await pg.sql(
    `SELECT string_agg(regexp_replace(replace(indexdef, '${schema}.${table}', 'T'),
                                      'INDEX \\S+ ON', 'INDEX ON'), '; ' ORDER BY indexdef)
       FROM pg_indexes WHERE schemaname = '${schema}' AND tablename = '${table}'`,
    { db: "shop" },
  ));
}

/** Waits until the server has archived WAL file `name`. */
async function archived(pg: PgCluster, name: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const last = await pg.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
    if (last >= name && last.length === name.length) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`WAL ${name} was not archived:\n${pg.log()}`);
}

/** Switches WAL and waits for the segment to be archived. */
async function switchWal(pg: PgCluster): Promise<void> {
  await archived(pg, await pg.sql("SELECT pg_walfile_name(pg_switch_wal())"));
}

const SCHEMA = `
CREATE SCHEMA billing; CREATE SCHEMA crm;
CREATE TABLE crm.customers (id serial PRIMARY KEY, name text NOT NULL);
CREATE INDEX customers_name ON crm.customers (name);
CREATE TABLE billing.invoices (
  id int PRIMARY KEY,
  customer int NOT NULL REFERENCES crm.customers,
  amount numeric NOT NULL,
  body text
);
CREATE INDEX invoices_customer ON billing.invoices (customer);
INSERT INTO crm.customers (name) SELECT 'customer ' || g FROM generate_series(1, 200) g;
INSERT INTO billing.invoices
  SELECT g, 1 + g % 200, g * 1.5,
         (SELECT string_agg(md5(g || ':' || i), '') FROM generate_series(1, 200) i)
    FROM generate_series(1, 300) g;
`;

Deno.test({
  name:
    "restore --table brings tables back into the live server as of a time, renamed or in place with --clean, while pgbench runs",
  ignore: pgIgnore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await prepareBendsaveForPostgres();
    await using work = await pgTempDir("bendsave-table-restore-test-");
    const root = work.dir;
    const repo = path.join(root, "repo");
    const scratch = path.join(root, "scratch");
    fs.mkdirSync(scratch, { mode: 0o777 });
    fs.chmodSync(scratch, 0o777);
    await using pg = await startPgCluster({ archiveTo: repo });
    await pg.sql("CREATE DATABASE shop");
    await pg.sql(SCHEMA, { db: "shop" });
    await pg.pgbench(["-i", "-s", "1", "-q"], { db: "shop" });
    await ok(["backup", "--from", pg.uri({ db: "shop" }), "--to", repo]);

    // Changes after the backup, then T1, then the disaster. The vacuum marks pages of tables
    // that a restore of invoices leaves out (all-zero) all-visible, without full-page images.
    await pg.sql("VACUUM crm.customers; VACUUM pgbench_accounts", { db: "shop" });
    await pg.sql(
      `UPDATE billing.invoices SET amount = amount + 1 WHERE id % 7 = 0;
         INSERT INTO crm.customers (name) VALUES ('late customer');
         INSERT INTO billing.invoices SELECT g, 201, 9, repeat('x', 5000) FROM generate_series(301, 320) g;`,
      { db: "shop" },
    );
    const invT1 = await checksum(pg, "billing.invoices");
    const custT1 = await checksum(pg, "crm.customers");
    const idxInv = await indexes(pg, "billing", "invoices");
    const t1 = await pg.sql("SELECT now()");
    await new Promise((r) => setTimeout(r, 50));
    await pg.sql(
      `DELETE FROM billing.invoices WHERE id > 100; UPDATE crm.customers SET name = 'gone';`,
      { db: "shop" },
    );
    const invAfter = await checksum(pg, "billing.invoices");
    await switchWal(pg);

    // The live server keeps serving a pgbench load throughout.
    const load = pg.pgbench(["-n", "-T", "25", "-c", "2"], { db: "shop" });
    load.catch(() => {}); // awaited at the end; a failure before then is the test's own
    const target = pg.uri({ db: "shop" });

    // 1. One table to a new name in a new schema: the dry run, then the restore.
    const one = restoreTable(
      repo,
      target,
      "shop.billing.invoices",
      "--as-of",
      t1,
      "--rename-to",
      "recovered.invoices_t1",
      "--scratch-dir",
      scratch,
    );
    const dry = await ok(one);
    if (Deno.env.get("SHOW_DRY")) console.log(dry);
    assert.match(dry, /dry run: nothing was written/);
    assert.match(
      dry,
      /table {6}shop\.billing\.invoices \(.+\) -> shop\.recovered\.invoices_t1 \(schema created\)/,
    );
    assert.match(
      dry,
      /relations: table invoices, toast pg_toast_\d+, toast_index .*index invoices_pkey/,
    );
    assert.match(dry, /other relation files sparse/);
    assert.equal(
      await pg.sql("SELECT to_regnamespace('recovered') IS NULL", { db: "shop" }),
      "t",
    );
    const done = await ok([...one, "--confirm"]);
    if (Deno.env.get("SHOW_DRY")) console.log(done);
    assert.match(done, /rows {7}shop\.recovered\.invoices_t1: 320 \(checked\)/);
    assert.match(
      done,
      /not restored: foreign key shop\.recovered\.invoices_t1 invoices_customer_fkey: FOREIGN KEY \(customer\) REFERENCES crm\.customers\(id\)/,
    );
    assert.equal(await checksum(pg, "recovered.invoices_t1"), invT1, "contents as of T1");
    assert.equal(await indexes(pg, "recovered", "invoices_t1"), idxInv, "the same indexes");
    assert.equal(await checksum(pg, "billing.invoices"), invAfter, "the live table untouched");
    assert.deepEqual(fs.readdirSync(scratch), [], "the scratch directory is removed");

    // 2. An existing target without --clean is refused before anything is written.
    const again = await bendsave([...one, "--confirm"]);
    assert.equal(again.code, 2, again.stderr);
    assert.match(
      again.stderr,
      /shop\.recovered\.invoices_t1 already exists in the target server: give --clean/,
    );
    assert.equal(again.stderr.trim().split("\n").length, 1, again.stderr);

    // 3. Several tables from lists: customers in place with --clean, invoices under a new name.
    const tables = path.join(root, "tables.txt");
    const targets = path.join(root, "targets.txt");
    fs.writeFileSync(tables, "# what to bring back\nshop.crm.customers\nshop.billing.invoices\n");
    fs.writeFileSync(targets, "shop.crm.customers\nshop.billing.invoices_t1\n");
    const many = [
      "restore",
      "--from",
      repo,
      "--to",
      target,
      "--table-list",
      tables,
      "--restore-target-list",
      targets,
      "--as-of",
      t1,
      "--scratch-dir",
      scratch,
    ];
    const noClean = await bendsave([...many, "--confirm"]);
    assert.equal(noClean.code, 2, noClean.stderr);
    assert.match(noClean.stderr, /shop\.crm\.customers already exists/);
    const dryMany = await ok([...many, "--clean"]);
    assert.match(
      dryMany,
      /--clean drops shop\.crm\.customers and, by CASCADE: constraint invoices_customer_fkey on table billing\.invoices/,
    );
    await ok([...many, "--clean", "--confirm"]);
    assert.equal(await checksum(pg, "crm.customers"), custT1, "customers replaced as of T1");
    assert.equal(await checksum(pg, "billing.invoices_t1"), invT1);
    assert.equal(await checksum(pg, "billing.invoices"), invAfter, "the live table untouched");
    assert.equal(
      await pg.sql(
        "SELECT count(*) FROM pg_constraint WHERE conname = 'invoices_customer_fkey'",
        { db: "shop" },
      ),
      "0",
      "--clean dropped the foreign key that referenced the old customers",
    );
    // The restored sequence continues where it was at T1.
    // (PostgreSQL logs a sequence ahead of its use: replay may land up to 32 further on.)
    const next = Number(await pg.sql("SELECT nextval('crm.customers_id_seq')", { db: "shop" }));
    assert.ok(next >= 202 && next <= 240, String(next));

    // 4. Bad input.
    const unknown = await bendsave(restoreTable(
      repo,
      target,
      "shop.billing.nope",
      "--scratch-dir",
      scratch,
    ));
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /"shop\.billing\.nope" is not in backup \S+: name a table/);
    fs.writeFileSync(targets, "shop.x.a\n");
    const lengths = await bendsave([...many]);
    assert.equal(lengths.code, 2, lengths.stderr);
    assert.match(lengths.stderr, /--table-list names 2 table\(s\) and --restore-target-list 1/);
    const unreachable = await bendsave(restoreTable(
      repo,
      `postgresql://postgres@/shop?host=${encodeURIComponent(pg.socketDir)}&port=1`,
      "shop.billing.invoices",
      "--rename-to",
      "x.y",
      "--confirm",
      "--scratch-dir",
      scratch,
    ));
    assert.equal(unreachable.code, 1, unreachable.stderr);
    assert.match(unreachable.stderr, /cannot connect to PostgreSQL/);
    assert.deepEqual(fs.readdirSync(scratch), [], "nothing written");

    // 5. A full scratch disk: the restore fails, the scratch is removed, the live server serves on.
    const tiny = path.join(root, "tiny");
    fs.mkdirSync(tiny);
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=2m,mode=0777", "tmpfs", tiny],
    }).output();
    if (mount.success) {
      try {
        const full = await bendsave(restoreTable(
          repo,
          target,
          "shop.billing.invoices",
          "--rename-to",
          "recovered.full",
          "--confirm",
          "--scratch-dir",
          tiny,
        ));
        assert.equal(full.code, 1, full.stderr);
        assert.match(full.stderr, /ran out of space|No space left|ENOSPC/i);
        assert.deepEqual(fs.readdirSync(tiny), [], "the scratch directory is removed");
        assert.equal(
          await pg.sql("SELECT to_regclass('recovered.full') IS NULL", { db: "shop" }),
          "t",
        );
      } finally {
        await new Deno.Command("umount", { args: [tiny] }).output();
      }
    } else console.log("full-disk case skipped: cannot mount a tmpfs here");

    await load;
    assert.equal(await checksum(pg, "billing.invoices"), invAfter);
  },
});

Deno.test({
  name:
    "backup --schema keeps only that schema's relations; restore --table restores from it and refuses a table it does not hold",
  ignore: pgIgnore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await prepareBendsaveForPostgres();
    await using work = await pgTempDir("bendsave-schema-backup-test-");
    const root = work.dir;
    const repo = path.join(root, "repo");
    const scratch = path.join(root, "scratch");
    fs.mkdirSync(scratch, { mode: 0o777 });
    fs.chmodSync(scratch, 0o777);
    await using pg = await startPgCluster({ archiveTo: repo });
    await pg.sql("CREATE DATABASE shop");
    await pg.sql(SCHEMA, { db: "shop" });
    await pg.sql(
      `CREATE TABLE crm.big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100000) g;
         CHECKPOINT`,
      { db: "shop" },
    );
    const bigBytes = Number(
      await pg.sql("SELECT pg_relation_size('crm.big')", { db: "shop" }),
    );
    const bad = await bendsave([
      "backup",
      "--from",
      pg.uri({ db: "shop" }),
      "--to",
      repo,
      "--schema",
      "shop.nope",
    ]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /"shop\.nope" is not in the server's catalog/);

    await ok([
      "backup",
      "--from",
      pg.uri({ db: "shop" }),
      "--to",
      repo,
      "--schema",
      "shop.billing",
    ]);
    const shown = JSON.parse(await ok(["show", repo, "--json"]));
    assert.deepEqual(shown.relation_map.only, ["shop.billing"]);
    assert.equal(shown.source.settings["pg.only"], '["shop.billing"]');
    const data = shown.parts.find((p: { name: string }) => p.name === "data");
    const whole = Number(await pg.sql("SELECT sum(pg_database_size(oid)) FROM pg_database"));
    assert.ok(
      data.stats.bytes < whole - bigBytes,
      `the data part (${data.stats.bytes} bytes) leaves out crm.big (${bigBytes} of ${whole})`,
    );
    const text = await ok(["show", repo]);
    assert.match(text, /table {2}shop\.crm\.big \(oid \d+, \d+ bytes\) \(not held\)/);

    await pg.sql("UPDATE billing.invoices SET amount = 0 WHERE id < 10", { db: "shop" });
    const want = await checksum(pg, "billing.invoices");
    const t = await pg.sql("SELECT now()");
    await new Promise((r) => setTimeout(r, 50));
    await pg.sql("TRUNCATE billing.invoices", { db: "shop" });
    await switchWal(pg);

    const done = await ok(restoreTable(
      repo,
      pg.uri({ db: "shop" }),
      "shop.billing.invoices",
      "--rename-to",
      "billing.invoices_back",
      "--as-of",
      t,
      "--scratch-dir",
      scratch,
      "--confirm",
    ));
    assert.match(done, /rows {7}shop\.billing\.invoices_back: 300 \(checked\)/);
    assert.equal(await checksum(pg, "billing.invoices_back"), want);
    assert.equal(
      await indexes(pg, "billing", "invoices_back"),
      await indexes(pg, "billing", "invoices"),
    );

    const notHeld = await bendsave(restoreTable(
      repo,
      pg.uri({ db: "shop" }),
      "shop.crm.customers",
      "--rename-to",
      "crm.customers_back",
    ));
    assert.equal(notHeld.code, 2, notHeld.stderr);
    assert.match(notHeld.stderr, /holds only shop\.billing, not shop\.crm\.customers/);
    // A schema-level backup is never the start of a whole-cluster restore.
    const cluster = await bendsave([
      "restore",
      "--from",
      repo,
      "--to",
      path.join(root, "cluster"),
    ]);
    assert.equal(cluster.code, 2, cluster.stderr);
    assert.deepEqual(fs.readdirSync(scratch), []);
  },
});

Deno.test({
  name:
    "restore --table of a table in a tablespace restores it below the scratch directory, never into the live tablespace",
  ignore: pgIgnore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await prepareBendsaveForPostgres();
    await using work = await pgTempDir("bendsave-tablespace-restore-test-");
    const root = work.dir;
    const repo = path.join(root, "repo");
    const pidFile = path.join(root, "live.pid");
    // The restored postgresql.conf names the live server's external pid file: the scratch
    // server must not write (and on stopping, remove) it.
    await using pg = await startPgCluster({
      archiveTo: repo,
      settings: { external_pid_file: `'${pidFile}'` },
    });
    const livePid = fs.readFileSync(pidFile, "utf8");
    const space = path.join(root, "space");
    fs.mkdirSync(space);
    fs.chownSync(space, fs.statSync(pg.root).uid, fs.statSync(pg.root).gid);
    await pg.sql(`CREATE TABLESPACE outside LOCATION '${space}'; CREATE DATABASE shop`);
    await pg.sql(
      `CREATE TABLE far (id int PRIMARY KEY USING INDEX TABLESPACE outside, v text)
           TABLESPACE outside;
         CREATE SEQUENCE far_seq; CREATE TABLE near (id int);
         INSERT INTO far SELECT g, repeat(md5(g::text), 50) FROM generate_series(1, 2000) g;`,
      { db: "shop" },
    );
    await ok(["backup", "--from", pg.uri({ db: "shop" }), "--to", repo]);
    await pg.sql("UPDATE far SET v = 'changed' WHERE id <= 10", { db: "shop" });
    const want = await checksum(pg, "far");
    const t = await pg.sql("SELECT now()");
    await new Promise((r) => setTimeout(r, 50));
    await pg.sql("DELETE FROM far WHERE id > 5", { db: "shop" });
    const live = await checksum(pg, "far");
    const before = fs.readdirSync(space, { recursive: true }).map(String).sort();
    await switchWal(pg);
    const done = await ok(restoreTable(
      repo,
      pg.uri({ db: "shop" }),
      "shop.public.far",
      "--rename-to",
      "public.far_back",
      "--as-of",
      t,
      "--confirm",
    ));
    assert.match(done, /rows {7}shop\.public\.far_back: 2000 \(checked\)/);
    assert.equal(await checksum(pg, "far_back"), want);
    assert.equal(await checksum(pg, "far"), live);
    // The renamed primary key's index follows the new name; the live one keeps its own.
    assert.equal(
      await pg.sql(
        "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename LIKE 'far%'",
        { db: "shop" },
      ),
      "far_back_pkey,far_pkey",
    );
    assert.equal(fs.readFileSync(pidFile, "utf8"), livePid, "the live server's pid file");
    // The live tablespace holds what it held, plus the new table's files only.
    const after = fs.readdirSync(space, { recursive: true }).map(String).sort();
    for (const f of before) assert.ok(after.includes(f), f);
  },
});

Deno.test({
  name:
    "restore --table from an encrypted repository gives the scratch server's restore_command the passphrase option, and restores the rows as of T",
  ignore: pgIgnore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await prepareBendsaveForPostgres();
    await using work = await pgTempDir("bendsave-encrypted-table-restore-test-");
    const root = work.dir;
    const repo = path.join(root, "repo");
    const passFile = path.join(root, "passphrase");
    await writeAsPostgres(passFile, "table restore test passphrase\n");
    const pass = ["--password-file", passFile];
    await using pg = await startPgCluster({
      archiveCommand: `${bendsaveCommand()} wal-push %p --to ${shellQuote(repo)} ${
        pass.map(shellQuote).join(" ")
      }`,
    });
    await pg.sql("CREATE DATABASE shop");
    await pg.sql(
      `CREATE TABLE items (id int PRIMARY KEY, v text);
         INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 500) g;`,
      { db: "shop" },
    );
    await ok(["backup", "--from", pg.uri({ db: "shop" }), "--to", repo, "--encrypt", ...pass]);
    await pg.sql("UPDATE items SET v = 'at T' WHERE id <= 20", { db: "shop" });
    const want = await checksum(pg, "items");
    const t = await pg.sql("SELECT now()");
    await new Promise((r) => setTimeout(r, 50));
    await pg.sql("DELETE FROM items WHERE id > 100", { db: "shop" });
    await switchWal(pg);
    const args = restoreTable(
      repo,
      pg.uri({ db: "shop" }),
      "shop.public.items",
      "--rename-to",
      "public.items_back",
      "--as-of",
      t,
      "--confirm",
    );
    // BENDSAVE_PASSWORD alone opens the repository here, but the scratch server could not.
    const refused = await bendsave(args, { BENDSAVE_PASSWORD: "table restore test passphrase" });
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /restore_command/);
    await ok([...args, ...pass]);
    assert.equal(await checksum(pg, "items_back"), want);
  },
});

Deno.test("invalidPagesOf reports invalid pages of restored relations only", () => {
  const db = {
    name: "shop",
    oid: "5",
    path: "base/5",
    catalog: { "base/5/1259": 8192, "base/5/1259_fsm": 8192 },
    schemas: [],
  };
  const table = {
    name: "t",
    oid: "100",
    kind: "r",
    relations: [{ role: "table" as const, name: "t", oid: "100", path: "base/5/100", files: {} }],
  };
  const found: FoundTable[] = [{ db, schema: { name: "s", oid: "9", tables: [table] }, table }];
  const log = path.join(Deno.makeTempDirSync(), "server.log");
  fs.writeFileSync(
    log,
    [
      "WARNING:  page 0 of relation base/5/200 is uninitialized", // left out: all zero
      "WARNING:  page 3 of relation base/5/100_vm does not exist",
      "WARNING:  page 1 of relation base/5/1259 was uninitialized",
      "WARNING:  page 7 of relation base/6/100 is uninitialized", // another database's
    ].join("\n"),
  );
  assert.deepEqual(invalidPagesOf(log, found), [
    "page 3 of relation base/5/100_vm does not exist",
    "page 1 of relation base/5/1259 was uninitialized",
  ]);
  fs.rmSync(path.dirname(log), { recursive: true });
});
