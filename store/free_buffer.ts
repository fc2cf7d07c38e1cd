/**
 * Frees the memory of a buffer at once, rather than when a garbage
 * collection finds it. The engine's threads pass packs (32 MiB) and parts of
 * files (16 MiB) between them, and blocks by the ten thousand; the runtimes
 * collect a buffer's memory only with the object that owns it, so between
 * collections the dead ones piled up to several times the live memory
 * (bench/RESULTS.md, "Fifth session of 2026-12-02"). Only for a buffer
 * nothing else can reach: after the call it is detached (zero bytes long).
 * `ArrayBuffer.prototype.transfer(0)` is ES2024 (V8 and JavaScriptCore).
 *
 * @module
 */

type Transferable = ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };

/** Frees `buffer` (a no-op for shared memory or a runtime without `transfer`). */
export function freeBuffer(buffer: ArrayBufferLike): void {
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength === 0) return;
  (buffer as Transferable).transfer?.(0);
}

/** Frees the buffer of `bytes` when `bytes` views all of it (a view of part of one is left). */
export function freeWhole(bytes: Uint8Array): void {
  if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) return;
  freeBuffer(bytes.buffer);
}
