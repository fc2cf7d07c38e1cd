/**
 * Runs pack checks on worker threads (one per core), or in-process when
 * workers cannot start. At most two packs per worker are in flight, so
 * memory stays at a few packs.
 *
 * @module
 */
import { availableParallelism } from "node:os";
import { checkPack, type PackCheck } from "./pack_check.ts";
import { startWorker } from "./worker_start.ts";

const VERIFY_WORKER = new URL("./verify_worker.ts", import.meta.url);

/**
 * Checks every pack `load` returns, in order of `names`; `onResult` gets
 * each result (in completion order).
 */
export async function checkPacks(
  names: readonly string[],
  load: (name: string) => Promise<Uint8Array>,
  onResult: (r: PackCheck, size: number) => void,
  options: { workers?: number; onWarning?: (message: string) => void } = {},
): Promise<void> {
  const n = Math.min(options.workers ?? availableParallelism(), names.length);
  const started = await Promise.all(Array.from({ length: n }, () => startWorker(VERIFY_WORKER)));
  const workers = started.filter((w): w is Worker => w instanceof Worker);
  const failed = started.find((w): w is Error => w instanceof Error);
  if (failed) {
    options.onWarning?.(
      `${n - workers.length} of ${n} verify threads could not start (${failed.message}); ` +
        (workers.length ? "continuing with fewer" : "checking packs on the main thread"),
    );
  }
  if (workers.length === 0) {
    for (const name of names) {
      const bytes = await load(name);
      onResult(checkPack(name, bytes), bytes.length);
    }
    return;
  }
  try {
    let next = 0;
    let seq = 0;
    await Promise.all(workers.map(async (w) => {
      const pending = new Map<
        number,
        { resolve: (r: PackCheck) => void; reject: (e: Error) => void; size: number }
      >();
      let failure: Error | null = null;
      w.onmessage = (ev: MessageEvent<{ seq: number; result: PackCheck }>) => {
        const p = pending.get(ev.data.seq);
        if (!p) return;
        pending.delete(ev.data.seq);
        onResult(ev.data.result, p.size);
        p.resolve(ev.data.result);
      };
      w.onerror = (ev) => {
        ev.preventDefault();
        failure = new Error(`verify worker failed: ${ev.message}`);
        for (const p of pending.values()) p.reject(failure);
        pending.clear();
      };
      const inFlight = new Set<Promise<PackCheck>>();
      while (next < names.length) {
        const name = names[next++]!;
        let bytes = await load(name);
        // Only a buffer of its own may be transferred (a pooled one is shared).
        if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) {
          bytes = bytes.slice();
        }
        const s = seq++;
        const done = new Promise<PackCheck>((resolve, reject) =>
          pending.set(s, { resolve, reject, size: bytes.length })
        );
        inFlight.add(done);
        void done.then(() => inFlight.delete(done));
        w.postMessage({ seq: s, name, bytes }, [bytes.buffer as ArrayBuffer]);
        if (inFlight.size >= 2) await Promise.race(inFlight);
        if (failure) throw failure;
      }
      await Promise.all(inFlight);
      if (failure) throw failure;
    }));
  } finally {
    for (const w of workers) w.terminate();
  }
}
