/**
 * The background prefetcher of `wal-fetch --prefetch N`: one long-lived
 * process per spool directory (its lock, store/wal_spool.ts) that keeps
 * the N segments after the one PostgreSQL last asked for (`<wal>.want`), on
 * the same timeline, fetched into the spool: each through
 * {@linkcode fetchWal} (every block and the file's SHA-256 checked against
 * the archive record, written under a temporary name and renamed), then its
 * `.meta` (size and SHA-256) for the foreground to check again when it
 * serves it. The window stops at the first segment the archive does not
 * hold (the end of the archive, or a timeline switch). Segments before the
 * newest want are removed; PostgreSQL's recovery moves forward only.
 *
 * It exits after being idle a few seconds, or as soon as the server is no
 * longer in recovery (neither `recovery.signal` nor `standby.signal` in the
 * data directory), and then empties the spool. Killed at any point, it leaves at
 * most a temporary file (removed after a minute) or a segment without its
 * `.meta`, which is never served.
 *
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { BlobStore } from "./drivers/types.ts";
import type { CancelOptions } from "./cancel.ts";
import { PassphraseError } from "./errors.ts";
import {
  fetchWal,
  type FetchWalOptions,
  type FetchWalResult,
  WalNotArchived,
} from "./wal_archive.ts";
import { checkSegmentSize, parseWalName, walSegmentName } from "../formats/wal_name.ts";
import type { FetchWant } from "./wal_prefetch.ts";
import {
  acquireSpoolLock,
  ensureSpool,
  fileIdentity,
  inRecovery,
  readSpoolJson,
  removeSpoolFile,
  removeStaleTemps,
  sleep,
  SPOOL_HEARTBEAT_MS,
  type SpoolMeta,
  spoolNames,
  writeSpoolFile,
} from "./wal_spool.ts";

/** Options of {@linkcode runPrefetchDaemon}. */
export interface PrefetchDaemonOptions extends CancelOptions {
  readonly spool: string;
  /** The repository as the command named it: wants of another are ignored. */
  readonly repository: string;
  /** Opens the repository (once per run). */
  readonly open: () => Promise<BlobStore>;
  /** The fetch's options (system identifier, data directory, lock wait). */
  readonly fetch?: Omit<FetchWalOptions, "signal" | "onEvent">;
  /** Segments kept fetched ahead of the newest want (default 8). */
  readonly prefetch?: number;
  /** Fetches at once (default 2). */
  readonly lanes?: number;
  /** Exit after this long without a new want or work (default 5 s). */
  readonly idleMs?: number;
  /** The data directory, to tell whether recovery has ended (default: the working directory). */
  readonly pgData?: string;
  /** The exit code an error maps to, recorded in `.fetch-error`. */
  readonly exitCodeOf: (e: unknown) => number;
}

/** What a prefetcher's run did. */
export interface PrefetchDaemonResult {
  readonly ran: boolean;
  readonly fetched: number;
  readonly missing: number;
  readonly failed: number;
}

function validSegmentSize(n: number): boolean {
  try {
    checkSegmentSize(n);
    return true;
  } catch {
    return false;
  }
}

/** PostgreSQL's default WAL segment size. */
const DEFAULT_SEGMENT_SIZE = 16 << 20;

/** The suffixes of the prefetcher's files beside a segment's own name. */
const SPOOL_SUFFIX = /\.(meta|missing|fetch-error|want)$/;

/** A segment's position in the WAL stream, comparable as a string across segment sizes. */
function position(name: string): string {
  return name.slice(8, 24);
}

/** Removes every spooled segment and the prefetcher's files (not the lock). */
export function emptyFetchSpool(spool: string): void {
  for (const f of fs.readdirSync(spool)) {
    const base = f.replace(SPOOL_SUFFIX, "");
    if (parseWalName(base)) removeSpoolFile(spool, f);
  }
}

/**
 * Fetches WAL file `name` into `spool` with the `.meta` the foreground
 * checks before it serves the file (the prefetcher's fetch of each segment
 * ahead; `restore --as-of` seeds a restored server's spool with it).
 * `repository` is the repository as `wal-fetch --from` names it.
 */
export async function fetchIntoSpool(
  store: BlobStore,
  spool: string,
  name: string,
  repository: string,
  options: FetchWalOptions = {},
): Promise<FetchWalResult> {
  const file = path.join(spool, name);
  const r = await fetchWal(store, name, file, options);
  const meta: SpoolMeta = {
    name,
    repository,
    systemId: r.systemId,
    size: r.size,
    sha256: r.sha256,
    identity: fileIdentity(file),
  };
  writeSpoolFile(spool, `${name}.meta`, JSON.stringify(meta));
  return r;
}

