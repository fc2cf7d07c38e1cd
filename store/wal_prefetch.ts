/**
 * The foreground of `wal-fetch --prefetch N`: what PostgreSQL's
 * `restore_command` runs per WAL file when a background prefetcher
 * (store/wal_prefetch_daemon.ts) fetches the next segments ahead into a
 * spool directory (store/wal_spool.ts). A segment that is spooled, and
 * whose size and SHA-256 are the ones its `.meta` recorded from the archive
 * record, is moved into place; anything else (a history file, a spool
 * miss the prefetcher reports as missing or failed, a wait that runs out)
 * is left to the ordinary fetch, which gives PostgreSQL the exact answer
 * ("not archived", or a failure that stops recovery).
 *
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { controlFileSystemId, parseWalName } from "../formats/wal_name.ts";
import {
  ensureSpool,
  inRecovery,
  removeSpoolFile,
  serveFromSpool,
  sleep,
  spoolLockHolder,
  writeSpoolFile,
} from "./wal_spool.ts";

/** How long the foreground waits for the prefetcher before fetching itself: 60 s. */
export const DEFAULT_PREFETCH_WAIT_MS = 60_000;

/** `<wal>.want`: PostgreSQL asked for this segment. */
export interface FetchWant {
  /** When asked (ms since the epoch): the newest want is where the window starts. */
  readonly at: number;
  readonly repository: string;
  /** True when it was served from the spool, or its foreground fetches it: the window starts after it. */
  readonly served: boolean;
  /** When served: its size (the segment size), so a new prefetcher need not fetch it to know. */
  readonly size?: number;
}

/** Options of {@linkcode fetchWalPrefetched}. */
export interface PrefetchOptions {
  readonly spool: string;
  /** The repository as the command names it (`--from`): spooled files of another are not served. */
  readonly repository: string;
  /** The system identifier when known (pg_control, --system-id): spooled files of another are not served. */
  readonly systemId: string | null;
  /** Starts a background prefetcher (detached); called when none is running. */
  readonly startPrefetcher: () => void;
  /** How long to wait for the prefetcher (default 60 s). */
  readonly waitMs?: number;
  /** How often to look (default 5 ms). */
  readonly pollMs?: number;
  /** The data directory being recovered (default: the working directory, as PostgreSQL runs it). */
  readonly pgData?: string;
}

/**
 * The default spool of `wal-fetch --prefetch`: `bendsave-prefetch/` beside
 * the destination, i.e. in `pg_wal/` of the server in recovery (`%p` is
 * `pg_wal/RECOVERYXLOG`), whose contents no base backup copies.
 */
export function defaultFetchSpool(dest: string): string {
  return path.join(path.dirname(path.resolve(dest)), "bendsave-prefetch");
}

/**
 * The system identifier in `<pgData or cwd>/global/pg_control`, or null when
 * it cannot be read (the ordinary fetch reports why, if it matters).
 */
export function controlSystemIdOrNull(pgData?: string): string | null {
  try {
    return controlFileSystemId(fs.readFileSync(path.join(pgData ?? ".", "global", "pg_control")));
  } catch {
    return null;
  }
}

/**
 * Moves WAL segment `name` from the spool to `dest` (fetched ahead by the
 * prefetcher, which is told where PostgreSQL is). Returns false when the
 * caller must fetch it itself: not a segment, a spool that cannot be used,
 * no prefetcher running (this starts one for the segments after it), or the
 * prefetcher found it missing or failed, or did not bring it within the wait.
 */
export async function fetchWalPrefetched(
  name: string,
  dest: string,
  options: PrefetchOptions,
): Promise<boolean> {
  if (parseWalName(name)?.type !== "segment") return false; // history files: always asked fresh
  const { spool } = options;
  const expect = { repository: options.repository, systemId: options.systemId };
  const want = (served: boolean, size?: number) =>
    writeSpoolFile(
      spool,
      `${name}.want`,
      JSON.stringify(
        {
          at: Date.now(),
          repository: options.repository,
          served,
          ...(size ? { size } : {}),
        } satisfies FetchWant,
      ),
    );
  /** Starts a prefetcher unless one of this repository runs; true when it started one. */
  const ensurePrefetcher = () => {
    if (spoolLockHolder(spool, "fetch")?.repository === options.repository) return false;
    options.startPrefetcher();
    return true;
  };
  // As the push's foreground: 2 s after a start, else every 250 ms.
  const recheck = (fresh: boolean) => Date.now() + (fresh ? 2_000 : 250);
  try {
    ensureSpool(spool);
    removeSpoolFile(spool, `${name}.missing`);
    removeSpoolFile(spool, `${name}.fetch-error`);
    const meta = serveFromSpool(spool, name, dest, expect);
    if (meta) {
      want(true, meta.size);
      ensurePrefetcher();
      return true;
    }
    if (spoolLockHolder(spool, "fetch")?.repository !== options.repository) {
      // No prefetcher: start one for the segments after this one, and fetch
      // this one here at once rather than wait for the new process to.
      want(true);
      options.startPrefetcher();
      return false;
    }
    want(false);
  } catch {
    return false; // the spool is unusable: fetch directly
  }
  const started = Date.now();
  const deadline = started + (options.waitMs ?? DEFAULT_PREFETCH_WAIT_MS);
  let nextCheck = recheck(false);
  for (;;) {
    await sleep(options.pollMs ?? 5);
    try {
      if (serveFromSpool(spool, name, dest, expect)) return true;
      if (
        fs.existsSync(path.join(spool, `${name}.missing`)) ||
        fs.existsSync(path.join(spool, `${name}.fetch-error`))
      ) {
        return false;
      }
      const now = Date.now();
      if (now > deadline) return false;
      if (now > nextCheck) {
        // Recovery is ending (PostgreSQL asks for the last segment again after it removed
        // recovery.signal): a prefetcher stops at once then, so it is fetched here.
        if (!inRecovery(options.pgData ?? ".")) return false;
        nextCheck = recheck(ensurePrefetcher()); // one killed or idled out meanwhile
      }
    } catch {
      return false;
    }
  }
}
