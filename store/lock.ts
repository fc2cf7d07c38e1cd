/**
 * Repository locks (FORMAT.md, "Locks"): a small JSON file per holder in
 * `locks/`. Backups take a shared lock, vacuum and repair an exclusive one.
 * A lock is stale when its process is gone (same host) or when it has not
 * been refreshed for {@linkcode STALE_AFTER_MS}; stale locks are removed
 * and reported.
 *
 * @module
 */
import { hostname } from "node:os";
import process from "node:process";
import { randomBytes } from "node:crypto";
import type { BlobStore } from "./drivers/types.ts";
import { AccessDenied, LockedError, NotFound, ReadOnlyError } from "./errors.ts";
import { throwIfCancelled } from "./cancel.ts";

/** A lock is refreshed this often while held. */
export const REFRESH_MS = 5 * 60 * 1000;
/** A lock not refreshed for this long is stale (six missed refreshes). */
export const STALE_AFTER_MS = 30 * 60 * 1000;
/**
 * A lock refreshed more than this far in the future is stale: no clock is
 * that wrong on a host that is still running. (Nearer future times are
 * trusted as a clock difference between hosts, and go stale once they are
 * {@linkcode STALE_AFTER_MS} in the past.)
 */
export const FUTURE_STALE_MS = 24 * 60 * 60 * 1000;

/** How long a WAL push or fetch waits for a running vacuum by default: 60 s. */
export const DEFAULT_WAL_LOCK_WAIT_MS = 60_000;

/** The content of a lock file. */
export interface LockInfo {
  readonly kind: "shared" | "exclusive";
  readonly operation: string;
  readonly host: string;
  readonly pid: number;
  /** When taken, RFC 3339. */
  readonly time: string;
  /** When last refreshed, RFC 3339. */
  readonly refreshed: string;
}

/** Why a lock was judged stale. */
export interface StaleLock {
  readonly name: string;
  readonly info: LockInfo | null;
  readonly reason: string;
  /** False when the lock was left in place (a dry run). */
  readonly removed?: boolean;
}

/** True when process `pid` exists on this host (signal 0; EPERM counts as alive). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: existence check only, nothing is delivered
    return true;
  } catch (e) {
    return (e as { code?: string }).code !== "ESRCH";
  }
}

/** Decides whether a lock is stale; returns the reason or null. */
export function staleReason(info: LockInfo, now: number, host = hostname()): string | null {
  const refreshed = Date.parse(info.refreshed);
  if (info.host === host && info.pid !== process.pid && !isAlive(info.pid)) {
    return `process ${info.pid} on ${info.host} is no longer running`;
  }
  if (Number.isFinite(refreshed) && refreshed - now > FUTURE_STALE_MS) {
    return `its refresh time ${info.refreshed} is more than ${
      FUTURE_STALE_MS / 3_600_000
    } hours in the future, so the clock of ${info.host} was wrong when it was written`;
  }
  if (!Number.isFinite(refreshed) || now - refreshed > STALE_AFTER_MS) {
    return `it was last refreshed at ${info.refreshed}, more than ${
      STALE_AFTER_MS / 60000
    } minutes ago`;
  }
  return null;
}

function parseLock(bytes: Uint8Array): LockInfo | null {
  try {
    const j = JSON.parse(new TextDecoder().decode(bytes));
    if ((j.kind === "shared" || j.kind === "exclusive") && typeof j.pid === "number") return j;
  } catch {
    // a damaged lock file is treated as stale below
  }
  return null;
}

/** A stale-lock callback that reports the removal as a warning event. */
export function reportStale(
  warn: (e: { type: "warning"; message: string }) => void,
): (s: StaleLock) => void {
  return (s) =>
    warn({
      type: "warning",
      message: s.removed === false
        ? `stale lock ${s.name} left in place (dry run; a real run removes it): ${s.reason}`
        : `removed stale lock ${s.name}: ${s.reason}`,
    });
}

/** A held lock; call `release` when done. */
export class RepositoryLock {
  readonly #store: BlobStore;
  readonly #name: string;
  #info: LockInfo;
  #timer: ReturnType<typeof setInterval> | undefined;

  private constructor(store: BlobStore, name: string, info: LockInfo) {
    this.#store = store;
    this.#name = name;
    this.#info = info;
    const timer = setInterval(() => void this.refresh().catch(() => {}), REFRESH_MS);
    (timer as unknown as { unref?: () => void }).unref?.();
    this.#timer = timer;
  }

  /** The lock file name. */
  get name(): string {
    return this.#name;
  }

