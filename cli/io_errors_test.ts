import assert from "node:assert/strict";
import path from "node:path";
import { cli, makeTree, tempDir } from "../testing/mod.ts";

/** Runs a command, true when it exits 0. */
async function run(cmd: string, ...args: string[]): Promise<boolean> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
    return r.success;
  } catch {
    return false;
  }
}

/** Whether this process may bind-mount (root with CAP_SYS_ADMIN): real read-only media. */
async function canMountReadOnly(): Promise<boolean> {
  if (Deno.build.os !== "linux") return false;
  const dir = await Deno.makeTempDir({ prefix: "bendsave-ro-probe-" });
  try {
    if (!await run("mount", "--bind", dir, dir)) return false;
    const ro = await run("mount", "-o", "remount,bind,ro", dir, dir);
    await run("umount", dir);
    return ro;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** One line on stderr, and no stack trace. */
function assertOneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, stderr);
  assert.ok(!stderr.includes("internal error"), stderr);
  return lines[0]!;
}

Deno.test({
  name: "verify, restore and copy of a repository on read-only media point to staged:, exit 1",
  ignore: !await canMountReadOnly(),
  async fn() {
    await using t = await tempDir();
    const src = makeTree(path.join(t.dir, "src"), { largeSize: 0 });
    const repo = path.join(t.dir, "repo");
    assert.equal((await cli(["backup", "--from", src, "--to", repo])).code, 0);
    const media = path.join(t.dir, "media");
    await Deno.mkdir(media);
    assert.ok(await run("mount", "--bind", repo, media));
    try {
      assert.ok(await run("mount", "-o", "remount,bind,ro", media, media));
      for (
        const [operation, args] of [
          ["verify", ["verify", media]],
          ["restore", ["restore", "--from", media, "--to", path.join(t.dir, "out"), "--confirm"]],
          ["copy", ["copy", "--from", media, "--to", path.join(t.dir, "copy")]],
        ] as const
      ) {
        const r = await cli([...args]);
        assert.equal(r.code, 1, r.stderr);
        assert.equal(
          assertOneLine(r.stderr),
          `bendsave: repository "${media}" is on read-only media, so ${operation} cannot write its lock file: make it writable, or to restore, verify or copy from it read-only, give it as staged:${media}`,
        );
      }
      // list takes no lock, and staged: reads the same media.
      assert.equal((await cli(["list", media])).code, 0);
      const v = await cli(["verify", `staged:${media}`]);
      assert.equal(v.code, 0, v.stderr);
      const r = await cli([
        "restore",
        "--from",
        `staged:${media}`,
        "--to",
        path.join(t.dir, "out"),
        "--confirm",
      ]);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await run("umount", media);
    }
  },
});

Deno.test("backup from or to a path longer than PATH_MAX gives one line and exit 2", async () => {
  await using t = await tempDir();
  const names = Array.from({ length: 25 }, (_, i) => `${i}`.padEnd(200, "d"));
  const long = path.join(t.dir, ...names);
  // Made one level at a time: no single path given to the kernel is too long.
  const script = names.map((n) => `mkdir ${n} && cd ${n}`).join(" && ");
  assert.ok(await run("bash", "-c", `cd "${t.dir}" && ${script}`));
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 0 });
  const from = await cli(["backup", "--from", long, "--to", path.join(t.dir, "repo")]);
  assert.equal(from.code, 2, from.stderr);
  assert.match(
    assertOneLine(from.stderr),
    /has a path longer than the system allows \(ENAMETOOLONG\)/,
  );
  const to = await cli(["backup", "--from", src, "--to", path.join(long, "repo")]);
  assert.equal(to.code, 2, to.stderr);
  assert.match(
    assertOneLine(to.stderr),
    /the path is too long \(ENAMETOOLONG\), use a shorter path$/,
  );
  await run("rm", "-rf", path.join(t.dir, names[0]!)); // Deno.remove cannot reach that deep
});

Deno.test({
  name: "restore into a read-only target or one over PATH_MAX gives one line and its exit code",
  ignore: !await canMountReadOnly(),
  async fn() {
    await using t = await tempDir();
    const src = makeTree(path.join(t.dir, "src"), { largeSize: 0 });
    const repo = path.join(t.dir, "repo");
    assert.equal((await cli(["backup", "--from", src, "--to", repo])).code, 0);
    const target = path.join(t.dir, "target");
    await Deno.mkdir(target);
    assert.ok(await run("mount", "--bind", target, target));
    try {
      assert.ok(await run("mount", "-o", "remount,bind,ro", target, target));
      const r = await cli(["restore", "--from", repo, "--to", target, "--confirm"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(assertOneLine(r.stderr), /restore target .* is read-only.*restore elsewhere/);
      const sub = await cli([
        "restore",
        "--from",
        repo,
        "--to",
        path.join(target, "inside"),
        "--confirm",
      ]);
      assert.equal(sub.code, 1, sub.stderr);
      assert.match(assertOneLine(sub.stderr), /is read-only/);
    } finally {
      await run("umount", target);
    }
    const long = path.join(t.dir, ...Array.from({ length: 20 }, (_, i) => `${i}`.padEnd(250, "d")));
    const r = await cli(["restore", "--from", repo, "--to", long, "--confirm"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(assertOneLine(r.stderr), /longer than the system allows \(ENAMETOOLONG\)/);
  },
});
