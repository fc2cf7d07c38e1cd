/**
 * The machine's bound for a backup's CPU work on given files: the bytes per
 * second that cutting (the default FastCDC chunker), SHA-256 and
 * compression (the repository default, zstd level 1) reach with the
 * engine's own primitives (formats/chunker.ts, formats/hash.ts,
 * formats/codec.ts), on 1 thread and on N threads side by side, the files
 * already in memory (no I/O). A backup's throughput divided by the N-thread
 * figure says how close it comes to the CPU bound.
 *
 * Run: deno run --allow-all bench/hash_bound.ts [--threads 2] <file>...
 *
 * @module
 */
/// <reference lib="deno.worker" />
import fs from "node:fs";
import os from "node:os";
import { parseArgs } from "node:util";
import { createChunker, DEFAULT_FASTCDC } from "../formats/chunker.ts";
import { DEFAULT_COMPRESSION, encodeBlock } from "../formats/codec.ts";
import { sha256 } from "../formats/hash.ts";

/** Cuts, hashes and compresses `data`; returns the stored bytes. */
function work(data: Uint8Array): number {
  const chunker = createChunker(DEFAULT_FASTCDC);
  let stored = 0;
  let pos = 0;
  const cut = (len: number) => {
    const raw = data.subarray(pos, pos + len);
    pos += len;
    sha256(raw);
    stored += encodeBlock(raw, DEFAULT_COMPRESSION).data.length;
  };
  for (let i = 0; i < data.length; i += 8 * 1024 * 1024) {
    for (const len of chunker.push(data.subarray(i, i + 8 * 1024 * 1024))) cut(len);
  }
  const last = chunker.finish();
  if (last > 0) cut(last);
  return stored;
}

const inWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !==
  "undefined";

if (inWorker) {
  self.onmessage = (ev: MessageEvent<{ files: string[] }>) => {
    const data = ev.data.files.map((f) => new Uint8Array(fs.readFileSync(f)));
    self.postMessage({ ready: true });
    self.onmessage = () => {
      const t0 = performance.now();
      let bytes = 0;
      for (const d of data) {
        work(d);
        bytes += d.length;
      }
      self.postMessage({ bytes, ms: performance.now() - t0 });
    };
  };
} else {
  const { values, positionals } = parseArgs({
    options: { threads: { type: "string" } },
    allowPositionals: true,
  });
  const threads = Number(values.threads ?? os.availableParallelism());
  const files = positionals;
  if (files.length === 0) {
    console.error("usage: deno run --allow-all bench/hash_bound.ts [--threads N] <file>...");
    Deno.exit(2);
  }
  // One thread, in this one.
  const all = files.map((f) => new Uint8Array(fs.readFileSync(f)));
  const total = all.reduce((a, d) => a + d.length, 0);
  const t0 = performance.now();
  let stored = 0;
  for (const d of all) stored += work(d);
  const one = total / ((performance.now() - t0) / 1000);
  all.length = 0;
  // N threads, the files dealt out in turn, started together.
  const workers = Array.from(
    { length: threads },
    () => new Worker(import.meta.url, { type: "module" }),
  );
  await Promise.all(workers.map((w, i) =>
    new Promise<void>((resolve) => {
      w.onmessage = () => resolve();
      w.postMessage({ files: files.filter((_, j) => j % threads === i) });
    })
  ));
  const t1 = performance.now();
  const done = await Promise.all(workers.map((w) =>
    new Promise<{ bytes: number }>((resolve) => {
      w.onmessage = (ev) => resolve(ev.data);
      w.postMessage({ go: true });
    })
  ));
  const wall = (performance.now() - t1) / 1000;
  for (const w of workers) w.terminate();
  const bytes = done.reduce((a, d) => a + d.bytes, 0);
  const mb = (n: number) => (n / 1e6).toFixed(0);
  console.log(
    `${files.length} files, ${mb(total)} MB (stored ${mb(stored)} MB): ` +
      `1 thread ${mb(one)} MB/s; ${threads} threads ${mb(bytes / wall)} MB/s`,
  );
}
