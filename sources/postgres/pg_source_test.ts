import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { backup } from "../../store/backup/backup.ts";
import { restore } from "../../store/restore/restore.ts";
import { FsStore } from "../../store/drivers/fs.ts";
import { DatabaseError, InvalidInput } from "../../store/errors.ts";
import { pgExcluded, pgPartExclude, pgSource, type PgSourceOptions } from "./pg_source.ts";
import {
  type PgCluster,
  pgIgnore,
  pgTempDir,
  startPgCluster,
  startPgFromDataDir,
} from "../../testing/pg_cluster.ts";
import { tempDir } from "../../testing/mod.ts";

/** The error `fn` rejects with, checked to be an instance of `cls`. */
async function rejectsWith<E extends Error>(
  fn: () => Promise<unknown>,
  cls: new (...a: never[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    return e;
  }
  throw new Error(`expected ${cls.name}, nothing was thrown`);
}

/** The archive check against the harness's `cp` archive. */
function cpArchive(pg: PgCluster): Pick<PgSourceOptions, "archived" | "archiveWaitMs"> {
  return {
    archived: (_id, name) => Promise.resolve(fs.existsSync(path.join(pg.walArchiveDir, name))),
    archiveWaitMs: 30_000,
  };
}

/** Every path below `dir`, relative, `/`-separated, directories with a trailing `/`. */
function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        out.push(r + "/");
        walk(r);
      } else out.push(r);
    }
  };
  walk("");
  return out.sort();
}

const SETTING_KEYS = [
  "host",
  "pg.data_directory",
  "pg.start_lsn",
  "pg.start_time",
  "pg.start_wal",
  "pg.stop_lsn",
  "pg.stop_time",
  "pg.stop_wal",
  "pg.system_identifier",
  "pg.tablespaces",
  "pg.timeline",
  "pg.version",
  "pg.wal_segment_size",
];

Deno.test("pgExcluded leaves out what PostgreSQL's documentation lists, keeping the directories", () => {
  for (
    const p of [
      "pg_wal/000000010000000000000001",
      "pg_wal/00000002.history",
      "pg_wal/archive_status/000000010000000000000001.done",
      "postmaster.pid",
      "postmaster.opts",
      "backup_label",
      "tablespace_map",
      "pg_replslot/slot1",
      "pg_stat_tmp/global.stat",
      "pg_subtrans/0000",
      "pg_notify/0000",
      "pg_serial/0000",
      "pg_snapshots/00000003-00000002-1",
      "pg_dynshmem/mmap.1",
      "base/pgsql_tmp",
      "base/pgsql_tmp/pgsql_tmp123.0",
      "PG_15_202209061/5/pgsql_tmp",
      "global/pg_internal.init",
      "base/5/pg_internal.init",
      "postgresql.auto.conf.tmp",
      "base/5/t3_16390",
      "base/5/t3_16390_fsm",
      "base/5/t12_16400.1",
    ]
  ) assert.ok(pgExcluded(p), p);
  for (
    const p of [
      "pg_wal",
      "pg_wal/archive_status",
      "pg_replslot",
      "pg_stat_tmp",
      "pg_subtrans",
      "base/1/1259",
      "global/pg_control",
      "pg_xact/0000",
      "pg_stat",
      "postgresql.conf",
      "postgresql.auto.conf",
      "pg_tblspc/16384",
      "base/backup_label",
    ]
  ) assert.ok(!pgExcluded(p), p);
});

Deno.test("pgPartExclude leaves out an unlogged relation's files except its init fork", async () => {
  await using t = await tempDir();
  const db = path.join(t.dir, "base", "5");
  fs.mkdirSync(db, { recursive: true });
  for (
    const f of ["100", "100_init", "100_fsm", "100.1", "100_vm", "200", "200_fsm", "2000_init"]
  ) {
    fs.writeFileSync(path.join(db, f), "");
  }
  const exclude = pgPartExclude(t.dir);
  for (const p of ["base/5/100", "base/5/100.1", "base/5/100_fsm", "base/5/100_vm"]) {
    assert.ok(exclude(p), p);
  }
  for (const p of ["base/5/100_init", "base/5/200", "base/5/200_fsm", "base/5/2000_init", "base"]) {
    assert.ok(!exclude(p), p);
  }
  assert.ok(exclude("pg_wal/000000010000000000000001"));
});

