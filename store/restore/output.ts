/**
 * Where a restore writes: the output interface of the one restorer
 * (restorer.ts). The restorer walks the backup and hands its entries over
 * in bounded batches, reading the blocks of each batch in pack order; an
 * output makes directories, writes files from their blocks, makes links
 * and sets metadata in its own target, and tells the restorer
 * through a {@linkcode Ledger} how each file ended. Implementations: a
 * directory (dir_output.ts) and the objects of a blob store
 * (store_output.ts); a Databend cluster restore composes them (the meta
 * export into a directory, the storage into either).
 *
 * @module
 */
import type { ChunkerParams } from "../../formats/chunker.ts";
import type { Entry, Link, SelectedDir } from "./collect.ts";
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

/** What an output finds in its target: the part of a plan that depends on it alone. */
export interface TargetView {
  /** The target as the plan names it (an absolute path, a store location). */
  readonly target: string;
  readonly targetNotEmpty: boolean;
  readonly ownership: Ownership;
}

/**
 * A restore target. Calls come in this order: inspect (and existing, for
 * the plan of a non-empty target), notEmpty, begin; then, as the walk goes,
 * dir for each directory (parents first), and batches of files, drain,
 * links, symlinks and done for each directory whose subtree is restored
 * (deepest first, the root last); close always.
 */
export interface RestoreOutput {
  /** True when hard links are restored as links; otherwise each name is written as a file. */
  readonly hardLinks: boolean;
  /** True once an error that stops the restore happened: no more files are given. */
  readonly stopped: boolean;
  /** Looks at the target, writing nothing. */
  inspect(): Promise<TargetView>;
  /**
   * For the plan of a restore into a non-empty target: what the target holds
   * in the place of `e` (an entry or a directory), writing nothing; null
   * for nothing, "directory" for a directory, else what it is ("file",
   * "symlink to x"). Only asked below directories that exist.
   */
  existing(e: Entry): Promise<string | null>;
  /** The error refusing a non-empty target without `overwrite`. */
  notEmpty(plan: RestorePlan): Error;
  /**
   * Refuses what the target cannot hold (`exact`: the first name of the
   * restore that is not valid UTF-8, if any, and the directory holding it),
   * before anything is written; `ledger` is where the files' ends are told.
   */
  begin(
    plan: RestorePlan,
    ledger: Ledger,
    exact: { dir: string; bytes: Uint8Array } | null,
  ): Promise<void>;
  /**
   * Makes directory `d` (the root: the target), its parent made already;
   * in a non-empty target, something else in its place is removed, never
   * followed, and its entries with names that are not valid UTF-8 are moved
   * to their placeholders, to be treated like any existing entry.
   */
  dir(d: SelectedDir): Promise<void>;
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
  /**
   * Everything below directory `d` is restored: its entries' exact names,
   * then its own metadata (writing into a directory changes its mtime).
   */
  done(d: SelectedDir): Promise<void>;
  /**
   * Releases what the output holds once no more is written (after a
   * failure or a cancel too): files in hand are finished or removed, no
   * temporary name stays.
   */
  close(): Promise<void>;
  /** The `committed` clause of a cancelled restore: `done` of `total` files are in place. */
  cancelled(done: number, total: number): string;
}
