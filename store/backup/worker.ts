/**
 * Reader worker: receives batches of file jobs, answers with their blocks.
 * Waits for acknowledgements when too much unconsumed data is in flight.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { type FileJob, readFileBlocks, type ReaderSettings } from "./file_blocks.ts";
import type { ToWorker } from "./worker_protocol.ts";

const MAX_UNACKED = 64 * 1024 * 1024;
let settings: ReaderSettings | null = null;
const seen = new Set<string>();
const queue: FileJob[][] = [];
let unacked = 0;
let wake: (() => void) | null = null;
let running = false;

function post(msg: unknown, transfer: Transferable[] = []): void {
  (self as unknown as { postMessage(m: unknown, t: Transferable[]): void }).postMessage(msg, transfer);
}

async function run(): Promise<void> {
  if (running) return;
  running = true;
  while (queue.length > 0) {
    const batch = queue.shift()!;
    for (const job of batch) {
      for (const r of readFileBlocks(job, settings!, seen)) {
        const transfer: Transferable[] = [];
        let bytes = 0;
        for (const b of r.blocks) {
          if (b.data) {
            transfer.push(b.data.buffer as ArrayBuffer);
            bytes += b.data.length;
          }
        }
        unacked += bytes;
        post({ type: "result", result: r, bytes }, transfer);
        while (unacked > MAX_UNACKED) await new Promise<void>((res) => (wake = res));
      }
    }
    post({ type: "batchDone" });
  }
  running = false;
}

self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  if (m.type === "init") {
    settings = m.settings;
  } else if (m.type === "jobs") {
    queue.push(m.jobs);
    void run();
  } else if (m.type === "ack") {
    unacked -= m.bytes;
    const w = wake;
    wake = null;
    w?.();
  } else if (m.type === "clearSeen") {
    seen.clear();
  }
};
