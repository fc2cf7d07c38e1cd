/**
 * The one event vocabulary of long operations (backup, restore, verify,
 * vacuum, copy, repair, wal-push, wal-fetch): `progress` and `warning`.
 * The CLI renders them as a progress line on a terminal or as NDJSON with
 * `--json` (snake_case keys, README "JSON output").
 *
 * @module
 */

/** The operations that report events. */
export type OperationName =
  | "backup"
  | "restore"
  | "verify"
  | "repair"
  | "vacuum"
  | "copy"
  | "wal-push"
  | "wal-fetch";

/**
 * Progress of an operation. `files` and `bytes` count what is done,
 * `totalFiles` and `totalBytes` what there is to do (0 while unknown, as
 * in the `scan` phase). Copy counts backups as files and stored bytes of
 * copied blocks as bytes, and adds `manifest`, `blocks` and `blocksPresent`.
 */
export interface ProgressEvent {
  readonly type: "progress";
  readonly operation: OperationName;
  readonly phase: "scan" | "read" | "write" | "finish";
  readonly files: number;
  readonly totalFiles: number;
  readonly bytes: number;
  readonly totalBytes: number;
  readonly elapsedMs: number;
  /** Copy: the backup being copied. */
  readonly manifest?: string;
  /** Copy: blocks copied so far. */
  readonly blocks?: number;
  /** Copy: blocks the destination already held. */
  readonly blocksPresent?: number;
}

/** Something the user should know that does not stop the operation. */
export interface WarningEvent {
  readonly type: "warning";
  readonly path?: string;
  readonly message: string;
}

/** An event of a long operation. */
export type OperationEvent = ProgressEvent | WarningEvent;

/** Receives events. */
export type EventSink = (e: OperationEvent) => void;
