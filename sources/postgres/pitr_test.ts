/**
 * Point-in-time recovery end to end on a real PostgreSQL 15 (the design's
 * demo): base backups, continuous WAL archiving through `bendsave wal-push`,
 * and `restore --as-of` back to two noted times and to the latest WAL. The
 * server and every bendsave command run as the `postgres` user.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {
  bendsaveAsPostgres,
  bendsaveCommand,
  type PgCluster,
  pgIgnore,
  prepareBendsaveForPostgres,
  shellQuote,
  startPgCluster,
  startPgFromDataDir,
  writeAsPostgres,
} from "../../testing/pg_cluster.ts";
import { FsStore } from "../../store/drivers/fs.ts";
import { Repository } from "../../store/repository.ts";
import { listWal } from "../../store/wal_archive.ts";
import { damageBlock } from "../../store/restore/_damage_test_helper.ts";
import { syncfsIsSafe } from "./pg_restore.ts";

const bendsave = bendsaveAsPostgres;

async function ok(args: string[]): Promise<string> {
  const r = await bendsave(args);
  assert.equal(r.code, 0, `bendsave ${args.join(" ")}:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/**
 * Vacuums `repo` down to its newest base backup; asserts (from the NDJSON
 * summary, the last line) that one backup and some WAL went.
 */
async function vacuumToNewest(repo: string, extra: string[] = []): Promise<void> {
  const lines = (await ok(["vacuum", repo, "--max-backups", "1", "--json", ...extra])).trim();
  const vac = JSON.parse(lines.split("\n").at(-1)!);
  assert.equal(vac.delete_manifests.length, 1);
  assert.ok(vac.delete_wal.length >= 1, JSON.stringify(vac.delete_wal));
}

