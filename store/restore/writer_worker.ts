/**
 * Restore worker: applies batches of write steps (see file_writer.ts).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { FileWriter, type WriteOp } from "./file_writer.ts";

const writer = new FileWriter();
const post = (m: unknown) => (self as unknown as { postMessage(m: unknown): void }).postMessage(m);

self.onmessage = (ev: MessageEvent<{ seq: number; ops: WriteOp[] } | { abort: true }>) => {
  const m = ev.data;
  if ("abort" in m) {
    writer.abort();
    post({ aborted: true });
    return;
  }
  post({ seq: m.seq, report: writer.apply(m.ops) });
};

post({ type: "ready" });
