import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { WorkerPool, type WorkerPoolOptions } from "./worker_pool.ts";
import { TEST_JOBS } from "./_worker_pool_test_jobs.ts";

const ENTRY = new URL("./_worker_pool_test_entry.ts", import.meta.url);

function start(options: WorkerPoolOptions) {
  return WorkerPool.start(TEST_JOBS, { entry: ENTRY, ...options });
}

for (const workers of [0, 2]) {
  const where = workers ? "on threads" : "in-process";

  Deno.test(`WorkerPool runs typed jobs with transfer lists ${where}`, async () => {
    const pool = await start({ workers });
    try {
      assert.deepEqual(pool.lanes, workers || 1);
      assert.deepEqual(pool.threaded, workers > 0);
      const buffer = new ArrayBuffer(1000);
      const out = await pool.run("echo", { value: { a: [1, "x"] }, buffer }, {
        transfer: workers ? [buffer] : [],
      });
      assert.deepEqual(out, { value: { a: [1, "x"] }, length: 1000 });
      // A transferred buffer is moved to the thread.
      assert.deepEqual(buffer.byteLength, workers ? 0 : 1000);
    } finally {
      await pool.close();
    }
  });

  Deno.test(`WorkerPool keeps at most inFlight jobs per lane ${where}`, async () => {
    const pool = await start({ workers, inFlight: 2 });
    const timeout = (ms: number) =>
      new Promise<"waiting">((r) => setTimeout(() => r("waiting"), ms));
    try {
      const first = [];
      for (let i = 0; i < 2 * pool.lanes; i++) first.push(await pool.submit("sleep", 300));
      // Every lane is full: the next job waits for room.
      const next = pool.submit("sleep", 1);
      assert.equal(await Promise.race([next, timeout(100)]), "waiting");
      const onLane0 = pool.submit("sleep", 1, { lane: 0 });
      assert.equal(await Promise.race([onLane0, timeout(50)]), "waiting");
      await first[0]!.result;
      assert.notEqual(await Promise.race([next, timeout(1000)]), "waiting");
      await pool.drain();
      assert.notEqual(await Promise.race([onLane0, timeout(1000)]), "waiting");
      await pool.drain();
      // The jobs of a lane run one after the other, never at the same time.
      for (const s of first) assert.equal(await s.result, 1);
      assert.equal(await (await next).result, 1);
    } finally {
      await pool.close();
    }
  });

  Deno.test(`WorkerPool sends a job to the first lane with room ${where}`, async () => {
    // Two large files then share one thread, as before the one pool: side by side, each
    // thread held its own window of parts (a backup's peak RSS grew by about 100 MB).
    const pool = await start({ workers, inFlight: 2 });
    try {
      const sent = [];
      for (let i = 0; i < 3; i++) sent.push(await pool.submit("sleep", 100));
      assert.deepEqual(sent.map((s) => s.lane), workers ? [0, 0, 1] : [0, 0, 0]);
      await pool.drain();
    } finally {
      await pool.close();
    }
  });

  Deno.test(`WorkerPool runs the jobs of a lane in order on one handler ${where}`, async () => {
    const pool = await start({ workers });
    try {
      const sent = [];
      for (let i = 0; i < 20; i++) sent.push(await pool.submit("append", i, { lane: i % 2 }));
      const results = await Promise.all(sent.map((s) => s.result));
      const lanes = pool.lanes;
      for (let lane = 0; lane < lanes; lane++) {
        const mine = Array.from({ length: 20 }, (_, i) => i).filter((i) => i % 2 % lanes === lane);
        assert.deepEqual(results[mine.at(-1)!], mine);
      }
      for (const [i, s] of sent.entries()) assert.deepEqual(s.lane, i % 2 % lanes);
    } finally {
      await pool.close();
    }
  });

  Deno.test(`WorkerPool delivers parts in order, one at a time, with back-pressure ${where}`, async () => {
    const pool = await start({ workers });
    try {
      const got: [number, number][] = [];
      let busy = false;
      const onPart = async (p: { i: number; bytes: Uint8Array }) => {
        assert(!busy, "two parts delivered at once");
        busy = true;
        await new Promise((r) => setTimeout(r, 1));
        assert.deepEqual(p.bytes.length, 256 * 1024);
        assert.deepEqual(p.bytes[0], p.i & 0xff);
        got.push([p.i, p.bytes.length]);
        busy = false;
      };
      // 40 parts of 256 KiB against a 1 MiB unacknowledged limit (the test entry's).
      const a = pool.run("parts", { count: 20, size: 256 * 1024 }, { onPart, lane: 0 });
      const b = pool.run("parts", { count: 20, size: 256 * 1024 }, { onPart, lane: 1 });
      assert.deepEqual(await a, 20);
      assert.deepEqual(await b, 20);
      assert.deepEqual(got.length, 40);
      const seq = got.map(([i]) => i);
      for (let n = 0; n < 20; n++) assert.deepEqual(seq.filter((i) => i === n).length, 2);
    } finally {
      await pool.close();
    }
  });

  Deno.test(`WorkerPool propagates a handler's error and goes on ${where}`, async () => {
    const pool = await start({ workers });
    try {
      await assert.rejects(() => pool.run("fail", "x"), {
        name: "RangeError",
        message: 'bad input "x"',
      });
      // The lane still works.
      assert.deepEqual((await pool.run("echo", { value: 1 })).value, 1);
      // drain reports a failure nobody awaited.
      await pool.submit("fail", "y");
      await assert.rejects(() => pool.drain(), /bad input/);
    } finally {
      await pool.close();
    }
  });

  Deno.test(`WorkerPool fails a job whose onPart throws ${where}`, async () => {
    const pool = await start({ workers });
    try {
      let calls = 0;
      await assert.rejects(
        () =>
          pool.run("parts", { count: 5, size: 10 }, {
            onPart: () => {
              calls++;
              throw new TypeError("caller refused the part");
            },
          }),
        TypeError,
      );
      assert.deepEqual(calls, 1);
    } finally {
      await pool.close();
    }
  });

  Deno.test(`WorkerPool close runs the handlers' close after the jobs sent ${where}`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "worker-pool-"));
    try {
      const pool = await start({ workers });
      const markers = Array.from({ length: pool.lanes }, (_, i) => path.join(dir, `m${i}`));
      for (const [i, m] of markers.entries()) await pool.submit("marker", m, { lane: i });
      const late = await pool.submit("sleep", 30);
      await pool.close();
      assert.deepEqual(await late.result, 1);
      for (const m of markers) assert.deepEqual(fs.readFileSync(m, "utf8"), "closed");
      await assert.rejects(() => pool.run("echo", { value: 1 }), /closed/);
      await pool.close(); // twice is fine
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

Deno.test("WorkerPool falls back to in-process jobs when no thread can start", async () => {
  const warnings: string[] = [];
  const pool = await WorkerPool.start(TEST_JOBS, {
    workers: 2,
    entry: new URL("./no_such_worker_entry.ts", import.meta.url),
    name: "test",
    fallback: "running tests on the main thread",
    onWarning: (m) => warnings.push(m),
  });
  try {
    assert.deepEqual(pool.threaded, false);
    assert.deepEqual(pool.lanes, 1);
    assert.deepEqual(warnings.length, 1);
    assert(warnings[0]!.startsWith("2 of 2 test threads could not start"), warnings[0]);
    assert(warnings[0]!.endsWith("running tests on the main thread"), warnings[0]);
    assert.deepEqual(await pool.run("append", 7), [7]);
  } finally {
    await pool.close();
  }
});

Deno.test("WorkerPool fails the jobs of a thread that crashes", async () => {
  const pool = await start({ workers: 1, name: "test" });
  try {
    await assert.rejects(() => pool.run("crash", null), /test thread failed/);
    await assert.rejects(() => pool.run("echo", { value: 1 }), /test thread failed/);
  } finally {
    await pool.close();
  }
});

Deno.test("WorkerPool refuses an unknown job kind", async () => {
  const pool = await start({ workers: 0 });
  try {
    await assert.rejects(
      // @ts-expect-error: not a kind of the registry
      () => pool.run("nope", 1),
      { name: "TypeError", message: 'unknown job kind "nope"' },
    );
  } finally {
    await pool.close();
  }
});
