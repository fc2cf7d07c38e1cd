import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEFAULT_FASTCDC, splitAll } from "../formats/chunker.ts";
import { Codec, decodeBlock, DEFAULT_COMPRESSION } from "../formats/codec.ts";
import { sha256, toHex } from "../formats/hash.ts";
import { BoundedSet, ENGINE_JOBS, joinBlocks } from "./worker_jobs.ts";
import { WorkerPool } from "./worker_pool.ts";
import type { FileResult } from "./archiver/file_blocks.ts";

Deno.test("BoundedSet forgets its oldest entries beyond its limit", () => {
  const s = new BoundedSet(3);
  for (const v of ["a", "b", "c", "a", "d"]) s.add(v);
  assert.deepEqual([...s], ["b", "c", "d"]);
  assert.equal(s.size, 3);
});

for (const workers of [0, 1]) {
  Deno.test(
    `ENGINE_JOBS backup.read and verify.pack run ${workers ? "on the worker entry" : "in-process"}`,
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "worker-jobs-"));
      const pool = await WorkerPool.start(ENGINE_JOBS, { workers });
      try {
        assert.equal(pool.threaded, workers > 0);
        const bytes = new Uint8Array(100_000).map((_, i) => (i * 7) & 0xff);
        fs.writeFileSync(path.join(dir, "a"), bytes);
        fs.writeFileSync(path.join(dir, "b"), bytes);
        const results: FileResult[] = [];
        await pool.run("backup.read", {
          settings: { chunker: DEFAULT_FASTCDC, compression: DEFAULT_COMPRESSION },
          jobs: [
            { job: 0, path: path.join(dir, "a") },
            { job: 1, path: path.join(dir, "b") },
            { job: 2, path: path.join(dir, "missing") },
          ],
        }, { onPart: (rs) => void results.push(...rs) });
        assert.deepEqual(results.map((r) => [r.job, r.done, r.bytesRead]), [
          [0, true, 100_000],
          [1, true, 100_000],
          [2, true, 0],
        ]);
        assert.equal(toHex(results[0]!.blocks[0]!.id), toHex(sha256(bytes)));
        // The same block again: sent once with data (the reader remembers it).
        assert.ok(results[0]!.blocks[0]!.data);
        assert.equal(results[1]!.blocks[0]!.data, null);
        assert.equal(results[2]!.errorCode, "ENOENT");

        const check = await pool.run("verify.pack", { name: "00".repeat(32), bytes });
        assert.equal(check.nameMatches, false);
        // A pack transferred to the job is freed once checked (detached), not left to a
        // collection; one that was not transferred, or a view of a larger buffer, is left alone.
        const own = bytes.slice();
        const ownCheck = await pool.run("verify.pack", {
          name: toHex(sha256(own)),
          bytes: own,
          transferred: true,
        }, pool.threaded ? { transfer: [own.buffer] } : {});
        assert.equal(ownCheck.nameMatches, true);
        assert.equal(own.buffer.byteLength, 0, "the pack's buffer is released");
        const kept = bytes.slice();
        await pool.run("verify.pack", { name: "00".repeat(32), bytes: kept });
        assert.equal(kept.byteLength, bytes.length, "not transferred: not released");
        const wide = new Uint8Array(200_000);
        const view = wide.subarray(1000, 101_000);
        await pool.run("verify.pack", { name: "00".repeat(32), bytes: view, transferred: true });
        assert.equal(wide.byteLength, 200_000, "a view of a larger buffer is not released");
      } finally {
        await pool.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}

for (const workers of [0, 1]) {
  Deno.test(`ENGINE_JOBS backup.chunk cuts an entry's pieces as the chunker cuts the whole, and forgets an aborted one (${workers ? "on the worker entry" : "in-process"})`, async () => {
    const pool = await WorkerPool.start(ENGINE_JOBS, { workers });
    try {
      const chunker = { kind: "fastcdc", min: 4096, avg: 16384, max: 65536 } as const;
      const settings = { chunker, compression: DEFAULT_COMPRESSION };
      const bytes = new Uint8Array(3_000_000);
      let x = 7;
      for (let i = 0; i < bytes.length; i++) {
        x = (x * 1103515245 + 12345) >>> 0;
        bytes[i] = x >>> 24;
      }
      const results: FileResult[] = [];
      const onPart = (rs: FileResult[]) => void results.push(...rs);
      // An aborted entry 1, then entry 2 in three pieces of odd sizes.
      await pool.run("backup.chunk", { settings, stream: 1, data: bytes.slice(0, 5000) }, {
        onPart,
      });
      await pool.run("backup.chunk", { settings, stream: 1, abort: true }, { onPart });
      const cuts = [0, 777_777, 2_000_001, bytes.length];
      for (let i = 0; i < 3; i++) {
        await pool.run("backup.chunk", {
          settings,
          stream: 2,
          data: bytes.slice(cuts[i], cuts[i + 1]),
          end: i === 2,
        }, { onPart });
      }
      const two = results.filter((r) => r.job === 2);
      assert.deepEqual(two.map((r) => r.done), [false, false, true]);
      assert.equal(two.at(-1)!.bytesRead, bytes.length);
      const want: string[] = [];
      let pos = 0;
      for (const len of splitAll(chunker, bytes)) {
        want.push(toHex(sha256(bytes.subarray(pos, pos + len))));
        pos += len;
      }
      assert.deepEqual(two.flatMap((r) => r.blocks.map((b) => toHex(b.id))), want);
      assert.ok(want.length > 20, "many blocks, some spanning pieces");
      // Entry 1 was forgotten: a new piece under its number starts a new entry.
      await pool.run("backup.chunk", { settings, stream: 1, data: bytes.slice(0, 10), end: true }, {
        onPart,
      });
      const last = results.at(-1)!;
      assert.deepEqual([last.job, last.done, last.bytesRead], [1, true, 10]);
    } finally {
      await pool.close();
    }
  });
}