/** Runs the background prefetcher until it is idle; see the module documentation. */
export async function runPrefetchDaemon(
  options: PrefetchDaemonOptions,
): Promise<PrefetchDaemonResult> {
  const { spool } = options;
  ensureSpool(spool);
  const lock = acquireSpoolLock(spool, "fetch", options.repository);
  if (!lock) return { ran: false, fetched: 0, missing: 0, failed: 0 };
  const heartbeat = setInterval(() => lock.touch(), SPOOL_HEARTBEAT_MS);
  const ahead = options.prefetch ?? 8;
  const lanes = Math.max(1, options.lanes ?? 2);
  const idleMs = options.idleMs ?? 5_000;
  let store: BlobStore | null = null;
  // PostgreSQL's default until a fetched segment tells: a wrong guess only
  // names segments the archive does not hold, which ends the window early.
  let segmentSize = DEFAULT_SEGMENT_SIZE;
  let sizeKnown = false;
  let fetched = 0;
  let missingCount = 0;
  let failed = 0;
  let lastWork = Date.now();
  let newestAt = 0;
  let start: { name: string; served: boolean } | null = null;
  /** Names not to fetch again until wanted: fetched this run, missing, or failed. */
  const settled = new Set<string>();
  /** The passphrase does not open the repository (or none was given): every fetch would fail so. */
  let keyFailed = false;
  const inFlight = new Set<string>();

  const fetchOne = async (name: string) => {
    try {
      store ??= await options.open();
      const r = await fetchIntoSpool(store, spool, name, options.repository, {
        ...(options.fetch ?? {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (!sizeKnown && validSegmentSize(r.size)) {
        segmentSize = r.size;
        sizeKnown = true;
      }
      fetched++;
      return true;
    } catch (e) {
      if (e instanceof WalNotArchived) {
        missingCount++;
        writeSpoolFile(spool, `${name}.missing`, "");
      } else {
        failed++;
        if (e instanceof PassphraseError) keyFailed = true;
        writeSpoolFile(
          spool,
          `${name}.fetch-error`,
          JSON.stringify({
            exit: options.exitCodeOf(e),
            message: String((e as Error)?.message ?? e).split("\n")[0],
          }),
        );
      }
      return false;
    } finally {
      settled.add(name);
    }
  };

  let nextRecoveryCheck = 0;
  try {
    while (!options.signal?.aborted) {
      if (Date.now() > nextRecoveryCheck) {
        // Recovery over (the server promoted): nothing more will be asked for.
        if (!inRecovery(options.pgData ?? ".")) break;
        nextRecoveryCheck = Date.now() + 200;
      }
      let wants: string[];
      try {
        wants = spoolNames(spool, ".want");
        removeStaleTemps(spool);
      } catch {
        break; // the spool was removed
      }
      const now = Date.now();
      for (const name of wants) {
        const w = readSpoolJson<FetchWant>(spool, `${name}.want`);
        if (!w || w.repository !== options.repository || parseWalName(name)?.type !== "segment") {
          continue;
        }
        if (now - w.at > 60_000) removeSpoolFile(spool, `${name}.want`);
        if (w.at <= newestAt) continue;
        newestAt = w.at;
        start = { name, served: w.served };
        if (!sizeKnown && typeof w.size === "number" && validSegmentSize(w.size)) {
          segmentSize = w.size;
          sizeKnown = true;
        }
        if (!w.served) settled.delete(name);
        lastWork = now;
      }
      if (start === null) {
        if (Date.now() - lastWork > idleMs) break;
        await sleep(10);
        continue;
      }
      // Segments before the newest want are never asked for again.
      const from = position(start.name);
      for (const f of fs.readdirSync(spool)) {
        const base = f.replace(SPOOL_SUFFIX, "");
        if (parseWalName(base)?.type === "segment" && position(base) < from) {
          removeSpoolFile(spool, f);
          settled.delete(base);
        }
      }
      const window: string[] = [];
      const first = parseWalName(start.name)!;
      if (!start.served) window.push(start.name);
      const perLog = BigInt(0x1_0000_0000 / segmentSize);
      const segno = BigInt(first.log) * perLog + BigInt(first.seg);
      for (let i = 1; i <= ahead; i++) {
        window.push(walSegmentName(first.timeline, segno + BigInt(i), segmentSize));
      }
      const todo: string[] = [];
      for (const name of window) {
        if (settled.has(name)) {
          if (fs.existsSync(path.join(spool, `${name}.missing`))) break; // the end of the archive
          continue;
        }
        if (inFlight.has(name) || fs.existsSync(path.join(spool, `${name}.meta`))) continue;
        todo.push(name);
      }
      if (todo.length === 0) {
        if (Date.now() - lastWork > idleMs) break;
        await sleep(10);
        continue;
      }
      let next = 0;
      let stop = false;
      const lane = async () => {
        while (next < todo.length && !stop) {
          const name = todo[next++]!;
          inFlight.add(name);
          try {
            if (!(await fetchOne(name))) stop = true; // missing or failed: nothing after it
          } finally {
            inFlight.delete(name);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(lanes, todo.length) }, lane));
      lastWork = Date.now();
      // The repository cannot be opened, or not unlocked: reported, stop.
      if (store === null || keyFailed) break;
    }
  } finally {
    clearInterval(heartbeat);
    await (store as BlobStore | null)?.close?.();
    try {
      if (!inRecovery(options.pgData ?? ".")) emptyFetchSpool(spool);
    } catch {
      // the spool or data directory is gone
    }
    lock.release();
  }
  return { ran: true, fetched, missing: missingCount, failed };
}
