/**
 * Exit codes, and the one place where error classes map to them.
 *
 * | code | meaning |
 * |---|---|
 * | 0 | success |
 * | 1 | failure (damage found, locked, storage error, disk full, internal error) |
 * | 2 | usage error or bad input (unknown flag, missing source, not a repository, newer format) |
 * | 3 | backup finished but some source files could not be read (manifest written, marked incomplete) |
 * | 4 | encrypted repository: no passphrase given, or the passphrase opens none of its key files (nothing written) |
 * | 126 | wal-fetch failed for another reason than "not in the archive" (damage, storage): PostgreSQL stops recovery |
 * | 130 | cancelled (SIGINT, SIGTERM): stopped at a safe point, locks released, temporary files removed |
 *
 * @module
 */
import {
  BendsaveError,
  Cancelled,
  InvalidInput,
  PassphraseError,
  RepositoryNotFound,
  UnsupportedFormat,
} from "../store/errors.ts";

/** The documented exit codes. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  partial: 3,
  passphrase: 4,
  stopRecovery: 126,
  cancelled: 130,
} as const;
/** An exit code. */
export type ExitCode = typeof ExitCode[keyof typeof ExitCode];

/** A wrong command line (unknown flag, missing argument). */
export class UsageError extends BendsaveError {
  override readonly code = "usage";
}

/**
 * A `restore_command` failure that must stop PostgreSQL's recovery: damage,
 * an unreachable repository, a lock held too long. PostgreSQL takes any exit
 * code up to 125 as "the file is not archived" and may end recovery early,
 * short of the target; from 126 on it stops with an error instead.
 */
export class StopRecovery extends BendsaveError {
  override readonly code = "stop_recovery";
}

/** The exit code for an error, and whether it is an internal bug (print a stack). */
export function classify(e: unknown): { code: ExitCode; bug: boolean } {
  if (e instanceof Cancelled) return { code: ExitCode.cancelled, bug: false };
  if (e instanceof StopRecovery) return { code: ExitCode.stopRecovery, bug: false };
  if (e instanceof UsageError || e instanceof InvalidInput || e instanceof RepositoryNotFound) {
    return { code: ExitCode.usage, bug: false };
  }
  if (e instanceof UnsupportedFormat) return { code: ExitCode.usage, bug: false };
  if (e instanceof PassphraseError) return { code: ExitCode.passphrase, bug: false };
  if (e instanceof BendsaveError) return { code: ExitCode.failure, bug: false };
  if ((e as { code?: string })?.code?.startsWith?.("ERR_PARSE_ARGS")) {
    return { code: ExitCode.usage, bug: false };
  }
  return { code: ExitCode.failure, bug: true };
}
