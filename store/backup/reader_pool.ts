/**
 * Runs file jobs on reader workers (both cores) or, when workers cannot be
 * started, in-process. Results reach the handler one at a time, in order
 * per file; the handler's promise is awaited before the next result, and
 * workers pause when too much data is unconsumed, so memory stays flat.
 *
 * @module
 */
import { availableParallelism } from "node:os";
import {
  type FileJob,
  type FileResult,
  type ReaderSettings,
  readFileBlocks,
} from "./file_blocks.ts";
import type { FromWorker, ToWorker } from "./worker_protocol.ts";
import { startWorker } from "../worker_start.ts";

/** Options of {@linkcode ReaderPool}. */
export interface ReaderPoolOptions {
  /** Number of workers; 0 reads in-process. Default: the number of cores. */
  readonly workers?: number;
}

const BATCH_FILES = 256;
const BATCH_BYTES = 8 * 1024 * 1024;

const READER_WORKER = new URL("./worker.ts", import.meta.url);

/** A pool of file readers. */
export class ReaderPool {
  readonly #settings: ReaderSettings;
  readonly #workers: Worker[] = [];

  private constructor(settings: ReaderSettings, workers: Worker[]) {
    this.#settings = settings;
    this.#workers.push(...workers);
  }

  /**
   * Starts the workers and waits until each has loaded. A worker that
   * cannot start (for example a runtime without worker support) is dropped
   * with a warning; with none left, files are read in-process.
   */
  static async start(
    settings: ReaderSettings,
    options: ReaderPoolOptions = {},
    onWarning: (message: string) => void = () => {},
  ): Promise<ReaderPool> {
    const n = options.workers ?? Math.max(1, Math.min(availableParallelism(), 8));
    const started = await Promise.all(Array.from({ length: n }, () => startWorker(READER_WORKER)));
    const workers = started.filter((w): w is Worker => w instanceof Worker);
    for (const w of workers) w.postMessage({ type: "init", settings } satisfies ToWorker);
    const failed = started.find((w): w is Error => w instanceof Error);
    if (failed) {
      onWarning(
        `${n - workers.length} of ${n} reader threads could not start (${failed.message}); ` +
          (workers.length ? "continuing with fewer" : "reading files on the main thread"),
      );
    }
    return new ReaderPool(settings, workers);
  }

  /** Number of workers in use (0: in-process). */
  get workerCount(): number {
    return this.#workers.length;
  }

  /**
   * Reads every job; `sizes` are the expected sizes (for batching).
   * Resolves when every result has been handled.
   */
  async run(
    jobs: readonly FileJob[],
    sizes: readonly number[],
    handle: (r: FileResult) => Promise<void> | void,
  ): Promise<void> {
    if (this.#workers.length === 0) {
      const seen = new Set<string>();
      for (const job of jobs) {
        for (const r of readFileBlocks(job, this.#settings, seen)) await handle(r);
      }
      return;
    }
    // Batches of neighbouring files keep per-message overhead low.
    const batches: FileJob[][] = [];
    let cur: FileJob[] = [];
    let curBytes = 0;
    jobs.forEach((j, i) => {
      cur.push(j);
      curBytes += sizes[i] ?? 0;
      if (cur.length >= BATCH_FILES || curBytes >= BATCH_BYTES) {
        batches.push(cur);
        cur = [];
        curBytes = 0;
      }
    });
    if (cur.length) batches.push(cur);

    let next = 0;
    let failed: unknown = null;
    let chain: Promise<void> = Promise.resolve();
    await Promise.all(this.#workers.map((w) =>
      new Promise<void>((resolve, reject) => {
        let inFlight = 0;
        const feed = () => {
          while (inFlight < 2 && next < batches.length && failed === null) {
            inFlight++;
            w.postMessage({ type: "jobs", jobs: batches[next++]! } satisfies ToWorker);
          }
          if (inFlight === 0) resolve();
        };
        w.onmessage = (ev: MessageEvent<FromWorker>) => {
          const m = ev.data;
          if (m.type === "results") {
            chain = chain.then(async () => {
              if (failed !== null) return;
              try {
                for (const r of m.results) await handle(r);
              } catch (e) {
                failed = e;
              }
              w.postMessage({ type: "ack", bytes: m.bytes } satisfies ToWorker);
            });
          } else if (m.type === "batchDone") {
            chain = chain.then(() => {
              inFlight--;
              if (failed !== null) reject(failed);
              else feed();
            });
          }
        };
        w.onerror = (ev) => {
          ev.preventDefault();
          reject(new Error(`reader worker failed: ${ev.message}`));
        };
        feed();
      })
    ));
    await chain;
    if (failed !== null) throw failed;
  }

  /** Stops the workers. */
  close(): void {
    for (const w of this.#workers) w.terminate();
    this.#workers.length = 0;
  }
}
