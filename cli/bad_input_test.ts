import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {
  cli,
  describeTree,
  filesUnder,
  lastOfType,
  makeTree,
  randomBytes,
  tempDir,
} from "../testing/mod.ts";

async function backedUp(dir: string, largeSize = 1000): Promise<{ src: string; repo: string }> {
  const src = makeTree(path.join(dir, "src"), { largeSize });
  const repo = path.join(dir, "repo");
  const b = await cli(["backup", "--from", src, "--to", repo]);
  assert.equal(b.code, 0, b.stderr);
  return { src, repo };
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected a one-line error, got:\n${stderr}`);
  return lines[0]!;
}

Deno.test("backup from a missing source exits 2 with one clear line and creates nothing", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  const r = await cli(["backup", "--from", path.join(t.dir, "nope"), "--to", repo]);
  assert.equal(r.code, 2);
  assert.match(
    oneLine(r.stderr),
    /source directory ".*nope" does not exist: check the path given to --from/,
  );
  assert.equal(fs.existsSync(repo), false);
});

Deno.test("a repository path that is a file exits 2 and leaves the file alone", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 10 });
  const file = path.join(t.dir, "repo-file");
  fs.writeFileSync(file, "precious");
  for (const args of [["backup", "--from", src, "--to", file], ["list", file]]) {
    const r = await cli(args);
    assert.equal(r.code, 2, r.stderr);
    assert.match(oneLine(r.stderr), /is a file, not a directory: give a directory path/);
  }
  assert.equal(fs.readFileSync(file, "utf8"), "precious");
});

Deno.test("a directory that is not a repository is reported as such", async () => {
  await using t = await tempDir();
  const r = await cli(["list", t.dir]);
  assert.equal(r.code, 2);
  assert.match(oneLine(r.stderr), /no bendsave repository at .* \(no config file\)/);
  const missing = await cli(["list", path.join(t.dir, "missing")]);
  assert.equal(missing.code, 2);
  assert.match(oneLine(missing.stderr), /no repository at/);
});

Deno.test("a repository of a newer format version is refused with exit 2 and not modified", async () => {
  await using t = await tempDir();
  const { src, repo } = await backedUp(t.dir);
  const cfgPath = path.join(repo, "config");
  const cfg = JSON.parse(fs.readFileSync(cfgPath, "utf8"));
  cfg.version = 3; // format 2 (encrypted) is read since issue 15
  fs.writeFileSync(cfgPath, JSON.stringify(cfg));
  const before = filesUnder(repo);
  for (
    const args of [["list", repo], ["backup", "--from", src, "--to", repo], [
      "restore",
      "--from",
      repo,
      "--to",
      path.join(t.dir, "d"),
    ]]
  ) {
    const r = await cli(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(
      oneLine(r.stderr),
      /format version 3, newer than this bendsave reads \(2\): use a newer bendsave/,
    );
  }
  assert.deepEqual(filesUnder(repo), before);
});

Deno.test("a truncated or garbled manifest is reported as damaged; other backups still restore", async () => {
  await using t = await tempDir();
  const { src, repo } = await backedUp(t.dir);
  const expected = describeTree(src);
  fs.writeFileSync(path.join(src, "new.txt"), "second generation");
  assert.equal((await cli(["backup", "--from", src, "--to", repo])).code, 0);
  const [first, second] = filesUnder(path.join(repo, "manifests"));
  const secondPath = path.join(repo, "manifests", second!);
  const bytes = fs.readFileSync(secondPath);
  for (const damage of ["truncate", "garble"]) {
    if (damage === "truncate") fs.writeFileSync(secondPath, bytes.subarray(0, bytes.length - 40));
    else {
      const g = Buffer.from(bytes);
      g[Math.floor(g.length / 2)]! ^= 0x55;
      fs.writeFileSync(secondPath, g);
    }
    const list = await cli(["list", repo, "--json"]);
    assert.equal(list.code, 1, damage);
    assert.equal(JSON.parse(list.stdout).length, 1);
    assert.match(
      oneLine(list.stderr),
      new RegExp(`manifest ${second} is damaged .*restore it from another copy`),
    );
    const r = await cli([
      "restore",
      "--from",
      `${repo}/manifests/${second}`,
      "--to",
      path.join(t.dir, `x-${damage}`),
      "--confirm",
    ]);
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), /is damaged/);
    assert.equal(fs.existsSync(path.join(t.dir, `x-${damage}`)), false);
  }
  const dest = path.join(t.dir, "dest");
  const ok = await cli([
    "restore",
    "--from",
    `${repo}/manifests/${first}`,
    "--to",
    dest,
    "--confirm",
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(describeTree(dest), expected);
});

Deno.test("a pack missing during restore names the pack and leaves no half-written file", async () => {
  await using t = await tempDir();
  const { repo } = await backedUp(t.dir, 20 * 1024 * 1024);
  const packs = filesUnder(path.join(repo, "packs"));
  // Remove the pack holding the large file's blocks (the biggest).
  const biggest = packs.map((p) => ({ p, size: fs.statSync(path.join(repo, "packs", p)).size }))
    .sort((a, b) => b.size - a.size)[0]!.p;
  fs.rmSync(path.join(repo, "packs", biggest));
  const dest = path.join(t.dir, "dest");
  const r = await cli(["restore", "--from", repo, "--to", dest, "--confirm"]);
  assert.equal(r.code, 1);
  const line = oneLine(r.stderr);
  assert.match(
    line,
    new RegExp(`pack ${path.basename(biggest)} needed by .* is missing from the repository`),
  );
  const leftovers = filesUnder(dest).filter((f) => f.includes("bendsave-tmp"));
  assert.deepEqual(leftovers, []);
  assert.equal(fs.existsSync(path.join(dest, "data/large.bin")), false);
});

Deno.test("an unreadable source file gives a warning, exit 3, and an incomplete manifest", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 1000 });
  fs.writeFileSync(path.join(src, "secret.key"), "top secret");
  fs.chmodSync(path.join(src, "secret.key"), 0o000);
  const repo = path.join(t.dir, "repo");
  // Root reads mode-000 files; in a fresh user namespace it is not privileged over them.
  const wrap = Deno.uid() === 0 ? ["unshare", "--user"] : [];
  const r = await cli(["backup", "--from", src, "--to", repo, "--json"], { wrap });
  assert.equal(r.code, 3, r.stderr);
  const warning = lastOfType(r.stdout, "warning");
  assert.match(String(warning.path), /secret\.key$/);
  assert.match(String(warning.message), /cannot read/);
  const s = lastOfType(r.stdout, "summary");
  assert.equal(s.incomplete, true);
  assert.equal(s.errors, 1);
  const list = JSON.parse((await cli(["list", repo, "--json"])).stdout);
  assert.equal(list.length, 1);
  assert.equal(list[0].incomplete, true);
  const human = await cli(["backup", "--from", src, "--to", repo], { wrap });
  assert.equal(human.code, 3);
  assert.match(human.stderr, /warning: .*secret\.key: cannot read/);
  assert.match(human.stdout, /marked incomplete/);
  // Everything else restores.
  const dest = path.join(t.dir, "dest");
  assert.equal((await cli(["restore", "--from", repo, "--to", dest, "--confirm"])).code, 0);
  assert.equal(fs.existsSync(path.join(dest, "secret.key")), false);
  assert.equal(filesUnder(dest).length, 50); // 48 files and 2 symlinks
});

Deno.test("disk full during restore leaves no half-written file under its final name", {
  ignore: Deno.uid() !== 0,
}, async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, "a-small.txt"), "small file restored first");
  const big = new Uint8Array(6 * 1024 * 1024).map((_, i) => (i * 2654435761) >>> 24);
  fs.writeFileSync(path.join(src, "z-big.bin"), big);
  const repo = path.join(t.dir, "repo");
  assert.equal((await cli(["backup", "--from", src, "--to", repo])).code, 0);
  const mnt = path.join(t.dir, "small-disk");
  fs.mkdirSync(mnt);
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt],
  }).output();
  assert.equal(mount.code, 0, new TextDecoder().decode(mount.stderr));
  try {
    const r = await cli(["restore", "--from", repo, "--to", mnt, "--confirm"]);
    assert.equal(r.code, 1);
    assert.match(
      oneLine(r.stderr),
      /disk holding ".*z-big\.bin" is full: free space .* and run the restore again/,
    );
    assert.equal(fs.existsSync(path.join(mnt, "z-big.bin")), false);
    assert.deepEqual(fs.readdirSync(mnt).filter((f) => f.includes("bendsave-tmp")), []);
  } finally {
    await new Deno.Command("umount", { args: [mnt] }).output();
  }
});

Deno.test("a damaged repository config is reported with exit 1 and nothing is written", async () => {
  await using t = await tempDir();
  const { src, repo } = await backedUp(t.dir);
  fs.writeFileSync(path.join(repo, "config"), "{ not json");
  const before = filesUnder(repo);
  for (const args of [["list", repo], ["backup", "--from", src, "--to", repo]]) {
    const r = await cli(args);
    assert.equal(r.code, 1, args.join(" "));
    assert.match(
      oneLine(r.stderr),
      /repository config at .* is damaged .*restore the config file from a copy/,
    );
  }
  assert.deepEqual(filesUnder(repo), before);
});

Deno.test(
  "disk full during backup fails with one line, writes no manifest, and earlier backups still restore",
  {
    ignore: Deno.uid() !== 0,
  },
  async () => {
    await using t = await tempDir();
    const small = makeTree(path.join(t.dir, "small"), { largeSize: 1000 });
    const mnt = path.join(t.dir, "small-disk");
    fs.mkdirSync(mnt);
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt],
    }).output();
    assert.equal(mount.code, 0, new TextDecoder().decode(mount.stderr));
    try {
      const repo = path.join(mnt, "repo");
      assert.equal((await cli(["backup", "--from", small, "--to", repo])).code, 0);
      const manifests = filesUnder(path.join(repo, "manifests"));
      const big = path.join(t.dir, "big");
      fs.mkdirSync(big);
      fs.writeFileSync(path.join(big, "random.bin"), randomBytes(8 * 1024 * 1024, 5));
      const r = await cli(["backup", "--from", big, "--to", repo]);
      assert.equal(r.code, 1);
      assert.match(oneLine(r.stderr), /is full/);
      assert.deepEqual(filesUnder(path.join(repo, "manifests")), manifests);
      assert.deepEqual(filesUnder(repo).filter((f) => f.includes(".tmp-")), []);
      const dest = path.join(t.dir, "dest");
      const ok = await cli(["restore", "--from", repo, "--to", dest, "--confirm"]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(describeTree(dest), describeTree(small));
    } finally {
      await new Deno.Command("umount", { args: [mnt] }).output();
    }
  },
);

Deno.test("restore --include with an empty pattern is a usage error in one line, not an internal error", async () => {
  await using t = await tempDir();
  const { repo } = await backedUp(t.dir);
  const r = await cli([
    "restore",
    "--from",
    repo,
    "--to",
    path.join(t.dir, "out"),
    "--include",
    "",
  ]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(oneLine(r.stderr), /include pattern "" is empty/);
});