for (const workers of [0, 1]) {
  Deno.test(`wal.encode reads a file on the pool and returns its head, SHA-256 and a compressed copy that decodes to it (workers ${workers})`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bendsave-walenc-"));
    const pool = await WorkerPool.start(ENGINE_JOBS, { workers });
    try {
      const raw = new Uint8Array(3 << 20);
      raw.set(new TextEncoder().encode("a WAL segment's first records"), 40);
      const file = path.join(dir, "000000010000000000000003");
      fs.writeFileSync(file, raw);
      const input = { file, maxWhole: 4 << 20, headBytes: 100, compression: DEFAULT_COMPRESSION };
      const e = await pool.run("wal.encode", input);
      if (e.kind !== "block") throw new Error(`not encoded: ${JSON.stringify(e)}`);
      assert.equal(e.size, raw.length);
      assert.deepEqual(e.head, raw.subarray(0, 100));
      assert.equal(toHex(e.block.id), toHex(sha256(raw)));
      assert.equal(e.block.codec, Codec.zstd);
      assert.ok(e.block.data.length < raw.length / 100, `compressed: ${e.block.data.length}`);
      assert.deepEqual(decodeBlock(e.block.codec as Codec, e.block.data, raw.length), raw);
      // Larger than one block: not read there; missing: the errno code.
      assert.deepEqual(await pool.run("wal.encode", { ...input, maxWhole: 1 << 20 }), {
        kind: "large",
        size: raw.length,
      });
      assert.deepEqual(await pool.run("wal.encode", { ...input, file: `${file}.gone` }), {
        kind: "unreadable",
        code: "ENOENT",
      });
    } finally {
      await pool.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

Deno.test("joinBlocks moves a part's block ids and data into two buffers, bytes unchanged", () => {
  const block = (n: number, withData: boolean) => {
    const data = new Uint8Array(n).fill(n);
    return { id: sha256(data), rawLength: n, codec: Codec.raw, data: withData ? data : null };
  };
  const results: FileResult[] = [
    { job: 1, blocks: [block(3, true), block(5, false)], done: true, bytesRead: 8 },
    { job: 2, blocks: [], done: true, bytesRead: 0 },
    { job: 3, blocks: [block(7, true)], done: false, bytesRead: 7 },
  ];
  const before = results.map((r) =>
    r.blocks.map((b) => [toHex(b.id), b.data ? [...b.data] : null])
  );
  const own = results.flatMap((r) => r.blocks.flatMap((b) => (b.data ? [b.data] : [])));
  const transfer = joinBlocks(results);
  // The blocks' own buffers are freed once copied (detached), not left to a collection.
  assert.deepEqual(own.map((d) => d.buffer.byteLength), [0, 0]);
  assert.equal(transfer.length, 2, "one buffer of ids, one of data");
  const [ids, data] = transfer as [ArrayBuffer, ArrayBuffer];
  assert.equal(ids.byteLength, 3 * 32);
  assert.equal(data.byteLength, 3 + 7);
  for (const r of results) {
    for (const b of r.blocks) {
      assert.equal(b.id.buffer, ids);
      if (b.data) assert.equal(b.data.buffer, data);
    }
  }
  assert.deepEqual(
    results.map((r) => r.blocks.map((b) => [toHex(b.id), b.data ? [...b.data] : null])),
    before,
  );
  assert.deepEqual(joinBlocks([{ job: 4, blocks: [], done: true, bytesRead: 0 }]), []);
});

Deno.test("ENGINE_JOBS restore.write frees each block's bytes once written, and the file is whole (in-process)", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "worker-jobs-write-"));
  const pool = await WorkerPool.start(ENGINE_JOBS, { workers: 0 });
  try {
    const parts = [new Uint8Array(5000).fill(7), new Uint8Array(3000).fill(9)];
    const blocks = parts.map((raw) => ({
      id: sha256(raw),
      pack: "00".repeat(32),
      codec: Codec.raw,
      rawLength: raw.length,
      data: raw.slice(), // a copy of its own, as dir_output.ts makes for the writer
    }));
    const final = path.join(dir, "f");
    const report = await pool.run("restore.write", [
      { op: "begin", file: 0, final, rel: "f" },
      { op: "blocks", file: 0, blocks },
      { op: "end", file: 0, size: 8000, mode: 0o644, mtimeMs: 1_700_000_000_000 },
    ]);
    assert.deepEqual(report.failed, []);
    assert.deepEqual(
      new Uint8Array(fs.readFileSync(final)),
      new Uint8Array([...parts[0]!, ...parts[1]!]),
    );
    for (const b of blocks) {
      assert.equal(b.data.buffer.byteLength, 0, "a written block's bytes are freed");
    }
  } finally {
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
