/**
 * Restore: the public entry points. {@linkcode restore} writes a backup into
 * a directory, {@linkcode restoreToStore} into the objects of a blob store;
 * both are the one restorer (restorer.ts) over an output (dir_output.ts,
 * store_output.ts), and {@linkcode planRestore} / {@linkcode planRestoreToStore}
 * are their dry runs. Every block is checked against its SHA-256 before it
 * is written; nothing half-written ever carries its final name.
 *
 * @module
 */
import type { BlobStore } from "../drivers/types.ts";
import type { EventSink } from "../backup/events.ts";
import type { CancelOptions } from "../cancel.ts";
import type { Repository } from "../repository.ts";
import type { FailedFile } from "./file_writer.ts";
import type { OwnerOptions, Ownership } from "./owner.ts";
import { DirOutput } from "./dir_output.ts";
import { StoreOutput } from "./store_output.ts";
import { planWith, restoreWith } from "./restorer.ts";

export type { FailedFile } from "./file_writer.ts";

/**
 * Options of {@linkcode planRestore} and {@linkcode restore}. Ownership
 * ({@linkcode OwnerOptions}) applies to restores into a directory. A
 * `signal` that aborts stops the restore between files with `Cancelled`:
 * files already renamed into place stay, the temporary files of the others
 * are removed, the lock is released.
 */
export interface RestoreOptions extends OwnerOptions, CancelOptions {
  /**
   * Manifest file name; default: the newest backup of `source`, or of the
   * only source the repository holds (several sources and no `source` are
   * refused: see {@linkcode latestBackup}).
   */
  readonly manifest?: string | null;
  /** With no `manifest`: the source (key, description or path) whose newest backup to restore. */
  readonly source?: string;
  /** Part of the backup to restore; default: the only tree part, or "files". */
  readonly part?: string;
  /** Restore into a non-empty target, rewriting only files that differ. */
  readonly overwrite?: boolean;
  /** Globs selecting what to restore (default: everything). */
  readonly include?: readonly string[];
  readonly onEvent?: EventSink;
  /** Writer threads (default: one per core; 0 writes in-process). */
  readonly workers?: number;
  /**
   * The repository of `store`, already open, to reuse: its index is loaded
   * once for several restores of one backup (a cluster's parts).
   */
  readonly repository?: Repository;
}

/** What a restore will do (the dry run's report). */
export interface RestorePlan {
  readonly manifest: string;
  readonly manifestId: string;
  readonly target: string;
  readonly files: number;
  readonly dirs: number;
  readonly symlinks: number;
  readonly bytes: number;
  /**
   * Of the `files`, how many are restored as hard links of another restored
   * file (format 1.2); their bytes are not in `bytes`.
   */
  readonly hardLinks: number;
  /** Whether the restore sets owners (directory restores; see {@linkcode Ownership}). */
  readonly ownership: Ownership;
  /** Existing paths under the target that the restore would replace. */
  readonly replaced: string[];
  /**
   * Existing paths where the backup has a directory but the target holds a
   * symlink or a file: the link (never what it points to) or the file is
   * removed and a directory made in its place.
   */
  readonly replacedByDirectory: { path: string; was: string }[];
  /** True when the target exists and is not empty. */
  readonly targetNotEmpty: boolean;
  /** Pack files the restore reads (for trees and file data), with their sizes, sorted. */
  readonly packs: { id: string; size: number }[];
  /**
   * Names of the `packs` the store does not hold, or holds with another size
   * than the index records (a partly staged repository), sorted. A restore
   * refuses to start while any are missing.
   */
  readonly missingPacks: string[];
  /**
   * Directories (`""` for the root) whose tree is in a missing pack: what is
   * below them is not counted above, and their own packs are not yet known.
   */
  readonly unlistedDirs: string[];
}

/** What a restore did. */
export interface RestoreResult extends RestorePlan {
  /** Files that could not be restored (damaged or missing blocks), with why; the rest were. */
  readonly failed: readonly FailedFile[];
  readonly filesWritten: number;
  readonly filesUnchanged: number;
  readonly bytesWritten: number;
  readonly durationMs: number;
}

/** Works out what a restore would do, writing nothing (the dry run). */
export function planRestore(
  store: BlobStore,
  target: string,
  options: RestoreOptions = {},
): Promise<RestorePlan> {
  return planWith(store, new DirOutput(target, options), options);
}

/**
 * Restores a backup into `target`. Refuses a non-empty target unless
 * `overwrite` is set; then only files whose content differs are rewritten.
 */
export function restore(
  store: BlobStore,
  target: string,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  return restoreWith(store, new DirOutput(target, options), options);
}

/**
 * Works out what a restore into the objects of a blob store would do (the
 * dry run of {@linkcode restoreToStore}), writing nothing.
 */
export function planRestoreToStore(
  store: BlobStore,
  target: BlobStore,
  options: RestoreOptions = {},
): Promise<RestorePlan> {
  return planWith(store, new StoreOutput(target, options), options);
}

/**
 * Restores a backed-up tree into a blob store (a Databend cluster's S3
 * storage): each file becomes the object named by its path. Every block is
 * checked against its hash before the object is saved, and an object is
 * saved whole or not at all. Objects larger than 16 MiB are streamed, block
 * by block, to a target with `saveStream` (a damaged block aborts the save:
 * nothing takes the name and the file is reported in `failed`); the saves
 * in flight hold at most about 64 MiB of object data. Directories and their
 * metadata have no objects; symlinks cannot be stored and are reported.
 * Refuses a store that holds objects unless `overwrite` is set; then only
 * objects whose content differs are saved again.
 */
export function restoreToStore(
  store: BlobStore,
  target: BlobStore,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  return restoreWith(store, new StoreOutput(target, options), options);
}
