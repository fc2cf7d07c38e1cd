/**
 * `wal-push --async` and `wal-fetch --prefetch` from the command line, with
 * synthetic segments (no server): the background processes are real
 * (detached bendsave processes, as PostgreSQL would start them).
 *
 * @module
 */
import { Repository } from "../store/repository.ts";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { cli, lastOfType, tempDir } from "../testing/mod.ts";
import { makeDataDir, makeSegment } from "../testing/wal_segment.ts";
import { sha256Hex } from "../formats/hash.ts";
import { FsStore } from "../store/drivers/fs.ts";
import { listWal } from "../store/wal_archive.ts";
import { spoolLockLive } from "../store/wal_spool.ts";

/** A repository made by a backup, and a data directory with `count` segments marked ready. */
async function setup(dir: string, count: number) {
  const repo = path.join(dir, "repo");
  const src = path.join(dir, "src");
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, "a.txt"), "a");
  const b = await cli(["backup", "--from", src, "--to", repo]);
  assert.equal(b.code, 0, b.stderr);
  const pgData = makeDataDir(path.join(dir, "data"));
  fs.mkdirSync(path.join(pgData, "pg_wal", "archive_status"), { recursive: true });
  const names: string[] = [];
  for (let i = 1; i <= count; i++) names.push(writeSegment(pgData, i, i));
  return { repo, pgData, spool: path.join(pgData, "pg_wal", "bendsave-push"), names };
}

function writeSegment(pgData: string, segno: number, seed: number): string {
  const seg = makeSegment({ segno, used: 2 << 20, seed });
  fs.writeFileSync(path.join(pgData, "pg_wal", seg.name), seg.data);
  fs.writeFileSync(path.join(pgData, "pg_wal", "archive_status", `${seg.name}.ready`), "");
  return seg.name;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until no live background process holds `spool` (they exit when idle). */
async function quietSpool(spool: string, role: "push" | "fetch"): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (!spoolLockLive(spool, role)) return;
    await sleep(100);
  }
  throw new Error(`the background ${role} process in ${spool} did not exit`);
}

async function archivedNames(repo: string): Promise<string[]> {
  return (await listWal(await Repository.open(await FsStore.open(repo)))).map((r) => r.name);
}

const push = (
  repo: string,
  pgData: string,
  name: string,
  extra: string[] = [],
  env?: Record<string, string>,
) =>
  cli(
    ["wal-push", path.join(pgData, "pg_wal", name), "--to", repo, "--pg-data", pgData, "--async"]
      .concat(extra),
    env ? { env } : {},
  );

