import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { randomBytes, tempDir } from "../../testing/mod.ts";
import { blockIdOf } from "../../formats/block_seal.ts";
import { Codec } from "../../formats/codec.ts";
import { FileWriter, type WriteOp } from "./file_writer.ts";
import type { StoredBlock } from "./stored_block.ts";

function rawBlock(raw: Uint8Array): StoredBlock {
  return { id: blockIdOf(raw), pack: "00", codec: Codec.raw, rawLength: raw.length, data: raw };
}

/** An empty file made as the main thread makes a shared file's temporary file. */
function made(p: string): { dev: number; ino: number } {
  const { O_WRONLY, O_CREAT, O_EXCL } = fs.constants;
  const fd = fs.openSync(p, O_WRONLY | O_CREAT | O_EXCL, 0o600);
  const { dev, ino } = fs.fstatSync(fd);
  fs.closeSync(fd);
  return { dev, ino };
}

Deno.test("FileWriter writes the runs of a shared file at their offsets from two writers, in any order", async () => {
  await using t = await tempDir();
  const tmp = path.join(t.dir, ".x.bendsave-tmp");
  const id = made(tmp);
  const [a, b] = [randomBytes(1000, 1), randomBytes(777, 2)];
  const [one, two] = [new FileWriter(), new FileWriter()];
  const share = { op: "share", file: 0, tmp, final: tmp, rel: "f", ...id } as const;
  const second = two.apply([share, { op: "run", file: 0, offset: 1000, blocks: [rawBlock(b)] }]);
  assert.equal(second.bytes, 777);
  one.apply([share, { op: "run", file: 0, offset: 0, blocks: [rawBlock(a)] }]);
  const r1 = one.apply([{ op: "release", file: 0 }]);
  const r2 = two.apply([{ op: "release", file: 0 }]);
  assert.deepEqual(r1.released, [{ file: 0, bytes: 1000, failure: null }]);
  assert.deepEqual(r2.released, [{ file: 0, bytes: 777, failure: null }]);
  assert.ok(fs.readFileSync(tmp).equals(Buffer.concat([a, b])));
});

Deno.test("FileWriter opens a shared file only if it is the one made, never through a symlink", async () => {
  await using t = await tempDir();
  const victim = path.join(t.dir, "victim");
  fs.writeFileSync(victim, "precious");
  const tmp = path.join(t.dir, ".x.bendsave-tmp");
  const id = made(path.join(t.dir, "other"));
  fs.symlinkSync(victim, tmp);
  const w = new FileWriter();
  const run: WriteOp = { op: "run", file: 0, offset: 0, blocks: [rawBlock(randomBytes(10, 3))] };
  const r = w.apply([{ op: "share", file: 0, tmp, final: tmp, rel: "f", ...id }, run]);
  assert.equal(r.error?.kind, "other");
  assert.equal(fs.readFileSync(victim, "utf8"), "precious");
  fs.rmSync(tmp);
  made(tmp); // a file at the name, but not the one made (another inode)
  const r2 = w.apply([{ op: "share", file: 1, tmp, final: tmp, rel: "f", ...id }, run]);
  assert.match(r2.error?.message ?? "", /was replaced while it was restored/);
  assert.equal(fs.statSync(tmp).size, 0);
});

Deno.test("FileWriter stops a shared file's runs at a damaged block and tells the failure on release", async () => {
  await using t = await tempDir();
  const tmp = path.join(t.dir, ".x.bendsave-tmp");
  const id = made(tmp);
  const good = rawBlock(randomBytes(100, 4));
  const bad = { ...rawBlock(randomBytes(100, 5)), id: good.id };
  const w = new FileWriter();
  const r = w.apply([
    { op: "share", file: 0, tmp, final: tmp, rel: "f", ...id },
    { op: "run", file: 0, offset: 0, blocks: [good, bad, good] },
    { op: "run", file: 0, offset: 300, blocks: [good] },
    { op: "release", file: 0 },
  ]);
  assert.equal(r.error, null);
  assert.deepEqual(r.failed, []);
  assert.equal(r.released.length, 1);
  assert.equal(r.released[0]!.bytes, 100);
  assert.match(
    r.released[0]!.failure ?? "",
    /block [0-9a-f]{64} in pack 00 needed by file f is damaged/,
  );
});
