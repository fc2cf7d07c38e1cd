import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { cli, describeTree, filesUnder, makeTree, randomBytes, tempDir } from "../testing/mod.ts";

const CLI = new URL("./main.ts", import.meta.url).pathname;

/** Starts a backup and kills it with SIGKILL after `ms` milliseconds. */
async function killedAfter(args: string[], ms: number): Promise<number | null> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", CLI, ...args],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already finished
    }
  }, ms);
  const status = await child.status;
  clearTimeout(timer);
  return status.signal === "SIGKILL" ? null : status.code;
}

Deno.test("backup killed with SIGKILL at any point leaves every earlier backup restorable and the next backup completes", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 6 * 1024 * 1024 });
  const repo = path.join(t.dir, "repo");
  const first = await cli(["backup", "--from", src, "--to", repo, "--pack-size", "1"]);
  assert.equal(first.code, 0, first.stderr);
  // name -> expected tree of every backup that completed
  const completed = new Map<string, string[]>();
  const latest = () => filesUnder(path.join(repo, "manifests")).at(-1)!;
  completed.set(latest(), describeTree(src));

  const points = ["pack:1", "pack:4", "index", "before-manifest", "manifest"];
  const delays = [250, 700, 1500];
  let generation = 0;
  const mutate = () => {
    generation++;
    fs.writeFileSync(
      path.join(src, `gen-${generation}.bin`),
      randomBytes(5 * 1024 * 1024, 100 + generation),
    );
    fs.writeFileSync(path.join(src, "one.bin"), `generation ${generation}`);
  };
  for (const ms of delays) {
    mutate();
    const before = new Set(filesUnder(path.join(repo, "manifests")));
    const code = await killedAfter(["backup", "--from", src, "--to", repo], ms);
    const after = filesUnder(path.join(repo, "manifests"));
    if (after.length > before.size) completed.set(latest(), describeTree(src));
    assert.ok(code === null || code === 0, `exit ${code}`);
  }
  for (const point of points) {
    mutate();
    const before = new Set(filesUnder(path.join(repo, "manifests")));
    const r = await cli(["backup", "--from", src, "--to", repo], {
      env: { BENDSAVE_CRASH_AT: point },
    });
    assert.equal(r.code, 137, `backup should have been killed at ${point}: ${r.stderr}`);
    const after = filesUnder(path.join(repo, "manifests"));
    if (point === "manifest") {
      // Killed just after the commit point: that backup is complete.
      assert.equal(after.length, before.size + 1);
      completed.set(latest(), describeTree(src));
    } else {
      assert.deepEqual(new Set(after), before, `no manifest may appear when killed at ${point}`);
    }
  }
  assert.ok(
    filesUnder(path.join(repo, "locks")).length >= 1,
    "the last killed backup left its lock",
  );
  // Every completed backup restores byte-identical; the first restore clears the stale lock.
  let stderr = "";
  for (const [name, expected] of completed) {
    const dest = path.join(t.dir, `restore-${name}`);
    const r = await cli([
      "restore",
      "--from",
      `${repo}/manifests/${name}`,
      "--to",
      dest,
      "--confirm",
    ]);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    stderr += r.stderr;
    assert.deepEqual(describeTree(dest), expected, name);
  }
  assert.match(stderr, /removed stale lock .*no longer running/);
  // The next backup completes and restores.
  mutate();
  const next = await cli(["backup", "--from", src, "--to", repo]);
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual(filesUnder(path.join(repo, "locks")), []);
  const dest = path.join(t.dir, "final");
  assert.equal((await cli(["restore", "--from", repo, "--to", dest, "--confirm"])).code, 0);
  assert.deepEqual(describeTree(dest), describeTree(src));
});
