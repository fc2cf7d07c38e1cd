import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { cli, describeTree, filesUnder, randomBytes, tempDir } from "../testing/mod.ts";

const CLI = new URL("./main.ts", import.meta.url).pathname;

/** A tree of `dirs` x `files` small files (random, 2 to 32 KB), for operations that take a while. */
function manyFiles(root: string, dirs: number, files: number): string {
  for (let d = 0; d < dirs; d++) {
    const dir = path.join(root, `d${d}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < files; f++) {
      const size = 2000 + ((d * 7919 + f * 104729) % 30_000);
      fs.writeFileSync(path.join(dir, `f${f}.bin`), randomBytes(size, d * 1000 + f));
    }
  }
  return root;
}

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Progress lines seen before the signal was sent (0 when it was not sent by the parent). */
  readonly progressBefore: number;
}

/**
 * Runs the CLI with `--json`; after `after` progress lines on stdout sends it
 * `signals` (in order), or with `after` undefined lets it run (an env hook may
 * signal it).
 */
async function run(
  args: string[],
  options: { after?: number; signals?: Deno.Signal[]; env?: Record<string, string> } = {},
): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", CLI, ...args, "--json"],
    env: { NO_COLOR: "1", ...(options.env ?? {}) },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let stdout = "";
  let progress = 0;
  let sent = false;
  const dec = new TextDecoder();
  for await (const chunk of child.stdout) {
    stdout += dec.decode(chunk, { stream: true });
    progress = stdout.split("\n").filter((l) => l.startsWith('{"type":"progress"')).length;
    if (!sent && options.after !== undefined && progress >= options.after) {
      sent = true;
      for (const s of options.signals ?? ["SIGINT"]) child.kill(s);
    }
  }
  const status = await child.status;
  return { code: status.code, stdout, stderr: await stderr, progressBefore: sent ? progress : 0 };
}

/** Files a cancelled operation must not leave: locks, `.tmp-*` saves, restore temporaries. */
function leftovers(...dirs: string[]): string[] {
  return dirs.flatMap((d) =>
    filesUnder(d).filter((f) =>
      f.startsWith("locks/") || /(^|\/)\.tmp-/.test(f) || f.endsWith(".bendsave-tmp")
    ).map((f) => path.join(d, f))
  );
}

function assertCancelled(
  r: Run,
  what: RegExp = /nothing was committed/,
  signal: Deno.Signal = "SIGINT",
): void {
  assert.equal(r.code, 130, `exit ${r.code}\n${r.stderr}\n${r.stdout.slice(-2000)}`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr:\n${r.stderr}`);
  assert.ok(lines[0]!.startsWith(`bendsave: cancelled (${signal}): `), lines[0]);
  assert.match(lines[0]!, what);
  const last = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  assert.equal(last.type, "error");
  assert.equal(last.error, "cancelled");
  assert.equal(last.exit_code, 130);
}

async function assertVerifies(repo: string): Promise<void> {
  const v = await cli(["verify", repo, "--read-data"]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /verdict: OK/);
}

Deno.test("backup interrupted by SIGINT at a pack, after progress, before its manifest exits 130 in one line, leaves no lock or temporary file, and the repository verifies", async () => {
  await using t = await tempDir();
  const src = manyFiles(path.join(t.dir, "src"), 8, 60);
  const repo = path.join(t.dir, "repo");
  const first = await cli(["backup", "--from", src, "--to", repo, "--pack-size", "1"]);
  assert.equal(first.code, 0, first.stderr);
  for (const [i, point] of ["pack:2", "index"].entries()) {
    fs.writeFileSync(path.join(src, `new-${i}.bin`), randomBytes(3 * 1024 * 1024, 77 + i));
    const r = await run(["backup", "--from", src, "--to", repo, "--workers", "1"], {
      env: { BENDSAVE_SIGNAL_AT: point },
    });
    assertCancelled(r);
    assert.ok(r.stdout.includes('"type":"progress"'), "it had made progress");
    assert.equal(filesUnder(path.join(repo, "manifests")).length, 1, `no manifest (${point})`);
    assert.deepEqual(leftovers(repo), []);
    await assertVerifies(repo);
  }
  // A first backup cancelled leaves no repository at all.
  const fresh = path.join(t.dir, "fresh");
  const r = await run(["backup", "--from", src, "--to", fresh, "--pack-size", "1"], {
    env: { BENDSAVE_SIGNAL_AT: "pack:3" },
  });
  assertCancelled(r);
  assert.equal(fs.existsSync(fresh), false, "the repository it created is removed");
  // The next backup completes.
  const again = await cli(["backup", "--from", src, "--to", repo]);
  assert.equal(again.code, 0, again.stderr);
});

Deno.test("restore interrupted by SIGINT or SIGTERM after some progress exits 130, leaves no lock or temporary file, keeps the files it restored, and completes with --overwrite", async () => {
  await using t = await tempDir();
  const src = manyFiles(path.join(t.dir, "src"), 30, 100);
  const repo = path.join(t.dir, "repo");
  const b = await cli(["backup", "--from", src, "--to", repo]);
  assert.equal(b.code, 0, b.stderr);
  for (const [after, signal] of [[1, "SIGINT"], [2, "SIGTERM"]] as const) {
    const target = path.join(t.dir, `restored-${after}`);
    const r = await run(["restore", "--from", repo, "--to", target, "--confirm"], {
      after,
      signals: [signal],
    });
    assertCancelled(r, /files were restored into .*restore again with --overwrite/, signal);
    assert.ok(r.progressBefore >= after);
    assert.deepEqual(leftovers(repo, target), []);
    await assertVerifies(repo);
    const again = await cli([
      "restore",
      "--from",
      repo,
      "--to",
      target,
      "--confirm",
      "--overwrite",
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(describeTree(target), describeTree(src));
  }
});

Deno.test("a second signal while a restore cleans up exits 130 at once", async () => {
  await using t = await tempDir();
  const src = manyFiles(path.join(t.dir, "src"), 10, 100);
  const repo = path.join(t.dir, "repo");
  assert.equal((await cli(["backup", "--from", src, "--to", repo])).code, 0);
  const r = await run(["restore", "--from", repo, "--to", path.join(t.dir, "out"), "--confirm"], {
    after: 1,
    signals: ["SIGINT", "SIGTERM"],
  });
  assert.equal(r.code, 130, r.stderr);
  // The signals may be handled in either order; the second one exits without cleaning up.
  assert.match(
    r.stderr,
    /^bendsave: cancelled again \(SIG(INT|TERM)\): exiting without cleaning up/,
  );
});

Deno.test("vacuum interrupted by SIGINT between the steps of its write order exits 130, leaves no lock, and every kept backup still restores", async () => {
  await using t = await tempDir();
  const src = manyFiles(path.join(t.dir, "src"), 4, 20);
  const repo = path.join(t.dir, "repo");
  const trees: string[][] = [];
  for (let g = 0; g < 6; g++) {
    fs.writeFileSync(path.join(src, "day.bin"), randomBytes(1_500_000, 500 + g));
    const b = await cli(["backup", "--from", src, "--to", repo, "--pack-size", "1"]);
    assert.equal(b.code, 0, b.stderr);
    trees.push(describeTree(src));
  }
  const points: [string, RegExp][] = [
    // The signal arrives asynchronously: on a busy machine the vacuum may delete another
    // manifest before its next safe point sees it.
    ["vacuum-manifest:1", /[1-4] of 4 backups were deleted and every kept backup is whole/],
    ["vacuum-repack:1", /backups were deleted and every kept backup is whole/],
    ["vacuum-pack:1", /no backup was deleted and every backup is whole/],
  ];
  let cancelled = 0;
  for (const [point, what] of points) {
    const r = await run(["vacuum", repo, "--keep-last", "2", "--repack-below", "1"], {
      env: { BENDSAVE_SIGNAL_AT: point },
    });
    if (r.code === 0) continue; // nothing to do at this point (no repack needed, say)
    assertCancelled(r, what);
    cancelled++;
    assert.ok(r.stdout.includes('"operation":"vacuum"'), "it reported progress");
    assert.deepEqual(leftovers(repo), []);
    await assertVerifies(repo);
  }
  assert.ok(cancelled >= 2, `${cancelled} of the vacuums were cancelled`);
  // Every kept backup restores; the next vacuum finishes.
  const names = filesUnder(path.join(repo, "manifests"));
  const last = names.at(-1)!;
  const out = path.join(t.dir, "out");
  const r = await cli(["restore", "--from", `${repo}/manifests/${last}`, "--to", out, "--confirm"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(describeTree(out), trees.at(-1));
  const v = await cli(["vacuum", repo, "--keep-last", "1"]);
  assert.equal(v.code, 0, v.stderr);
  await assertVerifies(repo);
});

Deno.test("copy interrupted by SIGINT after its first backup exits 130, keeps what it copied, leaves no lock at either end, and a re-run completes", async () => {
  await using t = await tempDir();
  const src = manyFiles(path.join(t.dir, "src"), 3, 20);
  const repo = path.join(t.dir, "repo");
  for (let g = 0; g < 3; g++) {
    fs.writeFileSync(path.join(src, "gen.bin"), randomBytes(1_200_000, 900 + g));
    assert.equal((await cli(["backup", "--from", src, "--to", repo, "--pack-size", "1"])).code, 0);
  }
  const dest = path.join(t.dir, "dest");
  const r = await run(["copy", "--from", repo, "--to", dest], {
    env: { BENDSAVE_SIGNAL_AT: "copy-manifest:1" },
  });
  // The signal is delivered asynchronously: the copy stops at the first safe point after it
  // arrives, after the first backup or (on a busy machine) the second.
  assertCancelled(r, /[12] of 3 backups were copied; run the copy again for the rest/);
  const copied = Number(/([12]) of 3 backups/.exec(r.stderr)![1]);
  assert.equal(filesUnder(path.join(dest, "manifests")).length, copied);
  assert.deepEqual(leftovers(repo, dest), []);
  await assertVerifies(dest);
  const again = await cli(["copy", "--from", repo, "--to", dest]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(
    filesUnder(path.join(dest, "manifests")),
    filesUnder(path.join(repo, "manifests")),
  );
  await assertVerifies(dest);
});
