/** `backup --exclude` and a repository inside its own source (issue 10, item 18). */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { cli, describeTree, filesUnder, lastOfType, tempDir } from "../testing/mod.ts";

function write(root: string, rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
}

Deno.test("backup --exclude leaves out matching files and whole directories", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  for (
    const rel of ["keep.txt", "top.log", "app/a.log", "app/b.txt", "cache/x/y.bin", "app/cache"]
  ) {
    write(src, rel, rel);
  }
  const repo = path.join(t.dir, "repo");
  const b = await cli([
    "backup",
    "--from",
    src,
    "--to",
    repo,
    "--exclude",
    "**/*.log",
    "--exclude",
    "cache",
    "--json",
  ]);
  assert.equal(b.code, 0, b.stderr);
  const s = lastOfType(b.stdout, "summary");
  assert.equal(s.files, 3, JSON.stringify(s)); // keep.txt, app/b.txt, app/cache (a file)
  assert.equal(s.incomplete, false);
  const dest = path.join(t.dir, "dest");
  assert.equal((await cli(["restore", "--from", repo, "--to", dest, "--confirm"])).code, 0);
  assert.deepEqual(filesUnder(dest).sort(), ["app/b.txt", "app/cache", "keep.txt"]);
});

Deno.test("backup --exclude with an empty pattern is a usage error", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  write(src, "a", "a");
  const b = await cli([
    "backup",
    "--from",
    src,
    "--to",
    path.join(t.dir, "repo"),
    "--exclude",
    "/",
  ]);
  assert.equal(b.code, 2, b.stderr);
  assert.match(b.stderr, /exclude pattern "\/" is empty/);
  assert.equal(b.stderr.trim().split("\n").length, 1, b.stderr);
  assert.equal(fs.existsSync(path.join(t.dir, "repo")), false, "nothing created");
});

Deno.test("backup leaves a repository inside its own source out, with a warning naming it", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  write(src, "data/a.txt", "a");
  write(src, "b.txt", "b");
  const repo = path.join(src, "backups", "repo");
  for (const round of [1, 2]) {
    const b = await cli(["backup", "--from", src, "--to", repo, "--json"]);
    assert.equal(b.code, 0, `round ${round}: ${b.stderr}`);
    const warnings = b.stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l))
      .filter((o) => o.type === "warning");
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0].path, repo);
    assert.match(warnings[0].message, /repository/);
    const s = lastOfType(b.stdout, "summary");
    assert.equal(s.incomplete, false);
    assert.equal(s.files, 2);
  }
  const dest = path.join(t.dir, "dest");
  assert.equal((await cli(["restore", "--from", repo, "--to", dest, "--confirm"])).code, 0);
  // The backups directory is kept (empty): only the repository itself is left out.
  assert.deepEqual(describeTree(dest).map((l) => l.split(" ")[0]), [
    "b.txt",
    "backups",
    "data",
    "data/a.txt",
  ]);
});

Deno.test("backup refuses a repository that is the source directory itself", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  write(src, "a.txt", "a");
  const b = await cli(["backup", "--from", src, "--to", src]);
  assert.equal(b.code, 2, b.stderr);
  assert.match(b.stderr, /is the directory being backed up: back up into a repository outside/);
  assert.equal(b.stderr.trim().split("\n").length, 1, b.stderr);
});
