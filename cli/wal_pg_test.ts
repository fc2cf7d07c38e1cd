/**
 * The WAL archive with a real PostgreSQL 15 server (skipped where it cannot
 * run): `archive_command = 'bendsave wal-push %p --to REPO'` run by the
 * server as the `postgres` user.
 *
 * @module
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { FsStore } from "../store/drivers/fs.ts";
import { Repository } from "../store/repository.ts";
import { listWal, walArchived } from "../store/wal_archive.ts";
import { controlFileSystemId, parseSegmentHeader } from "../formats/wal.ts";
import { cli } from "../testing/mod.ts";
import { pgIgnore, pgTempDir, startPgCluster } from "../testing/pg_cluster.ts";

/** Polls `fn` until it returns true, or fails after `ms`. */
async function until(what: string, fn: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test({
  name: "wal-push as PostgreSQL's archive_command archives every switched segment",
  ignore: pgIgnore,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using dir = await pgTempDir();
    const repo = path.join(dir.dir, "repo");
    const store = await FsStore.open(repo, { create: true });
    await Repository.init(store, {});
    const owner = fs.statSync(dir.dir);
    for (const f of fs.readdirSync(repo, { recursive: true })) {
      fs.chownSync(path.join(repo, String(f)), owner.uid, owner.gid);
    }
    fs.chownSync(repo, owner.uid, owner.gid);
    await using pg = await startPgCluster({ archiveTo: repo });
    const systemId = controlFileSystemId(
      fs.readFileSync(path.join(pg.dataDir, "global", "pg_control")),
    );
    await pg.sql("CREATE TABLE t (a int); INSERT INTO t SELECT generate_series(1, 10000)");
    const switched: string[] = [];
    for (let i = 0; i < 3; i++) {
      await pg.sql(`INSERT INTO t SELECT generate_series(1, ${1000 * (i + 1)})`);
      switched.push(await pg.sql("SELECT pg_walfile_name(pg_switch_wal())"));
    }
    const last = switched.at(-1)!;
    await until(`${last} to be archived`, async () => {
      const s = await pg.sql("SELECT last_archived_wal, failed_count FROM pg_stat_archiver");
      assert.equal(s.split("|")[1], "0", `archive_command failed:\n${pg.log()}`);
      return s.split("|")[0]! >= last;
    });
    for (const name of switched) assert.ok(await walArchived(store, systemId, name), name);
    const records = await listWal(await Repository.open(store), { systemId });
    assert.ok(records.length >= 3, `${records.length} records`);
    for (const r of records) {
      assert.equal(r.segmentSize, 16 << 20);
      assert.equal(r.timeline, 1);
    }

    // Fetched as restore_command would (in the data directory, so pg_control names the system).
    const dest = path.join(dir.dir, "RECOVERYXLOG");
    const f = await cli(["wal-fetch", last, dest, "--from", repo, "--pg-data", pg.dataDir]);
    assert.equal(f.code, 0, f.stderr);
    const header = parseSegmentHeader(fs.readFileSync(dest));
    assert.equal(header.systemId, systemId);
    const original = path.join(pg.dataDir, "pg_wal", last);
    if (fs.existsSync(original)) {
      assert.deepEqual(fs.readFileSync(dest), fs.readFileSync(original));
    }
    const v = await cli(["verify", repo]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  },
});

Deno.test({
  name: "archive_command into a missing repository fails and PostgreSQL keeps the segment",
  ignore: pgIgnore,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using dir = await pgTempDir();
    const repo = path.join(dir.dir, "no-such-repo");
    await using pg = await startPgCluster({ archiveTo: repo });
    const name = await pg.sql("SELECT pg_walfile_name(pg_switch_wal())");
    await until("a failed archive attempt", async () => {
      const s = await pg.sql("SELECT failed_count FROM pg_stat_archiver");
      return Number(s) > 0;
    });
    assert.ok(fs.existsSync(path.join(pg.dataDir, "pg_wal", name)), "the segment is kept");
    assert.ok(fs.existsSync(path.join(pg.dataDir, "pg_wal", "archive_status", `${name}.ready`)));
    assert.equal(fs.existsSync(repo), false, "nothing was created");
    assert.match(pg.log(), /no repository at|no bendsave repository/);
  },
});
