import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { tempDir } from "../testing/mod.ts";
import {
  acquireSpoolLock,
  fileIdentity,
  hashFile,
  type PushOk,
  pushOkTrusted,
  readSpoolJson,
  serveFromSpool,
  spoolLockLive,
  type SpoolMeta,
  writeSpoolFile,
} from "./wal_spool.ts";

function okFor(file: string, repository = "/repo"): PushOk {
  const h = hashFile(file);
  return {
    name: path.basename(file),
    repository,
    systemId: "1",
    size: h.size,
    sha256: h.sha256,
    identity: fileIdentity(file),
  };
}

Deno.test("pushOkTrusted trusts the file it was written for and never another content under the name", async () => {
  await using t = await tempDir();
  const file = path.join(t.dir, "000000010000000000000001");
  fs.writeFileSync(file, "a".repeat(4096));
  const ok = okFor(file);
  assert.equal(pushOkTrusted(ok, file), true);

  // Same size, other content, written later: the identity differs and the hash tells.
  await new Promise((r) => setTimeout(r, 5));
  fs.rmSync(file);
  fs.writeFileSync(file, "b".repeat(4096));
  assert.equal(pushOkTrusted(ok, file, false), false, "the identity alone does not match");
  assert.equal(pushOkTrusted(ok, file), false, "nor does the content");

  // The same content again under a new inode: identity differs, the hash matches.
  fs.rmSync(file);
  fs.writeFileSync(file, "a".repeat(4096));
  assert.equal(pushOkTrusted(ok, file, false), false);
  assert.equal(pushOkTrusted(ok, file), true);

  fs.rmSync(file);
  assert.equal(pushOkTrusted(ok, file), false, "a missing file is not archived");
});

Deno.test("readSpoolJson reads a torn or foreign status as absent", async () => {
  await using t = await tempDir();
  fs.writeFileSync(path.join(t.dir, "x.ok"), '{"name": "00000001');
  assert.equal(readSpoolJson(t.dir, "x.ok"), null);
  fs.writeFileSync(path.join(t.dir, "y.ok"), "42");
  assert.equal(readSpoolJson(t.dir, "y.ok"), null);
  assert.equal(readSpoolJson(t.dir, "missing.ok"), null);
  writeSpoolFile(t.dir, "z.ok", JSON.stringify({ a: 1 }));
  assert.deepEqual(readSpoolJson(t.dir, "z.ok"), { a: 1 });
  assert.deepEqual(fs.readdirSync(t.dir).filter((f) => f.startsWith(".tmp-")), []);
});

Deno.test("serveFromSpool moves a checked segment into place and never serves one of another hash", async () => {
  await using t = await tempDir();
  const spool = path.join(t.dir, "spool");
  fs.mkdirSync(spool);
  const name = "000000010000000000000002";
  const content = new Uint8Array(1 << 20).map((_, i) => i % 251);
  const put = (data: Uint8Array, meta: Partial<SpoolMeta> = {}) => {
    fs.writeFileSync(path.join(spool, name), data);
    const h = hashFile(path.join(spool, name));
    writeSpoolFile(
      spool,
      `${name}.meta`,
      JSON.stringify({ name, repository: "/repo", systemId: "7", ...h, ...meta }),
    );
  };
  const dest = path.join(t.dir, "RECOVERYXLOG");
  const expect = { repository: "/repo", systemId: "7" };

  // Damaged in the spool after it was checked (same size, one byte changed).
  put(content);
  const bad = new Uint8Array(content);
  bad[1000] = bad[1000]! ^ 0xff;
  fs.writeFileSync(path.join(spool, name), bad);
  assert.equal(serveFromSpool(spool, name, dest, expect), null);
  assert.equal(fs.existsSync(dest), false, "nothing at the destination");
  assert.deepEqual(fs.readdirSync(spool), [], "the bad file is removed");

  // Another repository's or system's spool file is not served either.
  put(content, { repository: "/other" });
  assert.equal(serveFromSpool(spool, name, dest, expect), null);
  put(content, { systemId: "8" });
  assert.equal(serveFromSpool(spool, name, dest, expect), null);
  assert.equal(fs.existsSync(dest), false);

  // A segment without its .meta (the prefetcher killed before writing it) waits.
  fs.writeFileSync(path.join(spool, name), content);
  assert.equal(serveFromSpool(spool, name, dest, expect), null);
  assert.equal(fs.existsSync(path.join(spool, name)), true);

  put(content);
  const meta = serveFromSpool(spool, name, dest, expect);
  assert.equal(meta?.size, content.length);
  assert.deepEqual(new Uint8Array(fs.readFileSync(dest)), content);
  // A hard link: the spool keeps the segment and its .meta, and serves it again (PostgreSQL
  // asks for the last segment once more at the end of recovery).
  assert.deepEqual(fs.readdirSync(spool).sort(), [name, `${name}.meta`]);
  assert.equal(fs.statSync(dest).ino, fs.statSync(path.join(spool, name)).ino);
  assert.deepEqual(fs.readdirSync(t.dir).filter((f) => f.endsWith(".tmp")), []);
  fs.rmSync(dest); // PostgreSQL removes RECOVERYXLOG before it asks again
  assert.equal(serveFromSpool(spool, name, dest, expect)?.size, content.length);
  assert.deepEqual(new Uint8Array(fs.readFileSync(dest)), content);
  // Changed through the served name (PostgreSQL recycles a kept segment in place): the spool's
  // copy is no longer the archive's and is never served again.
  const changed = new Uint8Array(content);
  changed[7] = changed[7]! ^ 1;
  fs.writeFileSync(dest, changed);
  fs.rmSync(dest);
  assert.equal(serveFromSpool(spool, name, dest, expect), null);
  assert.deepEqual(fs.readdirSync(spool), [], "removed, with its .meta");
});

