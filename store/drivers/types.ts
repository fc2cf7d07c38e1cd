/**
 * The blob-store interface every storage driver implements.
 *
 * A driver is a small key/value store over typed names. It knows nothing
 * about backups: the repository engine in `store/` decides what the names
 * mean. Cross-cutting concerns (retry, logging, concurrency limits) are
 * wrappers of the shape `(inner: BlobStore) => BlobStore`.
 *
 * @module
 */

/**
 * The kinds of file a repository holds; `raw` is a plain relative path (cluster storage);
 * `wal` a WAL archive record, named `<system identifier>/<WAL file name>` (since format 1.2);
 * `key` a key file of an encrypted repository (docs/ENCRYPTION.md, format 2.0).
 */
export type FileKind =
  | "config"
  | "guide"
  | "manifest"
  | "pack"
  | "index"
  | "lock"
  | "key"
  | "raw"
  | "wal";

/** A typed name: a kind and a name within that kind (for `raw`, a relative path with `/`). */
export interface Handle {
  readonly kind: FileKind;
  readonly name: string;
}

/** What a driver can do. */
export interface Capabilities {
  /** Writes are possible (false for the read-only tape-staged driver). */
  readonly writable: boolean;
  /** `save` with `{ exclusive: true }` fails with `AlreadyExists` atomically (needed for locks). */
  readonly exclusiveCreate: boolean;
  /** `load` with a range reads only that range (not the whole object). */
  readonly rangedRead: boolean;
  /** Human name of the driver, for messages ("fs", "mem", "s3", "staged"). */
  readonly name: string;
}

/** Metadata of a stored object. */
export interface FileInfo {
  readonly kind: FileKind;
  readonly name: string;
  readonly size: number;
  /** Modification time in milliseconds since the epoch, when the driver knows it. */
  readonly mtimeMs?: number;
  /** Entity tag (S3 `ETag`, quotes included), when the driver knows it. */
  readonly etag?: string;
}

/** A byte range: `length` bytes starting at `offset`. */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/** Options of {@linkcode BlobStore.save}. */
export interface SaveOptions {
  /** Fail with `AlreadyExists` when the name exists, atomically. */
  readonly exclusive?: boolean;
}

/**
 * A blob store. Every `save` is atomic: a reader sees either nothing or the
 * whole object, never a prefix, even if the process dies during the call.
 */
export interface BlobStore {
  readonly capabilities: Capabilities;
  /** A description of where the store is, without secrets (for messages). */
  readonly location: string;
  /** Stores `data` under `h`, atomically and durably. */
  save(h: Handle, data: Uint8Array, options?: SaveOptions): Promise<void>;
  /**
   * Stores the bytes of `chunks`, exactly `size` of them, under `h`, as
   * atomically and durably as `save`, holding only a bounded window of them
   * in memory (for objects too large to build in one buffer). When `chunks`
   * throws, or yields more or fewer than `size` bytes (a `RangeError`),
   * nothing is stored under `h` and the error is thrown. A chunk may be
   * reused by the caller once the next one is asked for. Optional: a
   * caller without it builds the object and calls `save`.
   */
  saveStream?(
    h: Handle,
    chunks: AsyncIterable<Uint8Array>,
    size: number,
    options?: SaveOptions,
  ): Promise<void>;
  /** Reads the whole object, or `range` of it. Throws `NotFound` when absent. */
  load(h: Handle, range?: ByteRange): Promise<Uint8Array>;
  /** Metadata of one object. Throws `NotFound` when absent. */
  stat(h: Handle): Promise<FileInfo>;
  /** Every object of a kind (for `raw`, every object below the root), in no set order. */
  list(kind: FileKind): AsyncIterable<FileInfo>;
  /** Removes an object. Removing an absent object is not an error. */
  remove(h: Handle): Promise<void>;
  /** Releases resources held by the store. */
  close?(): Promise<void>;
}