  /**
   * Takes a lock. Removes stale locks (reported through `onStale`) and
   * throws LockedError when a live conflicting lock exists.
   */
  static async acquire(
    store: BlobStore,
    kind: "shared" | "exclusive",
    options: {
      operation: string;
      onStale?: (s: StaleLock) => void;
      now?: () => number;
      /** Wait up to this long for a conflicting lock to go away (default 0: fail at once). */
      waitMs?: number;
      /** Called once when the lock has to be waited for. */
      onWait?: (message: string) => void;
      /** Stops the wait for a conflicting lock with `Cancelled` when it aborts. */
      signal?: AbortSignal | undefined;
      /**
       * Leave stale locks in place (a dry run changes nothing): they are
       * still reported through `onStale` and do not block.
       */
      keepStale?: boolean;
    },
  ): Promise<RepositoryLock> {
    const now = options.now ?? Date.now;
    const deadline = Date.now() + (options.waitMs ?? 0);
    for (let waited = false;; waited = true) {
      throwIfCancelled(options.signal, options.operation);
      try {
        return await RepositoryLock.#tryAcquire(store, kind, options, now);
      } catch (e) {
        if (!(e instanceof LockedError) || Date.now() >= deadline) throw e;
        if (!waited) {
          options.onWait?.(`${e.message.replace(/: wait for it.*$/, "")}; waiting for it`);
        }
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            options.signal?.removeEventListener("abort", done);
            resolve();
          };
          const timer = setTimeout(done, Math.min(2000, Math.max(50, deadline - Date.now())));
          options.signal?.addEventListener("abort", done, { once: true });
        });
      }
    }
  }

  static async #tryAcquire(
    store: BlobStore,
    kind: "shared" | "exclusive",
    options: { operation: string; onStale?: (s: StaleLock) => void; keepStale?: boolean },
    now: () => number,
  ): Promise<RepositoryLock> {
    const remove = options.keepStale !== true;
    await checkConflicts(store, kind, null, now(), options.onStale, remove);
    const name = `${randomBytes(16).toString("hex")}.lock`;
    const time = new Date(now()).toISOString();
    const info: LockInfo = {
      kind,
      operation: options.operation,
      host: hostname(),
      pid: process.pid,
      time,
      refreshed: time,
    };
    try {
      await store.save({ kind: "lock", name }, new TextEncoder().encode(JSON.stringify(info)), {
        exclusive: true,
      });
    } catch (e) {
      throw readOnlyMedia(e, store, options.operation) ?? e;
    }
    try {
      // Another process may have written its lock between our check and our write.
      await checkConflicts(store, kind, name, now(), options.onStale, remove);
    } catch (e) {
      await store.remove({ kind: "lock", name });
      throw e;
    }
    return new RepositoryLock(store, name, info);
  }

  /** Rewrites the lock with a new refresh time. */
  async refresh(): Promise<void> {
    this.#info = { ...this.#info, refreshed: new Date().toISOString() };
    await this.#store.save(
      { kind: "lock", name: this.#name },
      new TextEncoder().encode(JSON.stringify(this.#info)),
    );
  }

  /** Removes the lock. */
  async release(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#store.remove({ kind: "lock", name: this.#name });
  }
}

/**
 * The error for a lock that cannot be written into a local repository on
 * read-only media (or a directory this user may not write), pointing to
 * `staged:`, the read-only way to open it; null for any other failure.
 */
function readOnlyMedia(e: unknown, store: BlobStore, operation: string): Error | null {
  if (store.capabilities.name !== "fs") return null; // S3's 403 has its own message
  const why = e instanceof ReadOnlyError
    ? "is on read-only media"
    : e instanceof AccessDenied
    ? "cannot be written by this user"
    : null;
  if (why === null) return null;
  const Class = e instanceof ReadOnlyError ? ReadOnlyError : AccessDenied;
  return new Class(
    `repository "${store.location}" ${why}, so ${operation} cannot write its lock file: make it writable, or to restore, verify or copy from it read-only, give it as staged:${store.location}`,
    { cause: e },
  );
}

async function checkConflicts(
  store: BlobStore,
  kind: "shared" | "exclusive",
  own: string | null,
  now: number,
  onStale?: (s: StaleLock) => void,
  removeStale = true,
): Promise<void> {
  for await (const f of store.list("lock")) {
    if (f.name === own) continue;
    let info: LockInfo | null;
    try {
      info = parseLock(await store.load({ kind: "lock", name: f.name }));
    } catch (e) {
      if (e instanceof NotFound) continue; // released meanwhile
      throw e;
    }
    const reason = info ? staleReason(info, now) : "the lock file is damaged";
    if (reason) {
      onStale?.({ name: f.name, info, reason, removed: removeStale });
      if (removeStale) await store.remove({ kind: "lock", name: f.name });
      continue;
    }
    if (kind === "exclusive" || info!.kind === "exclusive") {
      throw new LockedError(
        `repository is locked by ${info!.operation} (${info!.kind} lock, process ${info!.pid} on ${
          info!.host
        }, since ${info!.time}): wait for it to finish and run again`,
      );
    }
  }
}

/**
 * Runs `fn` under a lock of `kind`; a read-only store (tape-staged files)
 * cannot hold locks and runs `fn` without one.
 */
export async function withLock<T>(
  store: BlobStore,
  kind: "shared" | "exclusive",
  operation: string,
  onStale: ((s: StaleLock) => void) | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  if (!store.capabilities.writable) return await fn();
  const lock = await RepositoryLock.acquire(store, kind, {
    operation,
    ...(onStale ? { onStale } : {}),
  });
  try {
    return await fn();
  } finally {
    await lock.release().catch(() => {});
  }
}
