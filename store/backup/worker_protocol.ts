/**
 * Messages between the backup engine and its reader workers.
 *
 * @module
 */
import type { FileJob, FileResult, ReaderSettings } from "./file_blocks.ts";

/** Messages to a reader worker. */
export type ToWorker =
  | { type: "init"; settings: ReaderSettings }
  | { type: "jobs"; jobs: FileJob[] }
  | { type: "ack"; bytes: number }
  | { type: "clearSeen" };

/** Messages from a reader worker. */
export type FromWorker =
  | { type: "results"; results: FileResult[]; bytes: number }
  | { type: "batchDone" }
  | { type: "ready" };
