/**
 * Measures bringing back one PostgreSQL table from a whole-cluster backup
 * (issue 12), side by side with the pgBackRest way of doing it, same cluster,
 * same run, same target time:
 *
 * - bendsave: `restore --to postgresql://... --table shop.public.pgbench_accounts
 *   --rename-to bendsave.accounts --as-of T --confirm` (scratch restore of the
 *   table's files and the catalogs, private server, pg_dump | psql into the
 *   live server);
 * - pgBackRest: `pgbackrest restore --db-include=shop --type=time --target=T`
 *   into a scratch data directory, start PostgreSQL on it until it promotes,
 *   move the table to schema `pgbackrest` there, `pg_dump --table ... | psql`
 *   into the live server, stop the scratch server and remove it. Its scratch
 *   server runs with the settings bendsave gives its own (no archiving, no
 *   autovacuum, no hot standby, fsync off), so that the tools are compared.
 *
 * The cluster: database `shop` (`pgbench -i -s 8`: pgbench_accounts is about
 * 120 MB; and a table `filler` of `--filler-mb`, default 400) and database
 * `other` (`pgbench -i -s --other-scale`, default 30, about 450 MB), archived
 * by both tools at once: pgBackRest restores all of `shop`, bendsave the
 * table and the catalogs. Each result is checked
 * (row count and sum of balances equal those at T). Needs PostgreSQL 15,
 * pgBackRest and GNU time (bash bench/install_peers.sh), and root.
 *
 * Run: deno run -A bench/pg_table_measure.ts [--scale 8] [--other-scale 30] [--filler-mb 400]
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  bendsaveCommand,
  PG_BIN,
  type PgCluster,
  pgInstalled,
  prepareBendsaveForPostgres,
  shellQuote,
  startPgCluster,
} from "../testing/pg_cluster.ts";

const { values } = parseArgs({
  options: {
    scale: { type: "string" },
    "other-scale": { type: "string" },
    "filler-mb": { type: "string" },
  },
});
const SCALE = Number(values.scale ?? 8);
const OTHER = Number(values["other-scale"] ?? 30);
const FILLER_MB = Number(values["filler-mb"] ?? 400);
const STANZA = "tables";

function log(s: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
}

function pgIds(): { uid: number; gid: number } {
  const f = fs.readFileSync("/etc/passwd", "utf8").split("\n").find((l) =>
    l.startsWith("postgres:")
  )!.split(":");
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

function mkdirPg(dir: string, mode = 0o750): string {
  fs.mkdirSync(dir, { recursive: true, mode });
  fs.chownSync(dir, pgIds().uid, pgIds().gid);
  fs.chmodSync(dir, mode);
  return dir;
}

/** Runs a shell line as `postgres`; returns wall seconds and output; throws when it fails. */
async function asPg(line: string): Promise<{ seconds: number; stdout: string }> {
  const t0 = performance.now();
  const out = await new Deno.Command("runuser", {
    args: ["-u", "postgres", "--", "sh", "-c", line],
    stdout: "piped",
    stderr: "piped",
    cwd: "/",
  }).output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`failed (${out.code}): ${line}\n${dec.decode(out.stderr)}`);
  }
  return { seconds: (performance.now() - t0) / 1000, stdout: dec.decode(out.stdout) };
}

/** Row count and sum of balances of a table of `shop`. */
function check(pg: PgCluster, table: string): Promise<string> {
  return pg.sql(`SELECT count(*) || ':' || sum(abalance) FROM ${table}`, { db: "shop" });
}

