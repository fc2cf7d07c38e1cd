/**
 * The engine's input contract: what a source contributes to a backup, a
 * description without secrets and one or more parts (a Databend cluster
 * contributes a `meta` stream and a `storage` tree; a directory contributes
 * one `files` tree). The engine reads every part through a tree source
 * (store/archiver/tree_source.ts); sources/ implements this contract
 * (sources/types.ts re-exports it), the engine never imports sources/.
 *
 * @module
 */
import type { ChunkerParams } from "../formats/chunker.ts";
import type { TreeSource } from "./archiver/tree_source.ts";
import type { BytePath } from "./_byte_path.ts";
import type { Catalog, Manifest } from "../formats/manifest.ts";

/** Identity and description of a source, with every secret removed. */
export interface SourceInfo {
  /** "dir", "databend", ... */
  readonly type: string;
  /** Stable identity used to find the parent of the next backup. */
  readonly key: string;
  readonly description: string;
  readonly settings: Readonly<Record<string, string>>;
}

/** A local directory tree, read by the engine's reader workers. */
export interface DirPart {
  readonly name: string;
  readonly kind: "tree";
  /** Absolute path of the directory. */
  readonly path: string;
  /** Chunker for this part's files (default: the repository's). */
  readonly chunker?: ChunkerParams;
  /**
   * True for a path (relative to `path`, `/`-separated) that this part
   * leaves out, on top of the backup's `exclude` globs (a PostgreSQL data
   * directory leaves out the contents of `pg_wal/`, `postmaster.pid`, ...).
   * A directory left out is left out with everything below it.
   */
  readonly exclude?: (rel: string) => boolean;
  /**
   * A file or directory that disappears while the part is read (ENOENT) is
   * left out without a warning, and does not make the backup incomplete: a
   * PostgreSQL data directory's files come and go during a base backup, and
   * WAL replay recreates what the restored server needs.
   */
  readonly vanishedOk?: boolean;
  /**
   * The directory's tree as the source read it ahead
   * ({@linkcode Source.warm}); without it the backup reads the directory.
   */
  readonly tree?: TreeSource<BytePath>;
}

/** A single byte stream, stored as a one-file tree. */
export interface StreamPart {
  readonly name: string;
  readonly kind: "stream";
  /** Name of the file the stream is stored as. */
  readonly fileName: string;
  /** Opens the stream. */
  open(): Promise<AsyncIterable<Uint8Array>>;
}

/** An object listed by an {@linkcode ObjectsPart}. */
export interface SourceObject {
  /** Relative path with `/` separators (no empty, `.` or `..` segment). */
  readonly name: string;
  readonly size: number;
  /** Last modification, milliseconds since the epoch (0 when unknown). */
  readonly mtimeMs: number;
  /** Entity tag, when the store has one (S3 `ETag`). */
  readonly etag?: string;
}

/**
 * The objects of a blob store (a Databend cluster's S3 storage), stored as a
 * directory tree: each `/`-separated name becomes directories and a file.
 * An object whose size and entity tag (or, without one, mtime) equal the
 * parent backup's is taken from the parent without reading it.
 */
export interface ObjectsPart {
  readonly name: string;
  readonly kind: "objects";
  readonly chunker?: ChunkerParams;
  /** Where the objects are, without secrets (for messages). */
  readonly location: string;
  /** Every object, in any order. */
  list(): AsyncIterable<SourceObject>;
  /**
   * The content of one object: the whole of it, or `range` of it (large
   * objects are read in ranges, so memory stays bounded).
   */
  read(name: string, range?: { offset: number; length: number }): Promise<Uint8Array>;
  /**
   * The object's current size and entity tag. A large object read in ranges
   * is checked with it afterwards, so one that changed while it was read is
   * not stored torn. Without it, large objects are read whole.
   */
  stat?(name: string): Promise<SourceObject>;
}

/** One part of a source. */
export type SourcePart = DirPart | StreamPart | ObjectsPart;

/** What a source reports once every part is backed up. */
export interface SourceConclusion {
  readonly catalog: Catalog | null;
  readonly warnings: readonly string[];
  readonly incomplete: boolean;
}

/** A source of a backup. */
export interface Source {
  readonly info: SourceInfo;
  /** The parts to back up, in order. */
  parts(): Promise<SourcePart[]>;
  /**
   * True when most of the source changes between backups (a database's data
   * directory): the reader threads then start while `parts()` prepares (a
   * PostgreSQL checkpoint), as they do for a first backup, instead of when
   * the first changed file is found.
   */
  readonly readsMost?: boolean;
  /**
   * Called once, before the repository is opened, with that opening: what
   * the source can read ahead without the repository it reads meanwhile
   * (an encrypted repository's key derivation takes about 0.2 s, off the
   * main thread). A directory source lists and stats its tree
   * (store/archiver/prescan.ts) and hands the result to its part.
   */
  warm?(until: Promise<unknown>): void;
  /**
   * The catalog to record in the manifest, asked for after every part is
   * backed up (a Databend source derives it from the meta export it streamed).
   */
  catalog?(): Catalog | null;
  /**
   * Asked for once every part is backed up, instead of `catalog` when present:
   * the catalog, warnings for the manifest, and whether what the source found
   * makes the backup incomplete (a Databend source's consistency guard).
   */
  conclude?(context?: { readonly parent: Manifest | null }): Promise<SourceConclusion>;
  /** Releases what the parts hold open (connections); called once the backup ends. */
  close?(): Promise<void>;
}