Deno.test("wal-push --async archives through the background pusher and answers again from the spool", async () => {
  await using t = await tempDir();
  const { repo, pgData, names } = await setup(t.dir, 4);
  const first = await push(repo, pgData, names[0]!, ["--json"]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(lastOfType(first.stdout, "summary").status, "pushed");
  assert.ok((await archivedNames(repo)).includes(names[0]!));
  // The pusher went on with the files marked ready: they are answered from the spool.
  for (const name of names.slice(1)) {
    const r = await push(repo, pgData, name, ["--json"]);
    assert.equal(r.code, 0, r.stderr);
  }
  assert.deepEqual(await archivedNames(repo), names);
  const again = await push(repo, pgData, names[0]!, ["--json"]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(lastOfType(again.stdout, "summary").status, "spooled");
  const v = await cli(["verify", repo]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
});

Deno.test("wal-push --async refuses other content under an archived name despite a stale .ok", async () => {
  await using t = await tempDir();
  const { repo, pgData, spool, names } = await setup(t.dir, 1);
  const name = names[0]!;
  assert.equal((await push(repo, pgData, name)).code, 0);
  assert.ok(fs.existsSync(path.join(spool, `${name}.ok`)));
  // The same name with other content (a cluster restored over the old one, say).
  const file = path.join(pgData, "pg_wal", name);
  const before = sha256Hex(fs.readFileSync(file));
  fs.rmSync(file);
  writeSegment(pgData, 1, 99);
  const r = await push(repo, pgData, name);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /already archived with other content/);
  // The archive still holds the first content.
  const dest = path.join(t.dir, "fetched");
  const f = await cli(["wal-fetch", name, dest, "--from", repo, "--pg-data", pgData]);
  assert.equal(f.code, 0, f.stderr);
  assert.equal(sha256Hex(fs.readFileSync(dest)), before);
});

Deno.test("wal-push --async loses nothing when the pusher is killed with -9", async () => {
  await using t = await tempDir();
  const { repo, pgData, spool, names } = await setup(t.dir, 1);
  // Killed right after the record is durable, before its .ok: the foreground
  // starts another pusher, which finds it archived.
  const crashAfter = await push(repo, pgData, names[0]!, ["--json"], {
    BENDSAVE_CRASH_AT: "wal-record",
  });
  assert.equal(crashAfter.code, 0, crashAfter.stderr);
  assert.equal(lastOfType(crashAfter.stdout, "summary").started, 2, "a second pusher was started");
  await quietSpool(spool, "push");
  // Killed before anything is committed, every time: the foreground times out (PostgreSQL
  // keeps the file and retries), and the next run without the crash archives it.
  const second = writeSegment(pgData, 2, 2);
  const crashBefore = await push(repo, pgData, second, ["--timeout", "4"], {
    BENDSAVE_CRASH_AT: "pack",
  });
  assert.equal(crashBefore.code, 1, crashBefore.stderr);
  assert.match(crashBefore.stderr, /did not archive .* within 4 s/);
  assert.deepEqual(await archivedNames(repo), names, "nothing more archived");
  const retry = await push(repo, pgData, second);
  assert.equal(retry.code, 0, retry.stderr);
  assert.deepEqual(await archivedNames(repo), [...names, second]);
  const v = await cli(["verify", repo]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
});

Deno.test("wal-push --async serves concurrent foregrounds, the same file twice among them", async () => {
  await using t = await tempDir();
  const { repo, pgData, names } = await setup(t.dir, 5);
  const runs = await Promise.all(
    [...names, names[0]!, names[3]!].map((name) => push(repo, pgData, name)),
  );
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await archivedNames(repo), names);
  const v = await cli(["verify", repo]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
});

Deno.test("wal-push --async into a missing repository fails with the pusher's one-line reason", async () => {
  await using t = await tempDir();
  const pgData = makeDataDir(path.join(t.dir, "data"));
  fs.mkdirSync(path.join(pgData, "pg_wal", "archive_status"), { recursive: true });
  const name = writeSegment(pgData, 1, 1);
  const repo = path.join(t.dir, "no-such-repo");
  const r = await push(repo, pgData, name);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /no repository at|no bendsave repository/);
  assert.equal(fs.existsSync(repo), false, "nothing was created");
});

Deno.test("wal-fetch --prefetch serves segments fetched ahead, never a spool file of another hash", async () => {
  await using t = await tempDir();
  const { repo, pgData, names } = await setup(t.dir, 5);
  for (const name of names) {
    const r = await cli([
      "wal-push",
      path.join(pgData, "pg_wal", name),
      "--to",
      repo,
      "--pg-data",
      pgData,
    ]);
    assert.equal(r.code, 0, r.stderr);
  }
  // A server in recovery: its own data directory, pg_wal empty.
  const restored = makeDataDir(path.join(t.dir, "restored"));
  fs.writeFileSync(path.join(restored, "recovery.signal"), "");
  const spool = path.join(restored, "pg_wal", "bendsave-prefetch");
  const dest = path.join(restored, "pg_wal", "RECOVERYXLOG");
  const fetch = (name: string) =>
    cli([
      "wal-fetch",
      name,
      dest,
      "--from",
      repo,
      "--pg-data",
      restored,
      "--prefetch",
      "3",
      "--json",
    ]);
  const original = (name: string) => sha256Hex(fs.readFileSync(path.join(pgData, "pg_wal", name)));

  const first = await fetch(names[0]!);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(sha256Hex(fs.readFileSync(dest)), original(names[0]!));
  // Two fetches run side by side: wait for both of the next segments.
  const spooledAhead = () =>
    [names[1]!, names[2]!].every((n) => fs.existsSync(path.join(spool, `${n}.meta`)));
  for (let i = 0; i < 300 && !spooledAhead(); i++) await sleep(50);
  assert.ok(fs.existsSync(path.join(spool, `${names[1]!}.meta`)), "fetched ahead");
  // Damage the next spooled segment after it was checked: it must not be served.
  const spooled = path.join(spool, names[1]!);
  const bytes = fs.readFileSync(spooled);
  bytes[100] = bytes[100]! ^ 0xff;
  fs.writeFileSync(spooled, bytes);
  const second = await fetch(names[1]!);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(sha256Hex(fs.readFileSync(dest)), original(names[1]!));
  const third = await fetch(names[2]!);
  assert.equal(third.code, 0, third.stderr);
  assert.equal(lastOfType(third.stdout, "summary").spooled, true, "served from the spool");
  assert.equal(sha256Hex(fs.readFileSync(dest)), original(names[2]!));

  // History probes and the end of the archive: "not archived", exit 1, nothing written.
  fs.rmSync(dest);
  for (const missing of ["00000002.history", "000000010000000000000009"]) {
    const r = await fetch(missing);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout + r.stderr, /not in the archive/);
    assert.equal(fs.existsSync(dest), false);
  }
  // Out of recovery: the prefetcher empties its spool when it exits.
  fs.rmSync(path.join(restored, "recovery.signal"));
  await quietSpool(spool, "fetch");
  assert.deepEqual(fs.readdirSync(spool), []);
});

Deno.test("wal-push --async and wal-fetch --prefetch refuse a bad --timeout, --queue or --prefetch in one line", async () => {
  for (
    const [args, what] of [
      [["wal-push", "x", "--to", "/r", "--async", "--timeout", "soon"], /--timeout must be/],
      [["wal-push", "x", "--to", "/r", "--async", "--queue", "0"], /--queue must be/],
      [["wal-fetch", "a", "b", "--from", "/r", "--prefetch", "-1"], /--prefetch/],
    ] as const
  ) {
    const r = await cli([...args]);
    assert.notEqual(r.code, 0, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, what);
  }
});

Deno.test("wal-push --async of a WAL file that is not there: exit 2, one line with the fix, no pusher started", async () => {
  await using t = await tempDir();
  const missing = path.join(t.dir, "pg_wal", "000000010000000000000007");
  const r = await cli(["wal-push", missing, "--to", path.join(t.dir, "repo"), "--async"]);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(
    r.stderr,
    /cannot read WAL file ".*" \(ENOENT\): check that archive_command passes %p/,
  );
  assert.equal(fs.existsSync(path.join(t.dir, "pg_wal", "bendsave-push")), false);
});
