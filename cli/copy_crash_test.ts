import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { FsStore } from "../store/drivers/fs.ts";
import { backup } from "../store/backup/backup.ts";
import { dirSource } from "../sources/dir/dir_source.ts";
import {
  cli,
  type CliRun,
  describeTree,
  filesUnder,
  lastOfType,
  makeTree,
  randomBytes,
  tempDir,
} from "../testing/mod.ts";

/** `bendsave copy ...` as a child process. */
function copyCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return cli(["copy", ...args], { env });
}

/** Every file of a repository but its locks, guide and config (a copy has its own repository id). */
function repositoryFiles(repo: string): string[] {
  return filesUnder(repo).filter((f) =>
    !f.startsWith("locks/") && f !== "bendsave.md" && f !== "config"
  );
}

/**
 * Three backups of a tree into `<dir>/base` (packs of 1 MiB, so a copy writes
 * several), each adding a file: the repository, each backup's expected tree
 * by name, and the names oldest first.
 */
async function threeBackups(dir: string) {
  const src = makeTree(path.join(dir, "src"), { largeSize: 1_500_000 });
  const base = path.join(dir, "base");
  const store = await FsStore.open(base, { create: true });
  const expected = new Map<string, string[]>();
  for (let g = 0; g < 3; g++) {
    if (g > 0) fs.writeFileSync(path.join(src, `gen-${g}.bin`), randomBytes(1_200_000, 900 + g));
    const r = await backup(store, dirSource(src), {
      workers: 0,
      now: () => Date.UTC(2026, 0, 10, 12, g),
      init: { packSize: 1024 * 1024 },
    });
    expected.set(r.name, describeTree(src));
  }
  return { base, expected, names: [...expected.keys()] };
}

Deno.test("copy killed with SIGKILL at any point leaves a destination that verifies and restores, and a re-run completes it", async () => {
  await using t = await tempDir();
  const { base, expected, names } = await threeBackups(t.dir);
  // A reference copy, uninterrupted: how many packs a copy writes, and the files it leaves.
  const reference = path.join(t.dir, "reference");
  const ref = await copyCli(["--from", base, "--to", reference, "--json"]);
  assert.equal(ref.code, 0, ref.stderr);
  const packs = Number(lastOfType(ref.stdout, "summary").packs_written);
  assert.ok(packs >= 3, `the copy should write several packs, not ${packs}`);
  const points = [
    "copy-pack:1", // the first manifest's packs are not all written yet
    `copy-pack:${packs}`, // the last pack, in the last manifest
    "copy-index:2",
    "copy-manifest:1",
    `copy-manifest:${names.length}`, // all copied, lock not released
  ];
  for (const point of points) {
    const dest = path.join(t.dir, `dest-${point.replace(":", "-")}`);
    const killed = await copyCli(["--from", base, "--to", dest], { BENDSAVE_CRASH_AT: point });
    assert.equal(
      killed.code,
      137,
      `copy should have been killed at ${point}: ${killed.stdout}${killed.stderr}`,
    );
    const v = await cli(["verify", dest, "--read-data"]);
    assert.equal(v.code, 0, `verify after a kill at ${point}:\n${v.stdout}${v.stderr}`);
    const present = filesUnder(path.join(dest, "manifests"));
    for (const name of present) {
      assert.deepEqual(
        fs.readFileSync(path.join(dest, "manifests", name)),
        fs.readFileSync(path.join(base, "manifests", name)),
        `${point}: ${name} is complete`,
      );
      const target = path.join(t.dir, `r-${point}-${name}`);
      const r = await cli([
        "restore",
        "--from",
        `${dest}/manifests/${name}`,
        "--to",
        target,
        "--confirm",
      ]);
      assert.equal(r.code, 0, `${point} ${name}: ${r.stderr}`);
      assert.deepEqual(describeTree(target), expected.get(name), `${point} ${name}`);
    }
    const again = await copyCli(["--from", base, "--to", dest, "--json"]);
    assert.equal(again.code, 0, `re-run after ${point}: ${again.stderr}`);
    const summary = lastOfType(again.stdout, "summary");
    assert.equal(
      summary.manifests_skipped,
      present.length,
      `${point}: committed manifests are skipped`,
    );
    assert.equal(summary.manifests_copied, names.length - present.length);
    assert.deepEqual(filesUnder(path.join(dest, "manifests")), names);
    assert.deepEqual(
      repositoryFiles(dest),
      repositoryFiles(reference),
      `${point}: the re-run wrote the interrupted packs again under the same names (no waste)`,
    );
    for (const repo of [base, dest]) {
      const final = await cli(["verify", repo, "--read-data", "--json"]);
      assert.equal(final.code, 0, `${point} ${repo}: ${final.stdout}`);
      const report = lastOfType(final.stdout, "report");
      assert.deepEqual(
        report.reclaimable,
        { packs: 0, bytes: 0 },
        `${point}: nothing is left unreferenced`,
      );
    }
  }
});

Deno.test("copy --encrypt killed with SIGKILL at any point leaves a destination that verifies with the key, and a re-run completes it", async () => {
  await using t = await tempDir();
  const { base, expected, names } = await threeBackups(t.dir);
  const env = { BENDSAVE_PASSWORD: "crash test passphrase" };
  for (const point of ["copy-pack:1", "copy-index:2", "copy-manifest:1", "copy-manifest:3"]) {
    const dest = path.join(t.dir, `dest-${point.replace(":", "-")}`);
    const killed = await copyCli(["--from", base, "--to", dest, "--encrypt"], {
      ...env,
      BENDSAVE_CRASH_AT: point,
    });
    assert.equal(killed.code, 137, `killed at ${point}: ${killed.stdout}${killed.stderr}`);
    const v = await cli(["verify", dest, "--read-data"], { env });
    assert.equal(v.code, 0, `verify after a kill at ${point}:\n${v.stdout}${v.stderr}`);
    const present = filesUnder(path.join(dest, "manifests"));
    const again = await copyCli(["--from", base, "--to", dest, "--json"], env);
    assert.equal(again.code, 0, `re-run after ${point}: ${again.stderr}`);
    const summary = lastOfType(again.stdout, "summary");
    assert.equal(summary.manifests_skipped, present.length, `${point}: committed ones skipped`);
    assert.equal(summary.manifests_copied, names.length - present.length);
    assert.deepEqual(filesUnder(path.join(dest, "manifests")), names);
    const final = await cli(["verify", dest, "--read-data"], { env });
    assert.equal(final.code, 0, `${point}: ${final.stdout}`);
    for (const name of names) {
      const target = path.join(t.dir, `r-${point}-${name}`);
      const r = await cli(
        ["restore", "--from", `${dest}/manifests/${name}`, "--to", target, "--confirm"],
        { env },
      );
      assert.equal(r.code, 0, `${point} ${name}: ${r.stderr}`);
      assert.deepEqual(describeTree(target), expected.get(name), `${point} ${name}`);
    }
  }
});
