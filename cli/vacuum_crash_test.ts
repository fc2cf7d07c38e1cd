import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { cli, describeTree, filesUnder, makeTree, randomBytes, tempDir } from "../testing/mod.ts";

Deno.test("vacuum killed with SIGKILL at any point leaves a repository that verifies, and the next vacuum finishes", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 1_500_000 });
  const base = path.join(t.dir, "base");
  const expected = new Map<string, string[]>();
  for (let g = 0; g < 4; g++) {
    if (g > 0) fs.rmSync(path.join(src, `gen-${g - 1}.bin`));
    fs.writeFileSync(path.join(src, `gen-${g}.bin`), randomBytes(1_200_000, 500 + g));
    const b = await cli(["backup", "--from", src, "--to", base, "--pack-size", "1"]);
    assert.equal(b.code, 0, b.stderr);
    expected.set(filesUnder(path.join(base, "manifests")).at(-1)!, describeTree(src));
    await new Promise((r) => setTimeout(r, 1100)); // distinct manifest names
  }
  const points = [
    "vacuum-manifest:1",
    "vacuum-repack:1",
    "vacuum-index",
    "vacuum-old-index",
    "vacuum-pack:1",
    "vacuum-pack:3",
  ];
  for (const point of points) {
    const repo = path.join(t.dir, `repo-${point.replace(":", "-")}`);
    fs.cpSync(base, repo, { recursive: true });
    const killed = await cli(["vacuum", repo, "--keep-last", "2"], {
      env: { BENDSAVE_CRASH_AT: point },
    });
    assert.equal(
      killed.code,
      137,
      `vacuum should have been killed at ${point}: ${killed.stdout}${killed.stderr}`,
    );
    const v = await cli(["verify", repo, "--read-data"]);
    assert.equal(v.code, 0, `verify after a kill at ${point}:\n${v.stdout}${v.stderr}`);
    for (const name of filesUnder(path.join(repo, "manifests"))) {
      const dest = path.join(t.dir, `r-${point}-${name}`);
      const r = await cli([
        "restore",
        "--from",
        `${repo}/manifests/${name}`,
        "--to",
        dest,
        "--confirm",
      ]);
      assert.equal(r.code, 0, `${point} ${name}: ${r.stderr}`);
      assert.deepEqual(describeTree(dest), expected.get(name), `${point} ${name}`);
    }
    const again = await cli(["vacuum", repo, "--keep-last", "2", "--json"]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(filesUnder(path.join(repo, "manifests")).length, 2);
    const final = await cli(["verify", repo, "--read-data", "--json"]);
    assert.equal(final.code, 0, final.stdout);
    const report = JSON.parse(final.stdout.trim().split("\n").at(-1)!);
    assert.deepEqual(
      report.reclaimable,
      { packs: 0, bytes: 0 },
      `${point}: the next vacuum finished the job`,
    );
  }
});
