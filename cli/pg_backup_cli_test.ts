import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { cli, lastOfType, tempDir } from "../testing/mod.ts";
import {
  pgIgnore,
  pgTempDir,
  prepareBendsaveForPostgres,
  SHARED_DENO_DIR,
  startPgCluster,
} from "../testing/pg_cluster.ts";

/**
 * Runs the CLI as the `postgres` user, as an operator would: wal-push runs
 * as that user too, and both write the repository.
 */
async function cliAsPostgres(args: string[]) {
  await prepareBendsaveForPostgres();
  return await cli(args, {
    wrap: ["runuser", "-u", "postgres", "--"],
    env: { DENO_DIR: SHARED_DENO_DIR, HOME: "/var/lib/postgresql" },
  });
}

Deno.test({
  name:
    "backup --from postgresql:// takes a base backup whose WAL wal-push archived, with a tablespace",
  ignore: pgIgnore,
  fn: async () => {
    await using work = await pgTempDir();
    const repo = path.join(work.dir, "repo");
    await using pg = await startPgCluster({ archiveTo: repo });
    const space = path.join(work.dir, "space");
    fs.mkdirSync(space);
    fs.chownSync(space, fs.statSync(pg.root).uid, fs.statSync(pg.root).gid);
    await pg.sql(
      `CREATE TABLESPACE outside LOCATION '${space}';
       CREATE TABLE far (n int) TABLESPACE outside; INSERT INTO far SELECT generate_series(1, 1000)`,
    );
    const oid = await pg.sql("SELECT oid FROM pg_tablespace WHERE spcname = 'outside'");

    const r = await cliAsPostgres(["backup", "--from", pg.uri(), "--to", repo, "--json"]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const summary = lastOfType(r.stdout, "summary");
    assert.deepEqual(
      (summary.parts as { name: string }[]).map((p) => p.name),
      ["data", `tablespace-${oid}`, "backup_label", "tablespace_map", "pg_relations"],
    );
    const shown = JSON.parse((await cliAsPostgres(["show", repo, "--json"])).stdout);
    assert.equal(shown.source.type, "postgresql");
    const settings = shown.source.settings as Record<string, string>;
    assert.deepEqual(JSON.parse(settings["pg.tablespaces"]!), [{ oid, location: space }]);
    const sysId = await pg.sql("SELECT system_identifier FROM pg_control_system()");
    assert.equal(shown.source.key, `postgresql:${sysId}:${pg.dataDir}`);
    // The stop segment is in the repository's WAL archive (the backup checked it).
    assert.equal(
      await pg.sql(
        "SELECT last_failed_wal IS NULL OR last_archived_time > last_failed_time FROM pg_stat_archiver",
      ),
      "t",
    );

    // The human summary names the source.
    const again = await cliAsPostgres(["backup", "--from", pg.uri(), "--to", repo]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /source +PostgreSQL 15\.\d+ system \d+, data directory /);
  },
});

Deno.test({
  name: "backup --from postgresql:// refuses bad input in one line, never printing the password",
  ignore: pgIgnore,
  fn: async () => {
    await using t = await tempDir();
    const repo = path.join(t.dir, "repo");
    await using pg = await startPgCluster({ password: "the-right-one" });
    const oneLine = (stderr: string) => {
      assert.equal(stderr.trim().split("\n").length, 1, stderr);
      return stderr;
    };

    const secret = "N0t-The-Password";
    const wrong = await cli([
      "backup",
      "--from",
      pg.uri({ user: "bendsave_pw", password: secret }),
      "--to",
      repo,
    ], { env: { PGPASSFILE: "/nonexistent" } });
    assert.equal(wrong.code, 1, wrong.stderr);
    assert.ok(!oneLine(wrong.stderr).includes(secret), wrong.stderr);
    assert.ok(!wrong.stdout.includes(secret));
    assert.match(wrong.stderr, /refused the login/);
    assert.ok(!fs.existsSync(repo), "no repository is made for a refused source");

    const notData = path.join(t.dir, "elsewhere");
    fs.mkdirSync(notData);
    const dir = await cli(["backup", "--from", pg.uri(), "--to", repo, "--pg-data", notData]);
    assert.equal(dir.code, 2, dir.stderr);
    assert.match(oneLine(dir.stderr), /is not the data directory of the PostgreSQL server/);

    const usage = await cli(["backup", "--from", t.dir, "--to", repo, "--pg-data", notData]);
    assert.equal(usage.code, 2, usage.stderr);
    assert.match(usage.stderr, /--pg-data is for a PostgreSQL server/);

    await using off = await startPgCluster({ archiveMode: false });
    const noArchive = await cli(["backup", "--from", off.uri(), "--to", repo]);
    assert.equal(noArchive.code, 2, noArchive.stderr);
    assert.match(oneLine(noArchive.stderr), /archive_mode = off/);
    assert.ok(!fs.existsSync(repo));
  },
});
