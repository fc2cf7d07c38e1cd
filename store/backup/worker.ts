/**
 * Reader worker: receives batches of file jobs, answers with their blocks.
 * Waits for acknowledgements when too much unconsumed data is in flight.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import {
  type FileJob,
  type FileResult,
  type ReaderSettings,
  readFileBlocks,
} from "./file_blocks.ts";
import type { ToWorker } from "./worker_protocol.ts";

const MAX_UNACKED = 64 * 1024 * 1024;
let settings: ReaderSettings | null = null;
const seen = new Set<string>();
const queue: FileJob[][] = [];
let unacked = 0;
let wake: (() => void) | null = null;
let running = false;

function post(msg: unknown, transfer: Transferable[] = []): void {
  (self as unknown as { postMessage(m: unknown, t: Transferable[]): void }).postMessage(
    msg,
    transfer,
  );
}

/** Results are sent in messages of about this many data bytes (per-message cost is high). */
const MESSAGE_BYTES = 4 * 1024 * 1024;

async function run(): Promise<void> {
  if (running) return;
  running = true;
  let results: FileResult[] = [];
  let transfer: Transferable[] = [];
  let bytes = 0;
  const send = async () => {
    if (results.length === 0) return;
    unacked += bytes;
    post({ type: "results", results, bytes }, transfer);
    results = [];
    transfer = [];
    bytes = 0;
    while (unacked > MAX_UNACKED) await new Promise<void>((res) => (wake = res));
  };
  while (queue.length > 0) {
    const batch = queue.shift()!;
    for (const job of batch) {
      for (const r of readFileBlocks(job, settings!, seen)) {
        for (const b of r.blocks) {
          if (b.data) {
            transfer.push(b.data.buffer as ArrayBuffer);
            bytes += b.data.length;
          }
        }
        results.push(r);
        if (bytes >= MESSAGE_BYTES) await send();
      }
    }
    await send();
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

post({ type: "ready" });
