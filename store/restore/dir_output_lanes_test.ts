import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { FsStore } from "../drivers/fs.ts";
import { MemStore } from "../drivers/mem.ts";
import { backup } from "../backup/backup.ts";
import { Repository } from "../repository.ts";
import { RestoreIncomplete } from "../errors.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { randomBytes, tempDir, textBytes } from "../../testing/mod.ts";
import { blockIdOf } from "../../formats/block_seal.ts";
import { Codec } from "../../formats/codec.ts";
import type { TreeNode } from "../../formats/tree.ts";
import { restoreWith } from "./restorer.ts";
import { DirOutput } from "./dir_output.ts";
import type { RestorePlan } from "./restore.ts";
import type { StoredBlock } from "./stored_block.ts";

const MiB = 1024 * 1024;
const chunker = { kind: "fixed", size: 256 * 1024 } as const;

/** A source with one 13 MiB file (several runs of a writer batch) and two small ones. */
function makeSource(dir: string): { src: string; big: Uint8Array } {
  const src = path.join(dir, "src");
  fs.mkdirSync(path.join(src, "sub"), { recursive: true });
  const big = randomBytes(13 * MiB + 4321, 7);
  fs.writeFileSync(path.join(src, "sub", "big"), big);
  fs.chmodSync(path.join(src, "sub", "big"), 0o640);
  fs.utimesSync(
    path.join(src, "sub", "big"),
    new Date(1_600_000_000_123),
    new Date(1_600_000_000_123),
  );
  fs.writeFileSync(path.join(src, "a"), textBytes(10_000, 1));
  fs.writeFileSync(path.join(src, "sub", "z"), "z");
  return { src, big };
}

/** Names left under `dir` that are temporary files of a restore. */
function temps(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((n) => n.endsWith(".bendsave-tmp"));
}

Deno.test("DirOutput writes a file above largeFile across two lanes and in-process, byte for byte", async () => {
  await using t = await tempDir();
  const { src, big } = makeSource(t.dir);
  const store = new MemStore();
  const b = await backup(store, dirSource(src, { chunker }), { workers: 0 });
  for (const workers of [2, 0]) {
    const target = path.join(t.dir, `out-${workers}`);
    const options = { manifest: b.name, workers, largeFile: 1 * MiB };
    const r = await restoreWith(store, new DirOutput(target, options), options);
    assert.equal(r.filesWritten, 3);
    assert.equal(r.bytesWritten, big.length + 10_001);
    assert.equal(r.bytesWritten, r.bytes);
    const out = path.join(target, "sub", "big");
    assert.ok(fs.readFileSync(out).equals(big), "the same bytes");
    const st = fs.statSync(out);
    assert.equal(st.mode & 0o7777, 0o640);
    assert.equal(st.mtimeMs, 1_600_000_000_123);
    assert.deepEqual(fs.readFileSync(path.join(target, "a")), Buffer.from(textBytes(10_000, 1)));
    assert.deepEqual(temps(target), []);
  }
});

Deno.test("DirOutput leaves out a large file with a damaged block in its middle, no temporary file left, and restores the others", async () => {
  await using t = await tempDir();
  const { src } = makeSource(t.dir);
  const repoDir = path.join(t.dir, "repo");
  const store = await FsStore.open(repoDir, { create: true });
  const b = await backup(store, dirSource(src, { chunker }), { workers: 0 });
  const repo = await Repository.open(store);
  await repo.loadIndex();
  const m = await repo.loadManifest(b.name);
  const root = await repo.loadTree(m.manifest.parts[0]!.root);
  const sub = await repo.loadTree(root.find((n) => n.name === "sub")!.subtree!);
  const node = sub.find((n) => n.name === "big")!;
  const loc = repo.locate(node.blocks[30]!, "big"); // of 53 blocks: in the second run
  const hex = [...loc.packId].map((x) => x.toString(16).padStart(2, "0")).join("");
  const packFile = path.join(repoDir, "packs", hex.slice(0, 2), hex);
  const bytes = fs.readFileSync(packFile);
  bytes[loc.offset + 100] = bytes[loc.offset + 100]! ^ 0xff;
  fs.writeFileSync(packFile, bytes);

  for (const workers of [2, 0]) {
    const target = path.join(t.dir, `out-${workers}`);
    const options = { manifest: b.name, workers, largeFile: 1 * MiB };
    const err = await restoreWith(store, new DirOutput(target, options), options)
      .then(() => null, (e) => e);
    assert.ok(err instanceof RestoreIncomplete, String(err));
    assert.deepEqual(err.failed.map((f) => f.path), ["sub/big"]);
    assert.match(err.failed[0]!.message, /is damaged/);
    assert.equal(err.result.filesWritten, 2);
    assert.deepEqual(fs.readdirSync(path.join(target, "sub")), ["z"]);
    assert.deepEqual(fs.readdirSync(target).sort(), ["a", "sub"]);
    assert.deepEqual(temps(target), []);
  }
});

Deno.test("DirOutput replaces a symlink at a large file's name, never writing through it", async () => {
  await using t = await tempDir();
  const { src, big } = makeSource(t.dir);
  const store = new MemStore();
  const b = await backup(store, dirSource(src, { chunker }), { workers: 0 });
  const victim = path.join(t.dir, "victim");
  fs.writeFileSync(victim, "precious");
  for (const workers of [2, 0]) {
    const target = path.join(t.dir, `out-${workers}`);
    fs.mkdirSync(path.join(target, "sub"), { recursive: true });
    fs.symlinkSync(victim, path.join(target, "sub", "big"));
    const options = { manifest: b.name, workers, largeFile: 1 * MiB, overwrite: true };
    const r = await restoreWith(store, new DirOutput(target, options), options);
    assert.equal(r.filesWritten, 3);
    assert.equal(fs.readFileSync(victim, "utf8"), "precious");
    const out = path.join(target, "sub", "big");
    assert.ok(fs.lstatSync(out).isFile());
    assert.ok(fs.readFileSync(out).equals(big), "the same bytes");
  }
});

/** A stored block of `raw`, uncompressed. */
function rawBlock(raw: Uint8Array): StoredBlock {
  return { id: blockIdOf(raw), pack: "00", codec: Codec.raw, rawLength: raw.length, data: raw };
}

/** Two blocks of 5 MiB (two runs), then a read error. */
async function* stopsHalfway(): AsyncGenerator<StoredBlock> {
  for (const seed of [1, 2]) yield rawBlock(randomBytes(5 * MiB, seed));
  await new Promise((r) => setTimeout(r, 200)); // the runs reach the lanes
  throw new Error("the pack could not be read");
}

Deno.test("DirOutput removes a large file's temporary file when its blocks stop halfway and the output closes", async () => {
  await using t = await tempDir();
  for (const workers of [2, 0]) {
    const target = path.join(t.dir, `out-${workers}`);
    fs.mkdirSync(target);
    const out = new DirOutput(target, { workers, largeFile: 1 * MiB });
    let written = 0;
    await out.begin({ targetNotEmpty: false } as RestorePlan, {
      written: (_files, bytes) => void (written += bytes),
      failed: () => assert.fail("no file is told failed"),
    });
    const node = { size: 15 * MiB, mode: 0o600, mtimeMs: 0, blocks: [] } as unknown as TreeNode;
    const err = await out.file({ rel: "big", node }, stopsHalfway()).then(() => null, (e) => e);
    assert.match(String(err), /could not be read/);
    await out.close();
    assert.deepEqual(fs.readdirSync(target), []);
    assert.ok(written <= 10 * MiB);
  }
});
