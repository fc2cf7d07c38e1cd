/**
 * File names end to end: trees with duplicate names, names that are not
 * valid UTF-8, and names of the longest legal length (issue 10, items 4, 6, 7).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { cli, filesUnder, lastOfType, tempDir } from "../testing/mod.ts";
import { FsStore } from "../store/drivers/fs.ts";
import { Repository } from "../store/repository.ts";
import { PackWriter } from "../store/pack_writer.ts";
import { TreeType } from "../proto/mod.ts";
import { Codec } from "../formats/codec.ts";
import { sha256 } from "../formats/hash.ts";
import { BlobKind } from "../formats/pack.ts";
import { encodeManifestFile } from "../formats/manifest.ts";
import { encodeTree, NodeType } from "../formats/tree.ts";
import { MemStore } from "../store/drivers/mem.ts";
import { backup } from "../store/backup/backup.ts";
import { restoreToStore } from "../store/restore/restore.ts";
import { dirSource } from "../sources/dir/dir_source.ts";
import { InvalidInput } from "../store/errors.ts";

/**
 * Adds a backup whose root is a tree encoded straight with protobuf (as a
 * damaged or hostile writer could), beside the backups already in `repo`.
 * Returns the new manifest's name.
 */
async function addRawBackup(repo: string, nodes: Record<string, unknown>[]): Promise<string> {
  const store = await FsStore.open(repo);
  const r = await Repository.open(store);
  await r.loadIndex();
  const writer = new PackWriter(store, r.index, { targetSize: r.config.packSize });
  const empty = encodeTree([]);
  const tree = TreeType.encode(TreeType.fromObject({ nodes })).finish();
  for (const t of [empty, tree]) {
    await writer.add(sha256(t), BlobKind.tree, { codec: Codec.raw, data: t, rawLength: t.length });
  }
  await writer.flush();
  await writer.writeIndex();
  const names = await r.manifestNames();
  const base = await r.loadManifest(names[names.length - 1]!);
  const m = base.manifest;
  const name = "29990101_000000.manifest";
  const bytes = encodeManifestFile({
    ...m,
    timeMs: Date.UTC(2999, 0, 1),
    parts: m.parts.map((p) => ({ ...p, root: sha256(tree) })),
  });
  await store.save({ kind: "manifest", name }, bytes, { exclusive: true });
  return name;
}

