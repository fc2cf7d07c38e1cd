/**
 * What a source contributes to a backup: a description without secrets,
 * and one or more parts (a Databend cluster contributes a `meta` stream and
 * a `storage` tree; a directory contributes one `files` tree).
 *
 * @module
 */
import type { ChunkerParams } from "../formats/chunker.ts";

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

/** One part of a source. */
export type SourcePart = DirPart | StreamPart;

/** A source of a backup. */
export interface Source {
  readonly info: SourceInfo;
  /** The parts to back up, in order. */
  parts(): Promise<SourcePart[]>;
}
