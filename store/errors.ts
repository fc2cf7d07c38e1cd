/**
 * Domain errors that callers are expected to react to. Messages are one
 * sentence: what failed, the offending value, and what to do. They never
 * contain secrets.
 *
 * @module
 */

/** Base class of every bendsave domain error. */
export class BendsaveError extends Error {
  /** Stable machine-readable code, used in `--json` output. */
  readonly code: string = "error";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An object the caller asked for does not exist in a store. */
export class NotFound extends BendsaveError {
  override readonly code = "not_found";
}

/** An exclusive create found the name taken. */
export class AlreadyExists extends BendsaveError {
  override readonly code = "already_exists";
}

/** A write was attempted on a read-only store (for example tape-staged files). */
export class ReadOnlyError extends BendsaveError {
  override readonly code = "read_only";
}

/** The storage ran out of space. */
export class StorageFull extends BendsaveError {
  override readonly code = "storage_full";
}

/** The storage refused access (permissions, credentials). */
export class AccessDenied extends BendsaveError {
  override readonly code = "access_denied";
}

/** There is no repository at the given location. */
export class RepositoryNotFound extends BendsaveError {
  override readonly code = "repository_not_found";
}

/** The repository (or one of its files) was written by a newer, incompatible format. */
export class UnsupportedFormat extends BendsaveError {
  override readonly code = "unsupported_format";
}

/** Stored bytes do not match their id or cannot be decoded: damage. */
export class IntegrityError extends BendsaveError {
  override readonly code = "integrity";
}

/** Another process holds a conflicting lock. */
export class LockedError extends BendsaveError {
  override readonly code = "locked";
}

/** Input that cannot be used (a missing source, a file where a directory was expected...). */
export class InvalidInput extends BendsaveError {
  override readonly code = "invalid_input";
}

/**
 * Packs an operation needs are not in the store: not yet staged back from
 * tape, or lost. `packs` names every one of them.
 */
export class MissingPacks extends BendsaveError {
  override readonly code = "missing_packs";
  /** The names of the missing packs, sorted. */
  readonly packs: readonly string[];
  constructor(message: string, packs: readonly string[], options?: ErrorOptions) {
    super(message, options);
    this.packs = [...packs].sort();
  }
}

/**
 * A failure that may go away when the same request is made again (a throttled,
 * overloaded or reset connection, a truncated body). Retry wrappers retry it.
 */
export class TransientError extends BendsaveError {
  override readonly code = "transient";
}

/**
 * An encrypted repository could not be unlocked: no passphrase was given,
 * or none of its key files opens with the one given.
 */
export class PassphraseError extends BendsaveError {
  override readonly code = "passphrase";
  /**
   * Set when another passphrase is the fix (none was given, or the one
   * given opens no key slot): what is wrong, without the fix, so a caller
   * that knows where the passphrase comes from (copy's destination) can
   * name its own fix.
   */
  readonly needsPassphrase: string | null;
  constructor(message: string, options?: ErrorOptions & { needsPassphrase?: string }) {
    super(message, options);
    this.needsPassphrase = options?.needsPassphrase ?? null;
  }

  /** `problem: fix`, with `problem` kept as {@linkcode needsPassphrase}. */
  static wanting(problem: string, fix: string): PassphraseError {
    return new PassphraseError(`${problem}: ${fix}`, { needsPassphrase: problem });
  }
}

/** The operating system reported an I/O failure (EIO, EMFILE...) that no other class names. */
export class IoError extends BendsaveError {
  override readonly code = "io";
}

/** The storage service cannot be reached at all (connection refused, unknown host). */
export class StoreUnreachable extends BendsaveError {
  override readonly code = "unreachable";
}

/** An external program bendsave ran (a meta export command, databend-metactl) failed. */
export class CommandFailed extends BendsaveError {
  override readonly code = "command_failed";
}

/**
 * A restore wrote everything it could, but some files could not be restored
 * (a damaged or missing block): `failed` names every one of them, and
 * `result` is what was done.
 */
export class RestoreIncomplete<R = unknown> extends IntegrityError {
  override readonly code = "integrity";
  /** Every file left out, with why. */
  readonly failed: readonly { readonly path: string; readonly message: string }[];
  /** What the restore did. */
  readonly result: R;
  constructor(
    message: string,
    failed: readonly { path: string; message: string }[],
    result: R,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.failed = failed;
    this.result = result;
  }
}

/**
 * A database bendsave backs up (PostgreSQL) refused or failed a request, or
 * cannot be reached: the server is down, a query failed, WAL did not reach
 * the archive.
 */
export class DatabaseError extends BendsaveError {
  override readonly code = "database";
}

/**
 * The operation was cancelled through its `signal` (Ctrl-C, SIGTERM) and
 * stopped at a safe point: its locks are released, its temporary files
 * removed, and nothing after its last commit point was written.
 * `committed` says whether anything was committed before it stopped.
 */
export class Cancelled extends BendsaveError {
  override readonly code = "cancelled";
  /** What was committed before the operation stopped (a sentence), or null for nothing. */
  readonly committed: string | null;
  constructor(message: string, options?: ErrorOptions & { committed?: string | null }) {
    super(message, options);
    this.committed = options?.committed ?? null;
  }
}