Deno.test("serveFromSpool serves a segment the prefetcher checked by its identity, and hashes one changed since", async () => {
  await using t = await tempDir();
  const spool = path.join(t.dir, "spool");
  fs.mkdirSync(spool);
  const name = "000000010000000000000002";
  const file = path.join(spool, name);
  const content = new Uint8Array(1 << 20).map((_, i) => i % 251);
  const dest = path.join(t.dir, "RECOVERYXLOG");
  const expect = { repository: "/repo", systemId: "7" };
  const put = () => {
    fs.writeFileSync(file, content);
    const meta = { name, repository: "/repo", systemId: "7", ...hashFile(file) };
    writeSpoolFile(
      spool,
      `${name}.meta`,
      JSON.stringify({ ...meta, identity: fileIdentity(file) }),
    );
  };
  put();
  assert.equal(serveFromSpool(spool, name, dest, expect)?.size, content.length);
  assert.deepEqual(new Uint8Array(fs.readFileSync(dest)), content);
  fs.rmSync(dest);
  // Rewritten in place with other bytes: its modification time moved, so it is hashed and refused.
  const bad = new Uint8Array(content);
  bad[5] = bad[5]! ^ 0xff;
  fs.writeFileSync(file, bad);
  fs.utimesSync(file, new Date(2_000_000_000_000), new Date(2_000_000_000_000));
  assert.equal(serveFromSpool(spool, name, dest, expect), null);
  assert.equal(fs.existsSync(dest), false);
  assert.deepEqual(fs.readdirSync(spool), [], "removed, with its .meta");
  // Replaced by another file of the same bytes (another inode): hashed, and served.
  put();
  const copy = path.join(t.dir, "copy");
  fs.copyFileSync(file, copy);
  fs.renameSync(copy, file);
  assert.equal(serveFromSpool(spool, name, dest, expect)?.size, content.length);
});

Deno.test("acquireSpoolLock refuses a live holder and takes over a dead one's lock", async () => {
  await using t = await tempDir();
  const lock = acquireSpoolLock(t.dir, "push", "/repo");
  assert.ok(lock);
  assert.equal(spoolLockLive(t.dir, "push"), true);
  assert.equal(acquireSpoolLock(t.dir, "push", "/repo"), null, "held by a live process");
  assert.ok(acquireSpoolLock(t.dir, "fetch", "/repo"), "the other role is separate");
  lock.release();
  assert.equal(spoolLockLive(t.dir, "push"), false);

  // A pusher killed with -9 leaves its lock behind: its process is gone.
  const dead = spawnSync("true").pid!;
  fs.writeFileSync(
    path.join(t.dir, "push.lock"),
    JSON.stringify({ pid: dead, started: 0, repository: "/repo" }),
  );
  assert.equal(spoolLockLive(t.dir, "push"), false);
  const taken = acquireSpoolLock(t.dir, "push", "/repo");
  assert.ok(taken, "the stale lock is taken over");
  assert.equal(readSpoolJson<{ pid: number }>(t.dir, "push.lock")?.pid, Deno.pid);

  // Not touched for longer than the stale limit: stale even if the pid exists (reused).
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(t.dir, "push.lock"), old, old);
  assert.equal(spoolLockLive(t.dir, "push"), false);
  taken.touch();
  assert.equal(spoolLockLive(t.dir, "push"), true);
  taken.release();
});
