/**
 * Cancellation of long operations: every operation takes an optional
 * `AbortSignal` and checks it at safe points (between files, packs,
 * manifests), where stopping leaves the repository as the write order
 * promises. A cancelled operation throws {@linkcode Cancelled}.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { Cancelled } from "./errors.ts";

/** Options every long operation takes besides its own. */
export interface CancelOptions {
  /** Aborting it stops the operation at its next safe point with {@linkcode Cancelled}. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Throws {@linkcode Cancelled} when `signal` is aborted; `operation` names
 * the operation in the message.
 *
 * @example
 * ```ts
 * import { throwIfCancelled } from "./cancel.ts";
 * const c = new AbortController();
 * throwIfCancelled(c.signal, "backup"); // nothing happens
 * c.abort();
 * try {
 *   throwIfCancelled(c.signal, "backup");
 * } catch (e) {
 *   console.log((e as Error).message); // "backup cancelled"
 * }
 * ```
 */
export function throwIfCancelled(signal: AbortSignal | undefined, operation: string): void {
  if (signal?.aborted) throw cancelled(signal, operation);
}

/** The {@linkcode Cancelled} error for an aborted `signal` (its reason, if a Cancelled, is kept). */
function cancelled(signal: AbortSignal, operation: string): Cancelled {
  if (signal.reason instanceof Cancelled) return signal.reason;
  return new Cancelled(`${operation} cancelled`, { cause: signal.reason });
}

/** How often {@linkcode checkpoint} lets the event loop turn (a signal handler needs a turn). */
const YIELD_MS = 5;
let lastYield = 0;

/** One turn of the event loop (about 5 µs; a timer would take a millisecond or more). */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A safe point of a long operation: at most every 5 ms it lets the event
 * loop turn, so that a SIGINT handler on this thread can run at all while
 * the operation does synchronous I/O; then it throws {@linkcode Cancelled}
 * when `signal` is aborted. With `force` it always waits for the loop to
 * poll (a timer, about 2 ms: for the boundaries between steps, not for
 * every file). Without a signal it does nothing.
 */
export async function checkpoint(
  signal: AbortSignal | undefined,
  operation: string,
  options: { force?: boolean } = {},
): Promise<void> {
  if (!signal) return;
  const t = performance.now();
  if (options.force || t - lastYield >= YIELD_MS) {
    lastYield = t;
    // A signal's handler runs once the loop has polled for I/O: a timer makes sure it does.
    if (options.force) await new Promise((resolve) => setTimeout(resolve, 0));
    await turn();
    await turn();
  }
  throwIfCancelled(signal, operation);
}

/**
 * The last safe point before a commit (a manifest, a WAL record): a
 * {@linkcode checkpoint} that always lets the event loop turn first, so a
 * signal that came in just before is seen.
 */
export async function beforeCommit(
  signal: AbortSignal | undefined,
  operation: string,
): Promise<void> {
  await checkpoint(signal, operation, { force: true });
}
