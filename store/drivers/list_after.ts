/**
 * An optional driver extension: listing that starts after a given name, so a
 * listing that failed half-way can resume where it stopped instead of
 * starting over (object stores page their listings by key).
 *
 * @module
 */
import type { BlobStore, FileInfo, FileKind } from "./types.ts";

/** A store that can resume a listing. */
export interface ListAfter {
  /**
   * Like `list(kind)`, but yields only the objects whose name sorts after
   * `after`, in ascending order of name (for `pack`, of `packs/<xx>/<name>`,
   * which orders the same way).
   */
  listAfter(kind: FileKind, after: string): AsyncIterable<FileInfo>;
}

/** True when `store` implements {@linkcode ListAfter}. */
export function canListAfter(store: BlobStore): store is BlobStore & ListAfter {
  return typeof (store as Partial<ListAfter>).listAfter === "function";
}
