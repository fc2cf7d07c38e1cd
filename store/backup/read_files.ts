/**
 * Reads files for a backup on the worker pool: neighbouring files go in
 * batches (`backup.read` jobs) to whichever lane has room; results reach
 * the handler one at a time, in order per file, and a lane's thread waits
 * when too much of its data is unconsumed, so memory stays flat.
 *
 * @module
 */
import type { FileJob, FileResult, ReaderSettings } from "./file_blocks.ts";
import type { EnginePool } from "../worker_jobs.ts";

const BATCH_FILES = 256;
const BATCH_BYTES = 8 * 1024 * 1024;

/**
 * Reads every job on `pool`; `sizes` are the expected sizes (for batching).
 * Resolves when every result has been handled; a throw of `handle` (or a
 * failed thread) rejects, after no more batches are sent.
 */
export async function readFiles(
  pool: EnginePool,
  settings: ReaderSettings,
  jobs: { jobs: readonly FileJob[]; sizes: readonly number[] },
  handle: (r: FileResult) => Promise<void> | void,
): Promise<void> {
  let failed: { error: unknown } | null = null;
  const onPart = async (results: FileResult[]) => {
    if (failed) return; // after a failure, the batches still in flight are not handled
    try {
      for (const r of results) await handle(r);
    } catch (e) {
      failed ??= { error: e };
      throw e;
    }
  };
  const results: Promise<void>[] = [];
  let batch: FileJob[] = [];
  let batchBytes = 0;
  const send = async () => {
    const job = await pool.submit("backup.read", { settings, jobs: batch }, { onPart });
    batch = [];
    batchBytes = 0;
    results.push(job.result.catch((e) => {
      failed ??= { error: e };
    }));
  };
  for (const [i, j] of jobs.jobs.entries()) {
    batch.push(j);
    batchBytes += jobs.sizes[i] ?? 0;
    if (batch.length >= BATCH_FILES || batchBytes >= BATCH_BYTES) {
      await send();
      if (failed) break;
    }
  }
  if (batch.length && !failed) await send();
  await Promise.all(results);
  if (failed) throw (failed as { error: unknown }).error;
}