Deno.test("verify and restore refuse a tree holding two entries with the same name", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, "a.txt"), "a");
  const repo = path.join(t.dir, "repo");
  assert.equal((await cli(["backup", "--from", src, "--to", repo])).code, 0);
  const emptyTree = sha256(encodeTree([]));
  const cases = {
    "symlink and file": [
      { name: "f", type: NodeType.symlink, linkTarget: "/etc" },
      { name: "f", type: NodeType.file },
    ],
    "symlink and directory": [
      { name: "f", type: NodeType.symlink, linkTarget: "/etc" },
      { name: "f", type: NodeType.dir, subtree: emptyTree, mode: 0o755 },
    ],
  };
  for (const [what, nodes] of Object.entries(cases)) {
    const name = await addRawBackup(repo, nodes);
    const v = await cli(["verify", repo, "--json"]);
    assert.equal(v.code, 1, `${what}: ${v.stdout}${v.stderr}`);
    assert.match(v.stdout, /two entries named \\"f\\"/, what);
    const dest = path.join(t.dir, `dest-${what.replaceAll(" ", "-")}`);
    const from = path.join(repo, "manifests", name);
    const r = await cli(["restore", "--from", from, "--to", dest, "--confirm"]);
    assert.equal(r.code, 1, `${what}: ${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, `${what}: one line, no stack trace: ${r.stderr}`);
    assert.match(lines[0]!, /is damaged \(tree holds two entries named "f"\)/, what);
    assert.deepEqual(fs.existsSync(dest) ? filesUnder(dest) : [], [], what);
    fs.rmSync(path.join(repo, "manifests", name));
  }
  void lastOfType;
});

Deno.test("backup and restore round-trip files and symlinks with 255-byte names", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  fs.mkdirSync(src);
  const names = [
    "a".repeat(255),
    "é".repeat(127) + "x", // 255 bytes in 128 characters
    "日".repeat(85), // 255 bytes in 85 characters
  ];
  for (const n of names) assert.equal(new TextEncoder().encode(n).length, 255);
  fs.writeFileSync(path.join(src, names[0]!), "ascii");
  fs.writeFileSync(path.join(src, names[1]!), "two-byte");
  fs.symlinkSync(names[0]!, path.join(src, names[2]!));
  fs.mkdirSync(path.join(src, "d"));
  fs.writeFileSync(path.join(src, "d", names[2]!), "three-byte");
  const repo = path.join(t.dir, "repo");
  const b = await cli(["backup", "--from", src, "--to", repo, "--json"]);
  assert.equal(b.code, 0, b.stderr);
  const dest = path.join(t.dir, "dest");
  const r = await cli(["restore", "--from", repo, "--to", dest, "--confirm"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(dest, names[0]!), "utf8"), "ascii");
  assert.equal(fs.readFileSync(path.join(dest, names[1]!), "utf8"), "two-byte");
  assert.equal(fs.readlinkSync(path.join(dest, names[2]!)), names[0]);
  assert.equal(fs.readFileSync(path.join(dest, "d", names[2]!), "utf8"), "three-byte");
  assert.deepEqual(filesUnder(dest).filter((f) => f.includes("bendsave-tmp")), []);
});

/** Runs a POSIX shell script in `cwd` (Deno's node:fs cannot name files that are not UTF-8). */
async function sh(cwd: string, script: string): Promise<Uint8Array> {
  const out = await new Deno.Command("sh", { args: ["-c", script], cwd, stderr: "piped" }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return out.stdout;
}

Deno.test("backup and restore keep names that are not valid UTF-8 byte-exact", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  fs.mkdirSync(src);
  // a<FF>b (a file), d<FE> (a directory) holding x<FF> and a symlink l<C3>, and a<EF BF BD>b:
  // a file whose name is valid UTF-8 and equals the lossy form of the first.
  await sh(
    src,
    `printf one > "$(printf 'a\\377b')" && mkdir "$(printf 'd\\376')" && ` +
      `printf two > "$(printf 'd\\376/x\\377')" && ln -s ../ok.txt "$(printf 'd\\376/l\\303')" && ` +
      `printf three > "a\u{fffd}b" && chmod 640 "$(printf 'a\\377b')"`,
  );
  const repo = path.join(t.dir, "repo");
  const b = await cli(["backup", "--from", src, "--to", repo, "--json"]);
  assert.equal(b.code, 0, b.stdout + b.stderr);
  const s = lastOfType(b.stdout, "summary");
  assert.equal(s.incomplete, false);
  assert.equal(s.files, 3);
  assert.equal(s.symlinks, 1);
  // Unchanged files are matched by exact name in the next backup.
  const b2 = await cli(["backup", "--from", src, "--to", repo, "--json"]);
  assert.equal(b2.code, 0, b2.stderr);
  assert.equal(lastOfType(b2.stdout, "summary").files_unchanged, 3);
  const dest = path.join(t.dir, "dest");
  const r = await cli(["restore", "--from", repo, "--to", dest, "--confirm"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const listing = new TextDecoder("latin1").decode(
    await sh(dest, "find . -print | LC_ALL=C sort | od -An -c | tr -s ' '"),
  );
  const want = new TextDecoder("latin1").decode(
    await sh(src, "find . -print | LC_ALL=C sort | od -An -c | tr -s ' '"),
  );
  assert.equal(listing, want);
  assert.equal(
    new TextDecoder().decode(
      await sh(
        dest,
        `cat "$(printf 'a\\377b')" "$(printf 'd\\376/x\\377')" "a\u{fffd}b"; ` +
          `stat -c %a "$(printf 'a\\377b')"; readlink "$(printf 'd\\376/l\\303')"`,
      ),
    ),
    "onetwothree640\n../ok.txt\n",
  );
  assert.deepEqual(
    (await sh(dest, "find . -name '*bendsave*'")).length,
    0,
    "no placeholder or temporary name left",
  );
});

Deno.test("restore --overwrite rewrites entries whose names are not valid UTF-8 in place", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  fs.mkdirSync(src);
  await sh(
    src,
    `mkdir "$(printf 'd\\376')" && printf new > "$(printf 'd\\376/x\\377')" && ` +
      `printf same > "$(printf 'd\\376/s\\377')" && printf top > "$(printf 't\\377')"`,
  );
  const repo = path.join(t.dir, "repo");
  assert.equal((await cli(["backup", "--from", src, "--to", repo])).code, 0);
  const dest = path.join(t.dir, "dest");
  fs.mkdirSync(dest);
  // The target already holds the directory (with a stale file, an equal one and one of its own).
  await sh(
    dest,
    `mkdir "$(printf 'd\\376')" && printf old > "$(printf 'd\\376/x\\377')" && ` +
      `printf same > "$(printf 'd\\376/s\\377')" && printf mine > "$(printf 'd\\376/keep\\377')"`,
  );
  const r = await cli(["restore", "--from", repo, "--to", dest, "--confirm", "--overwrite"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(
    new TextDecoder().decode(
      await sh(
        dest,
        `cat "$(printf 'd\\376/x\\377')" "$(printf 'd\\376/s\\377')" "$(printf 'd\\376/keep\\377')" ` +
          `"$(printf 't\\377')"; find . -name '*bendsave*'`,
      ),
    ),
    "newsameminetop",
  );
});

Deno.test("restoreToStore refuses names that are not valid UTF-8 (object names are UTF-8)", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  fs.mkdirSync(src);
  await sh(src, `printf x > ok && printf y > "$(printf 'b\\377')"`);
  const repo = new MemStore();
  await backup(repo, dirSource(src), { workers: 0 });
  const target = new MemStore();
  await assert.rejects(
    () => restoreToStore(repo, target),
    (e: Error) =>
      e instanceof InvalidInput && /b\ufffd.*restore it into a directory/.test(e.message),
  );
  const left: string[] = [];
  for await (const f of target.list("raw")) left.push(f.name);
  assert.deepEqual(left, [], "nothing written");
});