Deno.test({
  name: "pgSource takes a base backup of a live cluster that restores and replays",
  ignore: pgIgnore,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using pg = await startPgCluster();
    await using t = await tempDir();
    await pg.pgbench(["-i", "-s", "2", "-q"]);
    await pg.sql(
      "CREATE TABLE marks (n int); CREATE UNLOGGED TABLE scratch (n int); INSERT INTO scratch SELECT generate_series(1, 10000)",
    );
    const scratch = await pg.sql("SELECT pg_relation_filepath('scratch')");
    const store = await FsStore.open(path.join(t.dir, "repo"), { create: true });

    // 1. While pgbench writes.
    const bench = pg.pgbench(["-n", "-T", "6", "-c", "2"]);
    const first = await backup(store, await pgSource(pg.uri(), cpArchive(pg)), { workers: 1 });
    await bench;
    const m = first.manifest;
    assert.equal(m.incomplete, false, m.warnings.join("\n"));
    assert.equal(m.source.type, "postgresql");
    const s = m.source.settings;
    assert.deepEqual(Object.keys(s).sort(), SETTING_KEYS);
    const sysId = await pg.sql("SELECT system_identifier FROM pg_control_system()");
    assert.equal(s["pg.system_identifier"], sysId);
    assert.equal(m.source.key, `postgresql:${sysId}:${pg.dataDir}`);
    assert.equal(s["pg.data_directory"], pg.dataDir);
    assert.equal(s["pg.version"], await pg.sql("SHOW server_version_num"));
    assert.equal(s["pg.timeline"], "1");
    assert.equal(s["pg.wal_segment_size"], String(16 * 1024 * 1024));
    assert.equal(s["pg.tablespaces"], "[]");
    assert.match(s["pg.start_lsn"]!, /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.equal(
      s["pg.start_wal"],
      await pg.sql(`SELECT pg_walfile_name('${s["pg.start_lsn"]}')`),
    );
    assert.equal(s["pg.stop_wal"], await pg.sql(`SELECT pg_walfile_name('${s["pg.stop_lsn"]}')`));
    const start = Date.parse(s["pg.start_time"]!);
    const stop = Date.parse(s["pg.stop_time"]!);
    assert.ok(s["pg.stop_time"]!.endsWith("Z") && start <= stop, `${start} ${stop}`);
    assert.ok(Math.abs(start - m.timeMs) < 60_000);
    assert.deepEqual(m.parts.map((p) => p.name), ["data", "backup_label"]);
    assert.ok(fs.existsSync(path.join(pg.walArchiveDir, s["pg.stop_wal"]!)));

    // 2. Once pgbench is done, a base backup after a small change writes far fewer bytes.
    await pg.sql("VACUUM; CHECKPOINT");
    const quiet = await backup(store, await pgSource(pg.uri(), cpArchive(pg)), { workers: 1 });
    await pg.sql("INSERT INTO marks VALUES (1)");
    const second = await backup(store, await pgSource(pg.uri(), cpArchive(pg)), { workers: 1 });
    assert.equal(second.parent, quiet.name);
    const [a, b] = [first.manifest.stats, second.manifest.stats];
    assert.ok(
      b.addedBytes * 5 < a.addedBytes,
      `first added ${a.addedBytes}, second ${b.addedBytes}`,
    );
    assert.ok(b.newBytes * 10 < b.bytes, `second stored ${b.newBytes} new bytes of ${b.bytes}`);
    assert.ok(b.filesUnchanged > 0);

    // Rows after the backup, then the WAL that holds them.
    await pg.sql("INSERT INTO marks VALUES (2)");
    const want = await pg.sql(
      "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ':' || (SELECT count(*) FROM pgbench_history) || ':' || (SELECT string_agg(n::text, ',' ORDER BY n) FROM marks)",
    );
    const lastWal = await pg.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    await pg.sql("SELECT pg_switch_wal()");
    for (let i = 0; i < 100 && !fs.existsSync(path.join(pg.walArchiveDir, lastWal)); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await pg.stop();

    // 3. The data part holds no excluded path, and keeps the empty directories.
    await using reachable = await pgTempDir();
    const data = path.join(reachable.dir, "data");
    await restore(store, data, { manifest: second.name, part: "data", workers: 0 });
    const entries = listTree(data);
    for (const e of entries) assert.ok(!pgExcluded(e.replace(/\/$/, "")), e);
    for (const d of ["pg_wal/", "pg_wal/archive_status/", "pg_replslot/", "pg_stat_tmp/"]) {
      assert.ok(entries.includes(d), d);
    }
    assert.deepEqual(entries.filter((e) => e.startsWith("pg_wal/") && e !== "pg_wal/"), [
      "pg_wal/archive_status/",
    ]);
    assert.ok(!entries.includes("postmaster.pid") && entries.includes("global/pg_control"));
    // An unlogged table: only its init fork.
    assert.ok(!entries.includes(scratch) && entries.includes(`${scratch}_init`), scratch);

    // 4. With its backup_label and the archived WAL, the server replays to the end.
    const label = path.join(t.dir, "label");
    await restore(store, label, { manifest: second.name, part: "backup_label", workers: 0 });
    const labelText = fs.readFileSync(path.join(label, "backup_label"), "utf8");
    assert.match(labelText, /^START WAL LOCATION: .* \(file [0-9A-F]{24}\)$/m);
    fs.copyFileSync(path.join(label, "backup_label"), path.join(data, "backup_label"));
    fs.writeFileSync(path.join(data, "recovery.signal"), "");
    await using restored = await startPgFromDataDir(data, {
      settings: { restore_command: `cp ${pg.walArchiveDir}/%f %p` },
    });
    for (let i = 0; i < 300; i++) {
      if (await restored.sql("SELECT pg_is_in_recovery()") === "f") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await restored.sql("SELECT pg_is_in_recovery()"), "f", restored.log());
    const got = await restored.sql(
      "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ':' || (SELECT count(*) FROM pgbench_history) || ':' || (SELECT string_agg(n::text, ',' ORDER BY n) FROM marks)",
    );
    assert.equal(got, want);
    // An unlogged table comes back empty, as after a crash.
    assert.equal(await restored.sql("SELECT count(*) FROM scratch"), "0");
  },
});

Deno.test({
  name: "pgSource refuses a server without archive_mode, before anything is read",
  ignore: pgIgnore,
  fn: async () => {
    await using pg = await startPgCluster({ archiveMode: false });
    const e = await rejectsWith(() => pgSource(pg.uri()), InvalidInput);
    assert.match(e.message, /archive_mode = off/);
    assert.ok(!e.message.includes("\n"), e.message);
  },
});

Deno.test({
  name: "pgSource refuses a data directory that is not the server's",
  ignore: pgIgnore,
  fn: async () => {
    await using pg = await startPgCluster();
    await using t = await tempDir();
    const empty = path.join(t.dir, "empty");
    fs.mkdirSync(empty);
    const copy = path.join(t.dir, "copy");
    const cp = await new Deno.Command("cp", { args: ["-a", pg.dataDir, copy] }).output();
    assert.ok(cp.success);
    for (const dir of [empty, copy]) {
      const e = await rejectsWith(() => pgSource(pg.uri(), { pgData: dir }), InvalidInput);
      assert.ok(e.message.includes(`"${dir}" is not the data directory`), e.message);
      assert.ok(e.message.includes(pg.dataDir), e.message);
    }
    // The server's own, given explicitly, is taken.
    const src = await pgSource(pg.uri(), { pgData: pg.dataDir + "/" });
    assert.equal(src.info.settings["pg.data_directory"], pg.dataDir);
    await src.close?.();
  },
});

Deno.test({
  name: "pgSource fails the backup when its WAL does not reach the archive, naming the reason",
  ignore: pgIgnore,
  fn: async () => {
    await using pg = await startPgCluster({ archiveCommand: "exit 1" });
    await using t = await tempDir();
    const store = await FsStore.open(path.join(t.dir, "repo"), { create: true });
    const src = await pgSource(pg.uri(), {
      archiveWaitMs: 3000,
      archived: () => Promise.resolve(false),
    });
    const e = await rejectsWith(() => backup(store, src, { workers: 0 }), DatabaseError);
    assert.match(e.message, /base backup.s WAL is not in this repository.s archive/);
    assert.match(e.message, /archiver last failed on [0-9A-F]{24}/);
    // The failed first backup left no repository and no running backup on the server.
    assert.equal(
      await pg.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND application_name = 'bendsave'",
      ),
      "0",
    );
  },
});
