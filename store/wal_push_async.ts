/**
 * The foreground of `wal-push --async`: what PostgreSQL's `archive_command`
 * runs per WAL file when a background pusher (store/wal_push_daemon.ts)
 * does the pushing. It never touches the repository: it answers from the
 * spool's status files (store/wal_spool.ts), asks the pusher for the file,
 * starts the pusher when none runs, and waits for the file's status.
 *
 * The contract stays PostgreSQL's: success only once the file is durable in
 * the repository (an `.ok` is written after the record is; one from another
 * content under the name is not trusted, see
 * {@linkcode pushOkTrusted}); a failure is reported with the pusher's
 * one-line reason; a pusher that dies is started again; a wait that runs out
 * is a failure, and PostgreSQL runs the command again later.
 *
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BendsaveError, InvalidInput } from "./errors.ts";
import { unreadableWal } from "./wal_file_read.ts";
import { type CancelOptions, throwIfCancelled } from "./cancel.ts";
import { parseWalName } from "../formats/wal_name.ts";
import {
  ensureSpool,
  type PushOk,
  pushOkTrusted,
  type PushRequest,
  readSpoolJson,
  removeSpoolFile,
  sleep,
  type SpoolError,
  spoolLockHolder,
  writeSpoolFile,
} from "./wal_spool.ts";

/** How long the foreground waits for its file's status by default: 60 s. */
export const DEFAULT_ASYNC_PUSH_TIMEOUT_MS = 60_000;

/** The background pusher failed to archive the file (its reason), or did not answer in time. */
export class AsyncPushFailed extends BendsaveError {
  override readonly code = "wal_push_failed";
}

/** Options of {@linkcode pushWalAsync}. */
export interface AsyncPushOptions extends CancelOptions {
  /** The spool directory (status files, the pusher's lock). */
  readonly spool: string;
  /** The repository as the command names it (`--to`): statuses of another do not count. */
  readonly repository: string;
  /** Starts a background pusher (detached); called when none is running. */
  readonly startPusher: () => void;
  /** How long to wait for the file's status (default 60 s). */
  readonly timeoutMs?: number;
  /** How often to look for the status (default 5 ms). */
  readonly pollMs?: number;
}

/** What the foreground found. */
export interface AsyncPushResult {
  readonly name: string;
  /** `spooled`: an `.ok` was there already; `pushed`: the pusher archived it while this waited. */
  readonly status: "spooled" | "pushed";
  readonly size: number;
  readonly sha256: string;
  /** Background pushers this foreground started (0 when one was running). */
  readonly started: number;
  readonly durationMs: number;
}

/**
 * The default spool of `wal-push --async`: `bendsave-push/` beside the WAL
 * file, i.e. in `pg_wal/`, whose contents no base backup copies (bendsave's,
 * pg_basebackup's and pgBackRest's all leave them out).
 */
export function defaultPushSpool(file: string): string {
  return path.join(path.dirname(path.resolve(file)), "bendsave-push");
}

function failure(name: string, e: SpoolError): Error {
  const message = typeof e.message === "string" ? e.message : `pushing ${name} failed`;
  return e.exit === 2 ? new InvalidInput(message) : new AsyncPushFailed(message);
}

/**
 * Resolves once `file` is durable in the repository, as the background
 * pusher reports it; throws its failure (InvalidInput for bad input,
 * {@linkcode AsyncPushFailed} otherwise, and on timeout).
 */
export async function pushWalAsync(
  file: string,
  options: AsyncPushOptions,
): Promise<AsyncPushResult> {
  const started = Date.now();
  const name = path.basename(file);
  if (!parseWalName(name)) {
    throw new InvalidInput(
      `"${name}" is not a WAL file name (24 hex digits, <timeline>.history, <segment>.<offset>.backup or <segment>.partial): pass %p (and %f) as PostgreSQL gives them`,
    );
  }
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) throw unreadableWal(file, "ENOENT");
  const { spool } = options;
  ensureSpool(spool);
  const result = (status: AsyncPushResult["status"], ok: PushOk, n: number) => ({
    name,
    status,
    size: ok.size,
    sha256: ok.sha256,
    started: n,
    durationMs: Date.now() - started,
  });
  const okName = `${name}.ok`;
  const known = readSpoolJson<PushOk>(spool, okName);
  const mine = (ok: PushOk | null): ok is PushOk =>
    ok !== null && ok.name === name && ok.repository === options.repository;
  if (mine(known) && pushOkTrusted(known, abs)) return result("spooled", known, 0);
  // A stale status (another content, an earlier failure) must not answer this attempt.
  removeSpoolFile(spool, okName);
  removeSpoolFile(spool, `${name}.error`);
  writeSpoolFile(
    spool,
    `${name}.req`,
    JSON.stringify({ file: abs, repository: options.repository } satisfies PushRequest),
  );
  let starts = 0;
  /** Starts a pusher unless one of this repository runs; true when it started one. */
  const ensurePusher = () => {
    // A pusher of another repository (archive_command changed) ignores this
    // request and exits when idle; the next check starts this one's.
    if (spoolLockHolder(spool, "push")?.repository === options.repository) return false;
    options.startPusher();
    starts++;
    return true;
  };
  // A pusher just started takes its lock within 2 s; a running one is looked
  // at again every 250 ms (it may be exiting, idle, as this request arrived).
  const recheck = (fresh: boolean) => Date.now() + (fresh ? 2_000 : 250);
  let nextCheck = recheck(ensurePusher());
  const deadline = started + (options.timeoutMs ?? DEFAULT_ASYNC_PUSH_TIMEOUT_MS);
  const poll = options.pollMs ?? 5;
  for (;;) {
    throwIfCancelled(options.signal, "wal-push");
    const ok = readSpoolJson<PushOk>(spool, okName);
    if (mine(ok)) {
      if (pushOkTrusted(ok, abs)) return result("pushed", ok, starts);
      throw new AsyncPushFailed(
        `WAL file "${file}" changed while the background pusher archived it: PostgreSQL retries`,
      );
    }
    const err = readSpoolJson<SpoolError>(spool, `${name}.error`);
    if (err) throw failure(name, err);
    const now = Date.now();
    if (now > deadline) {
      throw new AsyncPushFailed(
        `the background pusher did not archive ${name} within ${
          Math.round((deadline - started) / 1000)
        } s (spool ${spool}): PostgreSQL retries; see --timeout, or push without --async to see why`,
      );
    }
    if (now > nextCheck) {
      // A pusher killed meanwhile (kill -9, a crash): start another. The request
      // is still there: the pusher removes it only after writing the status.
      nextCheck = recheck(ensurePusher());
    }
    await sleep(poll);
  }
}