if (!pgInstalled) {
  console.error("PostgreSQL 15 is not installed (or not root): nothing measured");
  Deno.exit(1);
}
await prepareBendsaveForPostgres();
const work = mkdirPg(await Deno.makeTempDir({ prefix: "bendsave-table-bench-" }), 0o755);
const repo = mkdirPg(path.join(work, "repo-bendsave"), 0o700);
const pbRepo = mkdirPg(path.join(work, "repo-pgbackrest"));
for (const d of ["lock", "log", "spool"]) mkdirPg(path.join(work, `pgbr-${d}`));
const conf = path.join(work, "pgbackrest.conf");
const pb = `pgbackrest --config=${shellQuote(conf)} --stanza=${STANZA}`;
const bs = bendsaveCommand();
try {
  await using pg = await startPgCluster({
    settings: { max_wal_size: "1GB", checkpoint_timeout: "15min" },
  });
  fs.writeFileSync(
    conf,
    [
      "[global]",
      `repo1-path=${pbRepo}`,
      `lock-path=${work}/pgbr-lock`,
      `log-path=${work}/pgbr-log`,
      `spool-path=${work}/pgbr-spool`,
      "log-level-console=warn",
      "log-level-file=off",
      "process-max=2",
      "compress-type=zst",
      "start-fast=y",
      "",
      `[${STANZA}]`,
      `pg1-path=${pg.dataDir}`,
      `pg1-socket-path=${pg.socketDir}`,
      `pg1-port=${pg.port}`,
      "",
    ].join("\n"),
  );
  fs.chmodSync(conf, 0o644);
  await asPg(`${pb} stanza-create`);
  const archive = `${bs} wal-push %p --to ${shellQuote(repo)} && ${pb} archive-push %p`;
  await pg.sql(`ALTER SYSTEM SET archive_command = '${archive.replaceAll("'", "''")}'`);
  await pg.sql("SELECT pg_reload_conf()");
  await pg.sql("CREATE DATABASE shop; CREATE DATABASE other");
  log(`pgbench -i -s ${SCALE} (shop), -s ${OTHER} (other)`);
  await pg.pgbench(["-i", "-s", String(SCALE), "-q"], { db: "shop" });
  await pg.pgbench(["-i", "-s", String(OTHER), "-q"], { db: "other" });
  if (FILLER_MB > 0) {
    log(`a ${FILLER_MB} MB table beside pgbench_accounts in shop`);
    await pg.sql(
      `CREATE TABLE filler AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) AS v
         FROM generate_series(1, ${Math.round(FILLER_MB * 1048576 / 105)}) g`,
      { db: "shop" },
    );
  }
  const tableBytes = Number(
    await pg.sql("SELECT pg_total_relation_size('pgbench_accounts')", { db: "shop" }),
  );
  const clusterBytes = Number(await pg.sql("SELECT sum(pg_database_size(oid)) FROM pg_database"));
  log("full backups");
  const bFull = await asPg(
    `${bs} backup --from ${shellQuote(pg.uri({ db: "shop" }))} --to ${repo}`,
  );
  const pFull = await asPg(`${pb} backup --type=full`);
  await pg.pgbench(["-n", "-c", "2", "-t", "1000"], { db: "shop" });
  const want = await check(pg, "pgbench_accounts");
  const t = await pg.sql("SELECT now()");
  await new Promise((r) => setTimeout(r, 100));
  await pg.pgbench(["-n", "-c", "2", "-t", "1000"], { db: "shop" });
  const last = await pg.sql("SELECT pg_walfile_name(pg_switch_wal())");
  for (let i = 0; i < 1200; i++) {
    const done = await pg.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
    if (done >= last) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  log("bendsave restore --table");
  const scratch = mkdirPg(path.join(work, "scratch"), 0o777);
  const b = await asPg(
    `${bs} restore --from ${repo} --to ${shellQuote(pg.uri({ db: "shop" }))} --table ` +
      `shop.public.pgbench_accounts --rename-to bendsave.accounts --as-of ${shellQuote(t)} ` +
      `--scratch-dir ${scratch} --confirm`,
  );
  const gotB = await check(pg, "bendsave.accounts");

  log("pgBackRest: restore --db-include, start, dump, load");
  const dir = path.join(work, "pgbr-data");
  const sock = mkdirPg(path.join(work, "pgbr-sock"), 0o700);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const env = `PGHOST=${sock} PGPORT=${port} PGUSER=postgres`;
  const t0 = performance.now();
  await asPg(
    `${pb} restore --pg1-path=${dir} --type=time --target=${shellQuote(t)} ` +
      `--target-action=promote --db-include=shop`,
  );
  await asPg(
    `${PG_BIN}/pg_ctl -D ${dir} -l ${work}/pgbr-server.log -w -t 3600 -o ` +
      shellQuote(
        `-c port=${port} -c listen_addresses='' -c unix_socket_directories=${sock} ` +
          `-c archive_mode=off -c autovacuum=off -c hot_standby=off -c fsync=off`,
      ) + " start",
  );
  for (;;) {
    const r = await new Deno.Command("runuser", {
      args: [
        "-u",
        "postgres",
        "--",
        "sh",
        "-c",
        `${env} ${PG_BIN}/psql -XAtq -d shop -c 'SELECT 1'`,
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    if (r.success) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await asPg(
    `${env} ${PG_BIN}/psql -XAtq -d shop -c 'CREATE SCHEMA pgbackrest; ALTER TABLE pgbench_accounts SET SCHEMA pgbackrest'`,
  );
  await asPg(
    `${env} ${PG_BIN}/pg_dump -d shop --table pgbackrest.pgbench_accounts | ` +
      `PGHOST=${pg.socketDir} PGPORT=${pg.port} PGUSER=postgres ${PG_BIN}/psql -XAtq ` +
      `-v ON_ERROR_STOP=1 --single-transaction -d shop -c 'CREATE SCHEMA pgbackrest' -f -`,
  );
  await asPg(`${PG_BIN}/pg_ctl -D ${dir} stop -m immediate -w`);
  fs.rmSync(dir, { recursive: true, force: true });
  const pSeconds = (performance.now() - t0) / 1000;
  const gotP = await check(pg, "pgbackrest.pgbench_accounts");

  const mb = (n: number) => `${(n / 1048576).toFixed(0)} MiB`;
  const ok = (g: string) => (g === want ? "ok" : `MISMATCH ${g} != ${want}`);
  console.log(
    [
      `## PostgreSQL: one table back from a whole-cluster backup (bench/pg_table_measure.ts)`,
      "",
      `${new Date().toISOString().slice(0, 10)}; table pgbench_accounts ${mb(tableBytes)} ` +
      `(pgbench -s ${SCALE} in shop, beside a ${FILLER_MB} MB table), cluster ${
        mb(clusterBytes)
      } (other: -s ${OTHER}); ` +
      `full backups ${bFull.seconds.toFixed(1)} s (bendsave), ${
        pFull.seconds.toFixed(1)
      } s (pgBackRest)`,
      "",
      "| | seconds | check |",
      "| - | -: | - |",
      `| bendsave restore --table --rename-to --as-of | ${b.seconds.toFixed(1)} | ${ok(gotB)} |`,
      `| pgBackRest restore --db-include, start, pg_dump \\| psql | ${pSeconds.toFixed(1)} | ${
        ok(gotP)
      } |`,
      `| ratio (bendsave / pgBackRest) | ${(b.seconds / pSeconds).toFixed(2)} | |`,
    ].join("\n"),
  );
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