/** An order-independent checksum of the pgbench tables and the demo table. */
function checksum(pg: PgCluster): Promise<string> {
  return pg.sql(
    `SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
       SELECT 'a' || aid || ':' || abalance AS x FROM pgbench_accounts
       UNION ALL SELECT 'b' || bid || ':' || bbalance FROM pgbench_branches
       UNION ALL SELECT 't' || tid || ':' || tbalance FROM pgbench_tellers) s`,
  );
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

/** Starts PostgreSQL on a restored data directory and waits for the end of recovery. */
async function recovered(
  dataDir: string,
  settings?: Record<string, string>,
): Promise<PgCluster> {
  const pg = await startPgFromDataDir(dataDir, settings ? { settings } : {});
  for (let i = 0; i < 600; i++) {
    const state = await pg.sql("SELECT pg_is_in_recovery()").catch((e) => {
      throw new Error(`${(e as Error).message}\n${pg.log()}`);
    });
    if (state === "f") return pg;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the restored server did not finish recovery:\n${pg.log()}`);
}

Deno.test({
  name: "restore --as-of brings a PostgreSQL cluster back to each noted time and to the latest WAL",
  ignore: pgIgnore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await prepareBendsaveForPostgres();
    const repoRoot = await Deno.makeTempDir({ prefix: "bendsave-pitr-" });
    fs.chmodSync(repoRoot, 0o777);
    const repo = path.join(repoRoot, "repo");
    try {
      await using pg = await startPgCluster({ archiveTo: repo });
      await pg.pgbench(["-i", "-s", "1", "-q"]);
      await pg.sql(
        "CREATE TABLE demo (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())",
      );
      await ok(["backup", "--from", pg.uri(), "--to", repo]);

      await pg.pgbench(["-t", "200", "-n"]);
      await pg.sql("INSERT INTO demo (id) VALUES (1)");
      const sumT1 = await checksum(pg);
      const t1 = await pg.sql("SELECT now()");
      await new Promise((r) => setTimeout(r, 50));
      await pg.sql("INSERT INTO demo (id) VALUES (2)");
      await ok(["backup", "--from", pg.uri(), "--to", repo]);
      await pg.pgbench(["-t", "200", "-n"]);
      await pg.sql("INSERT INTO demo (id) VALUES (3)");
      const sumT2 = await checksum(pg);
      const t2 = await pg.sql("SELECT now()");
      await new Promise((r) => setTimeout(r, 50));
      await pg.sql("INSERT INTO demo (id) VALUES (4)");
      const sumLatest = await checksum(pg);
      const last = await pg.sql("SELECT pg_walfile_name(pg_switch_wal())");
      await archived(pg, last);
      await pg.stop();
      fs.rmSync(pg.dataDir, { recursive: true, force: true });

      const list = await ok(["list", repo, "--json"]);
      assert.equal(JSON.parse(list).length, 2, list);

      const cases: [string, number[], string][] = [
        [t1, [1], sumT1],
        [t2, [1, 2, 3], sumT2],
        ["latest", [1, 2, 3, 4], sumLatest],
      ];
      for (const [asOf, rows, sum] of cases) {
        const target = path.join(repoRoot, `data-${rows.length}`);
        const dry = await ok(["restore", "--from", repo, "--to", target, "--as-of", asOf]);
        assert.match(dry, /dry run: nothing was written/);
        if (Deno.env.get("SHOW_DRY")) console.log(dry);
        assert.equal(fs.existsSync(target), false, "the dry run wrote nothing");
        await ok(["restore", "--from", repo, "--to", target, "--as-of", asOf, "--confirm"]);
        await using restored = await recovered(target);
        const ids = await restored.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM demo");
        assert.equal(ids, rows.join(","), `as of ${asOf}:\n${restored.log()}`);
        assert.equal(await checksum(restored), sum, `pgbench tables as of ${asOf}`);
      }

      // Vacuum keeps the newest base backup and deletes the WAL only the older one needed:
      // T1 is then outside the window, T2 still inside it.
      await vacuumToNewest(repo);
      const after = await bendsave([
        "restore",
        "--from",
        repo,
        "--to",
        path.join(repoRoot, "x"),
        "--as-of",
        t1,
      ]);
      assert.equal(after.code, 2, after.stderr);
      assert.match(after.stderr, /no base backup ended before/);
      await ok(["restore", "--from", repo, "--to", path.join(repoRoot, "y"), "--as-of", t2]);
      assert.equal((await bendsave(["verify", repo])).code, 0);

      // A time outside the window is refused, stating the window.
      const early = await bendsave([
        "restore",
        "--from",
        repo,
        "--to",
        path.join(repoRoot, "early"),
        "--as-of",
        "2001-01-01T00:00:00Z",
      ]);
      assert.equal(early.code, 2, early.stderr);
      assert.match(early.stderr, /recoverable window is/);
      assert.equal(early.stderr.trim().split("\n").length, 1, early.stderr);
    } finally {
      await Deno.remove(repoRoot, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "restore --as-of reaches a time on timeline 2 after a promotion; list, show and verify state the window and a WAL gap",
  ignore: pgIgnore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await prepareBendsaveForPostgres();
    const repoRoot = await Deno.makeTempDir({ prefix: "bendsave-pitr-tli-" });
    fs.chmodSync(repoRoot, 0o777);
    const repo = path.join(repoRoot, "repo");
    try {
      const first = path.join(repoRoot, "first");
      {
        await using pg = await startPgCluster({ archiveTo: repo });
        await pg.sql("CREATE TABLE demo (id int PRIMARY KEY)");
        await ok(["backup", "--from", pg.uri(), "--to", repo]);
        await pg.sql("INSERT INTO demo VALUES (1)");
        await archived(pg, await pg.sql("SELECT pg_walfile_name(pg_switch_wal())"));
        await pg.stop();
        await ok(["restore", "--from", repo, "--to", first, "--confirm"]);
      }
      // The restored server promotes onto timeline 2 and archives into the same repository.
      let t = "";
      {
        await using promoted = await recovered(first, {
          archive_mode: "on",
          archive_command: `${bendsaveCommand()} wal-push %p --to ${shellQuote(repo)}`,
        });
        assert.equal(
          await promoted.sql("SELECT timeline_id FROM pg_control_checkpoint()"),
          "2",
          promoted.log(),
        );
        await promoted.sql("INSERT INTO demo VALUES (2)");
        t = await promoted.sql("SELECT now()");
        await new Promise((r) => setTimeout(r, 50));
        await promoted.sql("INSERT INTO demo VALUES (3)");
        await archived(promoted, await promoted.sql("SELECT pg_walfile_name(pg_switch_wal())"));
      }
      const target = path.join(repoRoot, "second");
      const plan = await ok(["restore", "--from", repo, "--to", target, "--as-of", t]);
      assert.match(plan, /WAL\s+000000010000000000000002 \.\. 00000002/, plan);
      await ok(["restore", "--from", repo, "--to", target, "--as-of", t, "--confirm"]);
      {
        await using again = await recovered(target);
        assert.equal(
          await again.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM demo"),
          "1,2",
        );
      }

      // list and show state the window; verify is clean, then reports a gap as damage.
      const listed = JSON.parse(await ok(["list", repo, "--json"]));
      assert.ok(listed[0].recoverable_window?.to, JSON.stringify(listed[0]));
      assert.match(await ok(["list", repo]), /recoverable from \S+ \S+ to /);
      assert.match(await ok(["show", repo]), /window\s+PostgreSQL postgresql:\d+:/);
      assert.equal((await bendsave(["verify", repo])).code, 0);
      const sys = fs.readdirSync(path.join(repo, "wal"))[0]!;
      const segments = fs.readdirSync(path.join(repo, "wal", sys)).filter((n) =>
        /^[0-9A-F]{24}$/.test(n)
      ).sort();
      assert.ok(segments.length >= 3, segments.join(" "));
      fs.rmSync(path.join(repo, "wal", sys, segments[1]!));
      const v = await bendsave(["verify", repo]);
      assert.equal(v.code, 1, v.stdout);
      assert.match(v.stdout, new RegExp(`missing after ${segments[0]}`));
      assert.match(v.stdout, /verdict: DAMAGED, 1 WAL gap/);
    } finally {
      await Deno.remove(repoRoot, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "a base backup killed with SIGKILL at any point leaves the repository valid, the server not in backup mode, and the next backup completes",
  ignore: pgIgnore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await prepareBendsaveForPostgres();
    const repoRoot = await Deno.makeTempDir({ prefix: "bendsave-pitr-kill-" });
    fs.chmodSync(repoRoot, 0o777);
    const repo = path.join(repoRoot, "repo");
    try {
      await using pg = await startPgCluster({ archiveTo: repo });
      await pg.pgbench(["-i", "-s", "1", "-q"]);
      await ok(["backup", "--from", pg.uri(), "--to", repo]);
      for (const at of ["pack:1", "index:1", "before-manifest:1"]) {
        await pg.pgbench(["-t", "50", "-n"]);
        const killed = await bendsave(["backup", "--from", pg.uri(), "--to", repo], {
          BENDSAVE_CRASH_AT: at,
        });
        assert.notEqual(killed.code, 0, `killed at ${at}: ${killed.stderr}`);
        const v = await bendsave(["verify", repo]);
        assert.equal(v.code, 0, `verify after a kill at ${at}:\n${v.stdout}${v.stderr}`);
        assert.equal(
          JSON.parse(await ok(["list", repo, "--json"])).length,
          1,
          `no backup was committed by the backup killed at ${at}`,
        );
      }
      // The killed sessions' backups were aborted by the server: a new one starts and completes.
      await pg.pgbench(["-t", "50", "-n"]);
      await ok(["backup", "--from", pg.uri(), "--to", repo]);
      assert.equal(JSON.parse(await ok(["list", repo, "--json"])).length, 2);
      const dry = await ok(["restore", "--from", repo, "--to", path.join(repoRoot, "r")]);
      assert.match(dry, /dry run: nothing was written/);
      assert.equal((await bendsave(["verify", repo, "--read-data"])).code, 0);
    } finally {
      await Deno.remove(repoRoot, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "wal-push --async as archive_command under pgbench load and a prefetching restore --as-of give the exact rows",
  ignore: pgIgnore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await prepareBendsaveForPostgres();
    const repoRoot = await Deno.makeTempDir({ prefix: "bendsave-pitr-async-" });
    fs.chmodSync(repoRoot, 0o777);
    const repo = path.join(repoRoot, "repo");
    try {
      await using pg = await startPgCluster({
        archiveCommand: `${bendsaveCommand()} wal-push %p --to ${shellQuote(repo)} --async`,
        settings: { max_wal_size: "64MB" },
      });
      await pg.pgbench(["-i", "-s", "2", "-q"]);
      await pg.sql("CREATE TABLE demo (id int PRIMARY KEY)");
      await ok(["backup", "--from", pg.uri(), "--to", repo]);
      // (pushes before the backup created the repository failed, and PostgreSQL retried)
      const failed = await pg.sql("SELECT failed_count FROM pg_stat_archiver");
      // pgbench writes several segments while the background pusher archives them.
      await pg.pgbench(["-n", "-c", "2", "-j", "2", "-t", "1500"]);
      await pg.sql("INSERT INTO demo VALUES (1)");
      const sumT = await checksum(pg);
      const t = await pg.sql("SELECT now()");
      await new Promise((r) => setTimeout(r, 50));
      await pg.sql("INSERT INTO demo VALUES (2)");
      await pg.pgbench(["-n", "-t", "300"]);
      const last = await pg.sql("SELECT pg_walfile_name(pg_switch_wal())");
      await archived(pg, last);
      assert.equal(await pg.sql("SELECT failed_count FROM pg_stat_archiver"), failed, pg.log());
      const walDir = path.join(pg.dataDir, "pg_wal");
      await pg.stop();
      assert.ok(fs.existsSync(path.join(walDir, "bendsave-push")), "the spool was used");
      fs.rmSync(pg.dataDir, { recursive: true, force: true });
      assert.equal((await bendsave(["verify", repo])).code, 0);

      const target = path.join(repoRoot, "restored");
      await ok(["restore", "--from", repo, "--to", target, "--as-of", t, "--confirm"]);
      const auto = fs.readFileSync(path.join(target, "postgresql.auto.conf"), "utf8");
      assert.match(auto, /restore_command = '.* wal-fetch %f %p --from .* --prefetch 8'/);
      if (syncfsIsSafe()) assert.match(auto, /^recovery_init_sync_method = 'syncfs'$/m);
      // The restore seeded the spool with the first segments the replay reads, each with the
      // .meta the foreground checks, owned by the server's user.
      const seeded = path.join(target, "pg_wal", "bendsave-prefetch");
      const label = fs.readFileSync(path.join(target, "backup_label"), "utf8");
      const firstWal = /^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)$/m.exec(label)![1]!;
      const meta = JSON.parse(fs.readFileSync(path.join(seeded, `${firstWal}.meta`), "utf8"));
      assert.equal(meta.name, firstWal);
      assert.equal(meta.size, fs.statSync(path.join(seeded, firstWal)).size);
      assert.equal(
        fs.statSync(path.join(seeded, firstWal)).uid,
        fs.statSync(path.join(target, "PG_VERSION")).uid,
      );
      await using restored = await recovered(target);
      assert.equal(
        await restored.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM demo"),
        "1",
      );
      assert.equal(await checksum(restored), sumT, "pgbench tables as at T");
      // The prefetcher empties its spool once the server is out of recovery and it idles out.
      const spool = path.join(target, "pg_wal", "bendsave-prefetch");
      for (let i = 0; i < 200 && fs.existsSync(spool) && fs.readdirSync(spool).length > 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(fs.existsSync(spool), "restore_command prefetched into its spool");
      assert.deepEqual(fs.readdirSync(spool), []);

      // A WAL segment the restore cannot fetch ahead (its block damaged) is named in a
      // warning; the restore still completes, and the spool holds only whole, checked files.
      const archive = await Repository.open(await FsStore.open(repo));
      const segments = (await listWal(archive)).filter((w) => /^[0-9A-F]{24}$/.test(w.name));
      const record = segments[segments.findIndex((w) => w.name === firstWal) + 1]!;
      const second = record.name;
      await damageBlock(archive, record.blocks[0]!, 40, 0xff);
      const { uid, gid } = fs.statSync(repo);
      for (const e of fs.readdirSync(repo, { recursive: true })) {
        fs.chownSync(path.join(repo, String(e)), uid, gid); // rewritten by this (root) process
      }
      const again = path.join(repoRoot, "restored-again");
      const r = await bendsave([
        "restore",
        "--from",
        repo,
        "--to",
        again,
        "--as-of",
        t,
        "--confirm",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`WAL file ${second} was not fetched ahead \\(.*\\): recovery fetches it itself`),
      );
      assert.deepEqual(fs.readdirSync(path.join(again, "pg_wal", "bendsave-prefetch")).sort(), [
        firstWal,
        `${firstWal}.meta`,
      ]);
    } finally {
      await Deno.remove(repoRoot, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "restore --as-of from an encrypted repository: archive_command (--async) and restore_command read the passphrase from a password file",
  ignore: pgIgnore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await prepareBendsaveForPostgres();
    const repoRoot = await Deno.makeTempDir({ prefix: "bendsave-pitr-enc-" });
    fs.chmodSync(repoRoot, 0o777);
    const repo = path.join(repoRoot, "repo");
    const passphrase = "pitr test passphrase, not in any file of the repository";
    const passFile = path.join(repoRoot, "passphrase");
    await writeAsPostgres(passFile, `${passphrase}\n`);
    const pass = ["--password-file", passFile];
    const marker = "MARKER-encrypted-pitr-row-5e2b";
    try {
      await using pg = await startPgCluster({
        archiveCommand: `${bendsaveCommand()} wal-push %p --to ${
          shellQuote(repo)
        } --async --password-file ${shellQuote(passFile)}`,
      });
      await pg.pgbench(["-i", "-s", "1", "-q"]);
      await pg.sql("CREATE TABLE demo (id int PRIMARY KEY, note text)");
      await ok(["backup", "--from", pg.uri(), "--to", repo, "--encrypt", ...pass]);
      await pg.pgbench(["-t", "200", "-n"]);
      await pg.sql(`INSERT INTO demo VALUES (1, '${marker}')`);
      const sumT = await checksum(pg);
      const t = await pg.sql("SELECT now()");
      await new Promise((r) => setTimeout(r, 50));
      await ok(["backup", "--from", pg.uri(), "--to", repo, ...pass]); // after T
      await pg.sql("INSERT INTO demo VALUES (2, 'after T')");
      await archived(pg, await pg.sql("SELECT pg_walfile_name(pg_switch_wal())"));
      await pg.stop();
      fs.rmSync(pg.dataDir, { recursive: true, force: true });

      // The sealed archive: the row's text is in no stored file, every record is version 2.
      const sys = fs.readdirSync(path.join(repo, "wal"))[0]!;
      const records = fs.readdirSync(path.join(repo, "wal", sys));
      assert.ok(records.length >= 2, records.join(" "));
      for (const r of records) {
        assert.equal(fs.readFileSync(path.join(repo, "wal", sys, r))[4], 2, `${r} is sealed`);
      }
      const walk = (dir: string): string[] =>
        fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
          e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]
        );
      for (const f of walk(repo)) {
        assert.equal(fs.readFileSync(f).indexOf(marker), -1, `the row's text is in ${f}`);
      }

      // The passphrase only in BENDSAVE_PASSWORD: restore_command could not get it.
      const target = path.join(repoRoot, "data-t");
      const envOnly = await bendsave(
        ["restore", "--from", repo, "--to", target, "--as-of", t, "--confirm"],
        { BENDSAVE_PASSWORD: passphrase },
      );
      assert.equal(envOnly.code, 2, envOnly.stderr);
      assert.match(envOnly.stderr, /restore_command this restore writes needs its passphrase/);
      assert.equal(fs.existsSync(target), false);

      const listed = JSON.parse(await ok(["list", repo, "--json", ...pass]));
      assert.ok(listed[0].recoverable_window?.to, JSON.stringify(listed[0]));
      // The restore takes a --password-command (quotes and spaces in it), which the restored
      // server's restore_command runs in turn: archive_command above used --password-file.
      const command = `cat '${passFile}'`;
      await ok([
        "restore",
        "--from",
        repo,
        "--to",
        target,
        "--as-of",
        t,
        "--confirm",
        "--password-command",
        command,
      ]);
      const auto = fs.readFileSync(path.join(target, "postgresql.auto.conf"), "utf8");
      assert.match(auto, /restore_command = '.* --password-command .*cat .*'/);
      assert.equal(auto.indexOf(passphrase), -1, "the passphrase is not in postgresql.auto.conf");
      await using restored = await recovered(target);
      assert.equal(
        await restored.sql("SELECT string_agg(id || ':' || note, ',' ORDER BY id) FROM demo"),
        `1:${marker}`,
        restored.log(),
      );
      assert.equal(await checksum(restored), sumT);

      // verify: with the key every record and block; without it, by hashes only.
      const keyed = await bendsave(["verify", repo, ...pass]);
      assert.equal(keyed.code, 0, keyed.stdout + keyed.stderr);
      const keyless = await bendsave(["verify", repo]);
      assert.equal(keyless.code, 0, keyless.stdout + keyless.stderr);
      assert.match(keyless.stdout, /hashes only|without the key|no passphrase/i);

      // Vacuum keeps the newest base backup and expires the WAL only the older one needed.
      await vacuumToNewest(repo, pass);
      const gone = await bendsave([
        "restore",
        "--from",
        repo,
        "--to",
        path.join(repoRoot, "x"),
        "--as-of",
        t,
        ...pass,
      ]);
      assert.equal(gone.code, 2, gone.stderr);
      assert.match(gone.stderr, /no base backup ended before/);
      assert.equal((await bendsave(["verify", repo, "--read-data", ...pass])).code, 0);
    } finally {
      await Deno.remove(repoRoot, { recursive: true }).catch(() => {});
    }
  },
});
