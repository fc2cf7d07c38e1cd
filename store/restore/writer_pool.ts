/**
 * Restore writer lanes: worker threads (one per core) that write files, or
 * one in-process writer when workers cannot start. Each lane takes batches
 * of write steps in order; at most two batches per lane are in flight, so
 * memory stays flat.
 *
 * @module
 */
import { availableParallelism } from "node:os";
import {
  type FailedFile,
  FileWriter,
  type WriteError,
  type WriteOp,
  type WriteReport,
} from "./file_writer.ts";
import { startWorker } from "../worker_start.ts";

const IN_FLIGHT = 2;
const WRITER_WORKER = new URL("./writer_worker.ts", import.meta.url);

interface Lane {
  readonly worker: Worker | null;
  /** Batches sent and not yet applied: sequence number -> completion. */
  readonly pending: Map<number, { done: Promise<void>; resolve: () => void }>;
}

/** Writer lanes for a restore. */
export class WriterPool {
  readonly #lanes: Lane[];
  readonly #local = new FileWriter();
  readonly #onReport: (r: WriteReport) => void;
  #seq = 0;
  #error: WriteError | null = null;
  readonly #failed: FailedFile[] = [];

  private constructor(workers: Worker[], onReport: (r: WriteReport) => void) {
    this.#onReport = onReport;
    this.#lanes = workers.length
      ? workers.map((worker) => ({ worker, pending: new Map() }))
      : [{ worker: null, pending: new Map() }];
    for (const lane of this.#lanes) {
      if (!lane.worker) continue;
      lane.worker.onmessage = (ev: MessageEvent<{ seq: number; report: WriteReport }>) => {
        if (ev.data.report) this.#report(ev.data.report);
        const p = lane.pending.get(ev.data.seq);
        lane.pending.delete(ev.data.seq);
        p?.resolve();
      };
      lane.worker.onerror = (ev) => {
        ev.preventDefault();
        this.#error ??= { kind: "other", message: `restore worker failed: ${ev.message}` };
        for (const p of lane.pending.values()) p.resolve();
        lane.pending.clear();
      };
    }
  }

  /**
   * Starts `workers` writer threads (default: one per core); 0 writes
   * in-process. Threads that cannot start are reported through `onWarning`.
   */
  static async start(
    onReport: (r: WriteReport) => void,
    workers?: number,
    onWarning: (message: string) => void = () => {},
  ): Promise<WriterPool> {
    const n = workers ?? availableParallelism();
    const started = await Promise.all(Array.from({ length: n }, () => startWorker(WRITER_WORKER)));
    const ok = started.filter((w): w is Worker => w instanceof Worker);
    const failed = started.find((w): w is Error => w instanceof Error);
    if (failed) {
      onWarning(
        `${n - ok.length} of ${n} writer threads could not start (${failed.message}); ` +
          (ok.length ? "continuing with fewer" : "writing files on the main thread"),
      );
    }
    return new WriterPool(ok, onReport);
  }

  #report(r: WriteReport): void {
    if (r.error) this.#error ??= r.error;
    this.#failed.push(...r.failed);
    this.#onReport(r);
  }

  /** Files the lanes left out so far (the others were written). */
  get failed(): readonly FailedFile[] {
    return this.#failed;
  }

  /** Number of lanes. */
  get lanes(): number {
    return this.#lanes.length;
  }

  /** The first error any lane reported. */
  get error(): WriteError | null {
    return this.#error;
  }

  /** Sends a batch to a lane; waits while that lane already has two batches in flight. */
  async send(lane: number, ops: WriteOp[], transfer: ArrayBuffer[]): Promise<void> {
    const l = this.#lanes[lane % this.#lanes.length]!;
    if (!l.worker) {
      this.#report(this.#local.apply(ops));
      return;
    }
    while (l.pending.size >= IN_FLIGHT) {
      await Promise.race([...l.pending.values()].map((p) => p.done));
    }
    const seq = this.#seq++;
    let resolve = () => {};
    const done = new Promise<void>((r) => (resolve = r));
    l.pending.set(seq, { done, resolve });
    l.worker.postMessage({ seq, ops }, transfer);
  }

  /** Waits until every lane has applied everything sent to it. */
  async drain(): Promise<void> {
    for (const l of this.#lanes) await Promise.all([...l.pending.values()].map((p) => p.done));
  }

  /** Removes the temporary files of files not yet complete, then stops the workers. */
  async close(): Promise<void> {
    this.#local.abort();
    await Promise.all(this.#lanes.map((l) =>
      l.worker
        ? new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 5000);
          l.worker!.onmessage = (ev) => {
            if (ev.data?.aborted) {
              clearTimeout(timer);
              resolve();
            }
          };
          l.worker!.postMessage({ abort: true });
        })
        : Promise.resolve()
    ));
    for (const l of this.#lanes) l.worker?.terminate();
  }
}
