import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {
  assertRefusedWithoutPassphrase,
  cli,
  describeTree,
  filesUnder,
  lastOfType,
  makeTree,
  tempDir,
} from "../testing/mod.ts";

/** Copies a repository flat onto two "tapes": metadata and half the packs on one, the rest on the other. */
function stageOnTapes(
  repo: string,
  t1: string,
  t2: string,
  skip: Set<string> = new Set(),
): string[] {
  fs.mkdirSync(t1, { recursive: true });
  fs.mkdirSync(t2, { recursive: true });
  for (const f of ["config", "bendsave.md"]) fs.copyFileSync(path.join(repo, f), path.join(t1, f));
  for (const f of filesUnder(path.join(repo, "manifests"))) {
    fs.copyFileSync(path.join(repo, "manifests", f), path.join(t1, f));
  }
  for (const f of filesUnder(path.join(repo, "index"))) {
    fs.mkdirSync(path.join(t1, "index"), { recursive: true });
    fs.copyFileSync(path.join(repo, "index", f), path.join(t1, "index", f));
  }
  // An encrypted repository's key files, flat like the manifests.
  if (fs.existsSync(path.join(repo, "keys"))) {
    for (const f of filesUnder(path.join(repo, "keys"))) {
      fs.copyFileSync(path.join(repo, "keys", f), path.join(t1, f));
    }
  }
  const packs = filesUnder(path.join(repo, "packs")).map((p) => path.basename(p));
  packs.forEach((p, i) => {
    if (skip.has(p)) return;
    fs.copyFileSync(path.join(repo, "packs", p.slice(0, 2), p), path.join(i % 2 ? t2 : t1, p));
  });
  return packs;
}

/**
 * Backs up a tree into `dir/repo` (with `backupArgs`), stages it on two tapes with its two largest
 * packs left out and checks the staged restore: the dry run names the missing packs, the restore
 * is refused until they are staged, then restores the tree and leaves the tapes untouched. Every
 * command runs with `env`. Returns the staged location and an empty restore target.
 */
async function checkStagedRestore(
  dir: string,
  backupArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<{ staged: string; emptyDest: string }> {
  const src = makeTree(path.join(dir, "src"), { largeSize: 3 * 1024 * 1024 });
  const repo = path.join(dir, "repo");
  const b = await cli(["backup", "--from", src, "--to", repo, "--pack-size", "1", ...backupArgs], {
    env,
  });
  assert.equal(b.code, 0, b.stderr);
  const all = filesUnder(path.join(repo, "packs")).map((p) => path.basename(p));
  // The two largest packs hold file data (trees are small and written last).
  const size = (p: string) => fs.statSync(path.join(repo, "packs", p.slice(0, 2), p)).size;
  const data = [...all].sort((a, b) => size(b) - size(a)).slice(0, 2);
  const t1 = path.join(dir, "tape1");
  const t2 = path.join(dir, "tape2");
  stageOnTapes(repo, t1, t2, new Set(data));
  const staged = `staged:${t1},${t2}`;
  const dest = path.join(dir, "dest");

  const dry = await cli(["restore", "--from", staged, "--to", dest], { env });
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /packs +\d+ .* to read:/);
  for (const p of data) assert.match(dry.stdout, new RegExp(`${p} .*\\(missing\\)`));
  const plan = lastOfType(
    (await cli(["restore", "--from", staged, "--to", dest, "--json"], { env })).stdout,
    "plan",
  );
  assert.deepEqual([...(plan.missing_packs as string[])].sort(), [...data].sort());

  const refused = await cli(["restore", "--from", staged, "--to", dest, "--confirm"], { env });
  assert.equal(refused.code, 1);
  for (const p of data) assert.match(refused.stderr, new RegExp(p));
  assert.equal(fs.existsSync(dest) && fs.readdirSync(dest).length > 0, false);

  // Stage the rest: the restore succeeds and the tapes are untouched.
  for (const p of data) {
    fs.copyFileSync(path.join(repo, "packs", p.slice(0, 2), p), path.join(t2, p));
  }
  const before = filesUnder(t1).concat(filesUnder(t2));
  const ok = await cli(["restore", "--from", staged, "--to", dest, "--confirm"], { env });
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(describeTree(dest), describeTree(src));
  assert.deepEqual(filesUnder(t1).concat(filesUnder(t2)), before);
  return { staged, emptyDest: path.join(dir, "dest2") };
}

Deno.test("restore from staged tapes: the dry run lists the packs, missing ones are named, a complete set restores", async () => {
  await using t = await tempDir();
  await checkStagedRestore(t.dir);
});

Deno.test("restore from staged tapes of an encrypted repository, key files staged flat; no or a wrong passphrase: exit 4, nothing written", async () => {
  await using t = await tempDir();
  const passFile = path.join(t.dir, "pass");
  fs.writeFileSync(passFile, "tape passphrase\n", { mode: 0o600 });
  const { staged, emptyDest } = await checkStagedRestore(t.dir, ["--encrypt"], {
    BENDSAVE_PASSWORD: "tape passphrase",
  });
  // The passphrase from a file works as well.
  const fromFile = await cli([
    "restore",
    "--from",
    staged,
    "--to",
    emptyDest,
    "--password-file",
    passFile,
  ], { env: { BENDSAVE_PASSWORD: "" } });
  assert.equal(fromFile.code, 0, fromFile.stderr);
  await assertRefusedWithoutPassphrase(
    ["restore", "--from", staged, "--to", emptyDest, "--confirm"],
    () => assert.equal(fs.existsSync(emptyDest), false),
  );
});

Deno.test("a staged repository refuses writes with a clear error", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 1000 });
  const repo = path.join(t.dir, "repo");
  await cli(["backup", "--from", src, "--to", repo]);
  const t1 = path.join(t.dir, "tape1");
  stageOnTapes(repo, t1, path.join(t.dir, "tape2"));
  const b = await cli(["backup", "--from", src, "--to", `staged:${t1}`]);
  assert.equal(b.code, 2);
  assert.match(b.stderr, /read-only staged repository/);
  const v = await cli(["vacuum", `staged:${t1}`, "--keep-last", "1"]);
  assert.equal(v.code, 1);
  assert.match(v.stderr, /read-only staged repository/);
  const ok = await cli(["verify", `staged:${t1},${path.join(t.dir, "tape2")}`, "--read-data"]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
});
