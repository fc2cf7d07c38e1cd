/**
 * Events that long operations report while they run (the CLI renders them
 * as a progress line or as NDJSON).
 *
 * @module
 */

/** Progress of a backup or restore. */
export interface ProgressEvent {
  readonly type: "progress";
  readonly operation: "backup" | "restore" | "verify" | "repair" | "vacuum";
  readonly phase: "scan" | "read" | "write" | "finish";
  readonly files: number;
  readonly totalFiles: number;
  readonly bytes: number;
  readonly totalBytes: number;
  readonly elapsedMs: number;
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
