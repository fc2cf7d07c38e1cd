/**
 * Checks packs for `verify --read-data` on the worker pool (`verify.pack`
 * jobs, one thread per core, or in-process when threads cannot start). Each
 * lane checks one pack while its loader reads the next, so memory holds two
 * packs per lane; a checked pack's buffer is freed at once (worker_jobs.ts).
 *
 * @module
 */
import { availableParallelism } from "node:os";
import type { PackCheck } from "./pack_check.ts";
import { WorkerPool } from "./worker_pool.ts";
import { ENGINE_JOBS } from "./worker_jobs.ts";

/**
 * Checks every pack `load` returns, in order of `names`; `onResult` gets
 * each result (in completion order). A throw of `load` or `onResult`, or a
 * failed thread, rejects.
 */
export async function checkPacks(
  names: readonly string[],
  load: (name: string) => Promise<Uint8Array>,
  onResult: (r: PackCheck, size: number) => void,
  options: {
    workers?: number;
    onWarning?: (message: string) => void;
    /** Packs whose good tree blocks' content the results should hold. */
    keepTrees?: ReadonlySet<string>;
    /** An encrypted repository's master key: its packs are sealed. */
    masterKey?: Uint8Array;
  } = {},
): Promise<void> {
  const pool = await WorkerPool.start(ENGINE_JOBS, {
    workers: Math.min(options.workers ?? availableParallelism(), names.length),
    name: "verify",
    // One pack checked per lane while the next loads: a second in flight held 35 MB more per
    // lane and read no faster (bench/RESULTS.md, "Fifth session of 2026-12-02").
    inFlight: 1,
    fallback: "checking packs on the main thread",
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
  });
  let failed: { error: unknown } | null = null;
  try {
    let next = 0;
    // One loader per lane: it loads a pack, then waits for room on its lane.
    await Promise.all(Array.from({ length: pool.lanes }, async (_, lane) => {
      const results: Promise<void>[] = [];
      while (next < names.length && !failed) {
        const name = names[next++]!;
        let bytes = await load(name);
        // Only a buffer of its own may be transferred (a pooled one is shared).
        if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) {
          bytes = bytes.slice();
        }
        const size = bytes.length;
        const keepTrees = options.keepTrees?.has(name) === true;
        const mk = options.masterKey;
        const job = await pool.submit("verify.pack", {
          name,
          bytes,
          keepTrees,
          ...(mk ? { masterKey: mk } : {}),
          transferred: pool.threaded,
        }, {
          lane,
          ...(pool.threaded ? { transfer: [bytes.buffer as ArrayBuffer] } : {}),
        });
        results.push(
          job.result.then((r) => onResult(r, size)).catch((e) => {
            failed ??= { error: e };
          }),
        );
      }
      await Promise.all(results);
    }));
    if (failed) throw (failed as { error: unknown }).error;
  } finally {
    await pool.close({ abandon: true });
  }
}
