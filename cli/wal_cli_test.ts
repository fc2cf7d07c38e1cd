import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { cli, filesUnder, tempDir } from "../testing/mod.ts";
import { makeDataDir, makeSegment, TEST_SYSTEM_ID } from "../testing/wal_segment.ts";
import { sha256Hex } from "../formats/hash.ts";

const CLI = new URL("./main.ts", import.meta.url).pathname;

/** A repository made by a backup, and a data directory with pg_control. */
async function setup(dir: string) {
  const repo = path.join(dir, "repo");
  const src = path.join(dir, "src");
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, "a.txt"), "a");
  const b = await cli(["backup", "--from", src, "--to", repo, "--pack-size", "1"]);
  assert.equal(b.code, 0, b.stderr);
  const pgData = makeDataDir(path.join(dir, "data"));
  return { repo, pgData };
}

function writeSegment(
  pgData: string,
  segno: number,
  seed = 1,
  used = 6 << 20,
  segmentSize = 16 << 20,
): { file: string; name: string } {
  const seg = makeSegment({ segno, used, seed, segmentSize });
  const file = path.join(pgData, "pg_wal", seg.name);
  fs.writeFileSync(file, seg.data);
  return { file, name: seg.name };
}

const oneLine = (s: string) => s.trim().split("\n").length === 1 && s.trim().length > 0;

Deno.test("wal-push and wal-fetch keep PostgreSQL's archive and restore command contracts", async () => {
  await using t = await tempDir();
  const { repo, pgData } = await setup(t.dir);
  const { file, name } = writeSegment(pgData, 3);
  const push = ["wal-push", file, "--to", repo, "--pg-data", pgData];
  const first = await cli(push);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout + first.stderr, "", "a push prints nothing");
  const again = await cli(push);
  assert.equal(again.code, 0, again.stderr);

  const dest = path.join(t.dir, "RECOVERYXLOG");
  const fetch = await cli(["wal-fetch", name, dest, "--from", repo, "--pg-data", pgData]);
  assert.equal(fetch.code, 0, fetch.stderr);
  assert.equal(sha256Hex(fs.readFileSync(dest)), sha256Hex(fs.readFileSync(file)));

  // Other content under the name: refused in one line, the archive unchanged.
  fs.writeFileSync(file, makeSegment({ segno: 3, used: 6 << 20, seed: 9 }).data);
  const conflict = await cli(push);
  assert.equal(conflict.code, 1);
  assert.ok(oneLine(conflict.stderr), conflict.stderr);
  assert.match(conflict.stderr, /already archived with other content/);
  const dest2 = path.join(t.dir, "again");
  assert.equal((await cli(["wal-fetch", name, dest2, "--from", repo])).code, 0);
  assert.equal(sha256Hex(fs.readFileSync(dest2)), sha256Hex(fs.readFileSync(dest)));

  // Not archived: exit 1, one line, nothing at %p.
  const missing = path.join(t.dir, "missing");
  const none = await cli([
    "wal-fetch",
    "000000010000000000000004",
    missing,
    "--from",
    repo,
    "--pg-data",
    pgData,
  ]);
  assert.equal(none.code, 1);
  assert.ok(oneLine(none.stderr), none.stderr);
  assert.equal(fs.existsSync(missing), false);
  assert.deepEqual(fs.readdirSync(t.dir).filter((n) => n.endsWith(".tmp")), []);

  // A segment of the wrong size: bad input, one line.
  const short = writeSegment(pgData, 5);
  fs.truncateSync(short.file, 1 << 20);
  const wrong = await cli(["wal-push", short.file, "--to", repo, "--pg-data", pgData]);
  assert.equal(wrong.code, 2);
  assert.ok(oneLine(wrong.stderr), wrong.stderr);
  assert.match(wrong.stderr, /a segment of the wrong size/);

  const verify = await cli(["verify", repo]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
});

