/**
 * Where a restore writes: the output interface of the one restorer
 * (restorer.ts). The restorer walks the backup, reads and orders the
 * blocks; an output makes directories, writes files from their blocks,
 * makes links and sets metadata in its own target, and tells the restorer
 * through a {@linkcode Ledger} how each file ended. Implementations: a
 * directory (dir_output.ts) and the objects of a blob store
 * (store_output.ts); a Databend cluster restore composes them (the meta
 * export into a directory, the storage into either).
 *
 * @module
 */
import type { ChunkerParams } from "../../formats/chunker.ts";
import type { Collected, Entry, Link } from "./collect.ts";
import type { Ownership } from "./owner.ts";
import type { RestorePlan } from "./restore.ts";
import type { StoredBlock } from "./stored_block.ts";

/** How the files an output was given ended, told as it happens. */
export interface Ledger {
  /** `files` more files are complete under their final names; `bytes` more bytes were written. */
  written(files: number, bytes: number): void;
  /** An entry could not be restored (a damaged block, something in its place); the others go on. */
  failed(path: string, message: string): void;
}

/** What an output finds in its target: the part of a plan that depends on it. */
export interface TargetView {
  /** The target as the plan names it (an absolute path, a store location). */
  readonly target: string;
  readonly targetNotEmpty: boolean;
  /** Existing entries the restore would replace. */
  readonly replaced: string[];
  /** Existing non-directories where the backup has a directory. */
  readonly replacedByDirectory: { path: string; was: string }[];
  readonly ownership: Ownership;
}

/** A restore target. Calls come in this order: inspect, refuseNotEmpty, begin, files, drain, links, symlinks, end; close always. */
export interface RestoreOutput {
  /** True when hard links are restored as links; otherwise each name is written as a file. */
  readonly hardLinks: boolean;
  /** True once an error that stops the restore happened: no more files are given. */
  readonly stopped: boolean;
  /** Looks at the target, writing nothing. */
  inspect(c: Collected): Promise<TargetView>;
  /** The error refusing a non-empty target without `overwrite`. */
  notEmpty(plan: RestorePlan): Error;
  /**
   * Refuses what the target cannot hold, makes the target and the
   * directories of `c`; `ledger` is where the files' ends are told.
   */
  begin(c: Collected, plan: RestorePlan, ledger: Ledger): Promise<void>;
  /**
   * True when the entry in place of `f` already has its content (a restore
   * into a non-empty target); it is kept and its metadata set again. The
   * backup cut it with `chunker` into blocks of `lengths` bytes.
   */
  unchanged(f: Entry, chunker: ChunkerParams, lengths: readonly number[]): Promise<boolean>;
  /**
   * Writes file `f` from `blocks`, its stored blocks in order, each checked
   * (stored_block.ts) before a byte of it is written; nothing takes the
   * name of a file not written whole. When `blocks` throws an
   * `IntegrityError`, `f` is left out and told to the ledger as failed.
   * Resolves when the output can take the next file: the file may still be
   * in hand, its end is told to the ledger. Rejects only when the restore
   * must stop.
   */
  file(f: Entry, blocks: AsyncIterable<StoredBlock>): Promise<void>;
  /** Waits for every file in hand; throws the error that stopped the restore, if any. */
  drain(): Promise<void>;
  /**
   * Makes `l` a hard link of the written file `l.of`: "kept" when it
   * already is one, "failed" when it cannot be (told to the ledger).
   */
  link(l: Link): Promise<"made" | "kept" | "failed">;
  /** Restores symlink `s` (or tells why it cannot, through the ledger or a warning). */
  symlink(s: Entry): Promise<void>;
  /** After every entry: directory metadata, exact names. */
  end(c: Collected): Promise<void>;
  /**
   * Releases what the output holds once no more is written (after a
   * failure or a cancel too): files in hand are finished or removed, no
   * temporary name stays.
   */
  close(): Promise<void>;
  /** The `committed` clause of a cancelled restore: `done` of `total` files are in place. */
  cancelled(done: number, total: number): string;
}
