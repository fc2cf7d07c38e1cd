/**
 * A wrapper that retries the transient failures of a blob store (throttling,
 * overloaded servers, reset connections, truncated bodies) with exponential
 * backoff and full jitter, and reports each retry as an event.
 *
 * Permanent failures (`NotFound`, `AlreadyExists`, `AccessDenied`, a bad
 * name's `TypeError`...) are never retried: they are thrown at once.
 *
 * @module
 */
import { AlreadyExists, BendsaveError, NotFound, TransientError } from "../errors.ts";
import { equalBytes } from "../../formats/hash.ts";
import { describeHandle } from "./_layout.ts";
import { canListAfter } from "./list_after.ts";
import type {
  BlobStore,
  ByteRange,
  Capabilities,
  FileInfo,
  FileKind,
  Handle,
  SaveOptions,
} from "./types.ts";

/** A retry about to happen, as reported to {@linkcode RetryOptions.onRetry}. */
export interface RetryEvent {
  /** The attempt that failed, from 1. */
  readonly attempt: number;
  /** How long the wrapper waits before the next attempt. */
  readonly delayMs: number;
  /** The message of the error (driver messages never contain secrets). */
  readonly error: string;
  /** What was attempted, e.g. `save pack "ab12..."` or `list manifest`. */
  readonly operation: string;
}

/** Options of {@linkcode withRetry}. */
export interface RetryOptions {
  /** Attempts in all, the first included (default 5; 1 disables retries). */
  readonly attempts?: number;
  /** The backoff cap of the first retry in milliseconds (default 200); it doubles each retry. */
  readonly baseDelayMs?: number;
  /** The largest backoff cap in milliseconds (default 10 000). */
  readonly maxDelayMs?: number;
  /** Called before each retry (the engine turns these into warning events). */
  readonly onRetry?: (event: RetryEvent) => void;
  /** A source of uniform numbers in [0, 1) for the jitter (default `Math.random`). */
  readonly random?: () => number;
  /** Waits `ms` milliseconds (default a timer; tests pass a fake). */
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * The longest time in milliseconds one operation may spend retrying
   * (default 120 000): no retry starts when its wait would end later than
   * this after the first attempt, and the last error is thrown. A listing
   * that makes progress starts a fresh bound.
   */
  readonly totalMs?: number;
  /** The clock in milliseconds (default `Date.now`; tests pass a fake). */
  readonly now?: () => number;
}

const DEFAULT_ATTEMPTS = 5;
const DEFAULT_BASE_DELAY_MS = 200;
const DEFAULT_MAX_DELAY_MS = 10_000;
const DEFAULT_TOTAL_MS = 120_000;

/** Error codes of Node-style system errors that mean "try again". */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ECONNABORTED",
  "EAI_AGAIN",
]);

/**
 * True when `e` may go away on a new attempt: a {@linkcode TransientError},
 * or a system error such as `ECONNRESET`, `EPIPE` or `ETIMEDOUT`. Domain
 * errors, `TypeError` and `RangeError` are permanent.
 */
export function isTransient(e: unknown): boolean {
  if (e instanceof TransientError) return true;
  if (e instanceof BendsaveError || e instanceof TypeError || e instanceof RangeError) return false;
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && TRANSIENT_CODES.has(code);
}

/**
 * Wraps `inner` so that transient failures are retried up to `attempts`
 * times in all, waiting a uniformly random time between 0 and
 * `min(maxDelayMs, baseDelayMs * 2^(n-1))` before retry n ("full jitter").
 *
 * A listing that fails half-way resumes after the last name it yielded when
 * the inner store implements `listAfter` (only the failed page is asked for
 * again); otherwise it starts over and skips the names already yielded.
 *
 * A streamed save (`saveStream`, when `inner` has one) is passed through
 * without retries: its chunks cannot be read twice.
 *
 * An exclusive save whose earlier attempt failed transiently may have been
 * stored anyway (the reply was lost): when a retry then finds the name
 * taken, the stored bytes are compared with the saved ones and, when equal,
 * the save counts as done instead of failing with `AlreadyExists`.
 *
 * @example
 * ```ts
 * import { withRetry } from "./retry.ts";
 * import { MemStore } from "./mem.ts";
 *
 * const store = withRetry(new MemStore(), {
 *   onRetry: (e) => console.warn(`retrying ${e.operation} in ${e.delayMs} ms: ${e.error}`),
 * });
 * await store.save({ kind: "manifest", name: "m1" }, new Uint8Array([1]));
 * ```
 */
export function withRetry(inner: BlobStore, options: RetryOptions = {}): BlobStore {
  return new RetryingStore(inner, options);
}

/**
 * Runs `fn`, retrying its transient failures as {@linkcode withRetry} does
 * (same options, same `onRetry` reports): for requests made before a store
 * exists to wrap, such as the checks a driver's `open` makes.
 *
 * @example
 * ```ts
 * import { retryTransient } from "./retry.ts";
 * const answer = await retryTransient("ping", () => Promise.resolve(42), { attempts: 3 });
 * ```
 */
export function retryTransient<T>(
  operation: string,
  fn: () => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  return new RetryPolicy(options).run(operation, fn);
}

/** Validated retry options, and the retry loop shared by the wrapper and `retryTransient`. */
class RetryPolicy {
  readonly attempts: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #totalMs: number;
  readonly #onRetry: ((event: RetryEvent) => void) | undefined;
  readonly #random: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly now: () => number;

