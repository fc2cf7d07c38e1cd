/**
 * Verify worker: checks packs sent to it (see pack_check.ts).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { checkPack } from "./pack_check.ts";

const post = (m: unknown) => (self as unknown as { postMessage(m: unknown): void }).postMessage(m);

self.onmessage = (ev: MessageEvent<{ seq: number; name: string; bytes: Uint8Array }>) => {
  const { seq, name, bytes } = ev.data;
  post({ seq, result: checkPack(name, bytes) });
};

post({ type: "ready" });