Deno.test("wal-push to a missing repository fails in one line and creates nothing", async () => {
  await using t = await tempDir();
  const pgData = makeDataDir(path.join(t.dir, "data"));
  const { file } = writeSegment(pgData, 1);
  for (const repo of [path.join(t.dir, "nope"), pgData]) { // absent; a directory without config
    const r = await cli(["wal-push", file, "--to", repo, "--pg-data", pgData]);
    assert.notEqual(r.code, 0);
    assert.ok(oneLine(r.stderr), r.stderr);
  }
  assert.equal(fs.existsSync(path.join(t.dir, "nope")), false);
  const f = await cli([
    "wal-fetch",
    "000000010000000000000001",
    "x",
    "--from",
    path.join(t.dir, "nope"),
  ]);
  // Not "not archived": 126, so PostgreSQL stops recovery instead of ending it early.
  assert.equal(f.code, 126, f.stderr);
  assert.ok(oneLine(f.stderr), f.stderr);
  const usage = await cli(["wal-fetch", "000000010000000000000001", "--from", pgData]);
  assert.equal(usage.code, 126, usage.stderr);
});

Deno.test("wal-fetch of a damaged WAL file exits 126 (PostgreSQL stops recovery) and writes nothing at %p", async () => {
  await using t = await tempDir();
  const { repo, pgData } = await setup(t.dir);
  const { file, name } = writeSegment(pgData, 3);
  assert.equal((await cli(["wal-push", file, "--to", repo, "--pg-data", pgData])).code, 0);
  for (const pack of filesUnder(path.join(repo, "packs"))) {
    const p = path.join(repo, "packs", pack);
    const b = fs.readFileSync(p);
    b[100] = b[100]! ^ 0xff;
    fs.writeFileSync(p, b);
  }
  const dest = path.join(t.dir, "restored-wal");
  const r = await cli(["wal-fetch", name, dest, "--from", repo, "--pg-data", pgData]);
  assert.equal(r.code, 126, r.stderr);
  assert.ok(oneLine(r.stderr), r.stderr);
  assert.equal(fs.existsSync(dest), false);
});

Deno.test("wal-push killed with SIGKILL at any point leaves the archive valid and the next push completes", async () => {
  await using t = await tempDir();
  const { repo, pgData } = await setup(t.dir);
  let segno = 10;
  const check = async (name: string, file: string) => {
    const v = await cli(["verify", repo]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const done = await cli(["wal-push", file, "--to", repo, "--pg-data", pgData]);
    assert.equal(done.code, 0, done.stderr);
    const dest = path.join(t.dir, `fetched-${name}`);
    const f = await cli(["wal-fetch", name, dest, "--from", repo, "--pg-data", pgData]);
    assert.equal(f.code, 0, f.stderr);
    assert.equal(sha256Hex(fs.readFileSync(dest)), sha256Hex(fs.readFileSync(file)));
  };
  for (const point of ["pack:1", "pack:2", "index", "wal-record"]) {
    // A 32 MiB segment (16 MiB ones are one block): its first two 8 MiB blocks are new and
    // random, so the push writes two packs of the 1 MiB pack size.
    const { file, name } = writeSegment(pgData, segno++, segno, 12 << 20, 32 << 20);
    const r = await cli(["wal-push", file, "--to", repo, "--pg-data", pgData], {
      env: { BENDSAVE_CRASH_AT: point },
    });
    assert.notEqual(r.code, 0, `the push crashed at ${point}`);
    await check(name, file);
  }
  for (const ms of [150, 300, 500]) {
    const { file, name } = writeSegment(pgData, segno++, segno);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", CLI, "wal-push", file, "--to", repo, "--pg-data", pgData],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // finished already
      }
    }, ms);
    await child.status;
    clearTimeout(timer);
    await check(name, file);
  }
  assert.equal(filesUnder(path.join(repo, "wal", TEST_SYSTEM_ID)).length, 7);
});