  constructor(options: RetryOptions) {
    const attempts = options.attempts ?? DEFAULT_ATTEMPTS;
    const base = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
    const max = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    const total = options.totalMs ?? DEFAULT_TOTAL_MS;
    if (!Number.isSafeInteger(attempts) || attempts < 1) {
      throw new RangeError(`retry attempts ${attempts} is invalid: use a positive integer`);
    }
    if (!(base >= 0) || !(max >= 0) || !Number.isFinite(base) || !Number.isFinite(max)) {
      throw new RangeError(
        `retry delays ${base} and ${max} ms are invalid: use non-negative numbers`,
      );
    }
    if (!(total > 0)) {
      throw new RangeError(`retry total time ${total} ms is invalid: use a positive number`);
    }
    this.attempts = attempts;
    this.#baseDelayMs = base;
    this.#maxDelayMs = max;
    this.#totalMs = total;
    this.#onRetry = options.onRetry;
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ??
      ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.now = options.now ?? Date.now;
  }

  async run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const start = this.now();
    for (let attempt = 1;; attempt++) {
      try {
        return await fn();
      } catch (e) {
        await this.pauseOrThrow(attempt, start, e, operation);
      }
    }
  }

  /**
   * After failed attempt `attempt` of an operation begun at `start`: throws
   * `error` when it is permanent or the attempts or the time are used up,
   * else reports the retry and waits.
   */
  async pauseOrThrow(
    attempt: number,
    start: number,
    error: unknown,
    operation: string,
  ): Promise<void> {
    if (!isTransient(error) || attempt >= this.attempts) throw error;
    const cap = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** (attempt - 1));
    const delayMs = Math.floor(Math.min(Math.max(this.#random(), 0), 1) * cap);
    if (this.now() + delayMs - start >= this.#totalMs) throw error;
    this.#onRetry?.({
      attempt,
      delayMs,
      error: error instanceof Error ? error.message : String(error),
      operation,
    });
    await this.#sleep(delayMs);
  }
}

class RetryingStore implements BlobStore {
  readonly #inner: BlobStore;
  readonly #policy: RetryPolicy;
  /**
   * The inner store's streamed save, when it has one, passed through as it
   * is: a stream cannot be read twice, so it is not retried here (the S3
   * driver retries each part it holds, with the options given to its `open`).
   */
  readonly saveStream?: (
    h: Handle,
    chunks: AsyncIterable<Uint8Array>,
    size: number,
    options?: SaveOptions,
  ) => Promise<void>;

  constructor(inner: BlobStore, options: RetryOptions) {
    this.#inner = inner;
    this.#policy = new RetryPolicy(options);
    if (inner.saveStream !== undefined) {
      this.saveStream = (h, chunks, size, saveOptions) =>
        inner.saveStream!(h, chunks, size, saveOptions);
    }
  }

  get capabilities(): Capabilities {
    return this.#inner.capabilities;
  }

  get location(): string {
    return this.#inner.location;
  }

  async save(h: Handle, data: Uint8Array, options: SaveOptions = {}): Promise<void> {
    let failedTransiently = false;
    try {
      await this.#retry(`save ${describeHandle(h)}`, async () => {
        try {
          await this.#inner.save(h, data, options);
        } catch (e) {
          if (isTransient(e)) failedTransiently = true;
          throw e;
        }
      });
    } catch (e) {
      if (!(e instanceof AlreadyExists) || options.exclusive !== true || !failedTransiently) {
        throw e;
      }
      // An earlier attempt may have landed before its reply was lost.
      let stored: Uint8Array;
      try {
        stored = await this.load(h);
      } catch (loadError) {
        if (loadError instanceof NotFound) throw e;
        throw loadError;
      }
      if (!equalBytes(stored, data)) throw e;
    }
  }

  load(h: Handle, range?: ByteRange): Promise<Uint8Array> {
    return this.#retry(`load ${describeHandle(h)}`, () => this.#inner.load(h, range));
  }

  stat(h: Handle): Promise<FileInfo> {
    return this.#retry(`stat ${describeHandle(h)}`, () => this.#inner.stat(h));
  }

  remove(h: Handle): Promise<void> {
    return this.#retry(`remove ${describeHandle(h)}`, () => this.#inner.remove(h));
  }

  async *list(kind: FileKind): AsyncIterable<FileInfo> {
    const inner = this.#inner;
    const resumable = canListAfter(inner) ? inner : null;
    // Without listAfter a listing restarts from the beginning: skip what was yielded.
    const yielded = resumable ? null : new Set<string>();
    let after: string | null = null;
    let failures = 0;
    let start = this.#policy.now();
    for (;;) {
      const source: AsyncIterable<FileInfo> = resumable && after !== null
        ? resumable.listAfter(kind, after)
        : inner.list(kind);
      const it: AsyncIterator<FileInfo> = source[Symbol.asyncIterator]();
      let done = false;
      try {
        for (;;) {
          let next: IteratorResult<FileInfo>;
          try {
            next = await it.next();
          } catch (e) {
            done = true; // a generator that threw is finished
            failures++;
            await this.#policy.pauseOrThrow(failures, start, e, `list ${kind}`);
            break;
          }
          if (next.done) {
            done = true;
            return;
          }
          // Progress: the next failure gets a fresh budget of attempts and time.
          failures = 0;
          start = this.#policy.now();
          const info: FileInfo = next.value;
          if (yielded) {
            if (yielded.has(info.name)) continue;
            yielded.add(info.name);
          }
          after = info.name;
          yield info;
        }
      } finally {
        if (!done) await it.return?.();
      }
    }
  }

  close(): Promise<void> {
    return this.#inner.close?.() ?? Promise.resolve();
  }

  #retry<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return this.#policy.run(operation, fn);
  }
}
