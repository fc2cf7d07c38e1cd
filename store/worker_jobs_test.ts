import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEFAULT_FASTCDC } from "../formats/chunker.ts";
import { DEFAULT_COMPRESSION } from "../formats/codec.ts";
import { sha256, toHex } from "../formats/hash.ts";
import { BoundedSet, ENGINE_JOBS } from "./worker_jobs.ts";
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
      } finally {
        await pool.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}
