import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { tempDir } from "../testing/mod.ts";
import { fetchWalPrefetched } from "./wal_prefetch.ts";
import { acquireSpoolLock } from "./wal_spool.ts";

/** A data directory (with `global/`) in recovery or not, and its prefetch spool with a live prefetcher. */
function setup(dir: string, recovering: boolean) {
  const pgData = path.join(dir, "data");
  fs.mkdirSync(path.join(pgData, "global"), { recursive: true });
  fs.mkdirSync(path.join(pgData, "pg_wal"));
  if (recovering) fs.writeFileSync(path.join(pgData, "recovery.signal"), "");
  const spool = path.join(pgData, "pg_wal", "bendsave-prefetch");
  fs.mkdirSync(spool);
  // This process holds the prefetcher's lock: a prefetcher is running, as far as the foreground
  // can tell, but it brings nothing.
  const lock = acquireSpoolLock(spool, "fetch", "/repo");
  assert.ok(lock);
  return { pgData, spool, dest: path.join(pgData, "pg_wal", "RECOVERYXLOG"), lock };
}

Deno.test("fetchWalPrefetched stops waiting for the prefetcher once recovery has ended, and fetches itself", async () => {
  await using t = await tempDir();
  const { pgData, spool, dest, lock } = setup(t.dir, false);
  try {
    const started = Date.now();
    let starts = 0;
    const served = await fetchWalPrefetched("000000010000000000000063", dest, {
      spool,
      repository: "/repo",
      systemId: null,
      startPrefetcher: () => starts++,
      waitMs: 20_000,
      pgData,
    });
    assert.equal(served, false, "the caller fetches it");
    // Before, it waited the whole 20 s (in PostgreSQL's end of recovery: 60 s) for a prefetcher
    // that stops at once when recovery.signal is gone.
    assert.ok(Date.now() - started < 5_000, `returned after ${Date.now() - started} ms`);
    assert.equal(fs.existsSync(dest), false);
  } finally {
    lock.release();
  }
});

Deno.test("fetchWalPrefetched keeps waiting for the prefetcher while recovery goes on", async () => {
  await using t = await tempDir();
  const { pgData, spool, dest, lock } = setup(t.dir, true);
  try {
    const started = Date.now();
    const served = await fetchWalPrefetched("000000010000000000000063", dest, {
      spool,
      repository: "/repo",
      systemId: null,
      startPrefetcher: () => {},
      waitMs: 1_500,
      pgData,
    });
    assert.equal(served, false);
    assert.ok(Date.now() - started >= 1_500, "it waited out its wait");
  } finally {
    lock.release();
  }
});
