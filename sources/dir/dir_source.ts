/**
 * A directory on local disk as a backup source.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { hostname } from "node:os";
import { InvalidInput } from "../../store/errors.ts";
import type { Source } from "../types.ts";
import type { BytePath } from "../../store/_byte_path.ts";
import { dirTree } from "../../store/archiver/dir_tree.ts";
import { prescanTree } from "../../store/archiver/prescan.ts";
import type { TreeSource } from "../../store/archiver/tree_source.ts";
import { type ChunkerParams, DEFAULT_FASTCDC } from "../../formats/chunker.ts";

/**
 * A source for the directory at `dir`. Throws InvalidInput when it does not
 * exist or is not a directory.
 *
 * @example
 * ```ts
 * import { dirSource } from "./dir_source.ts";
 * const src = dirSource("/var/lib/app");
 * src.info.key; // "dir:<host>:/var/lib/app"
 * ```
 */
export function dirSource(
  dir: string,
  options: { host?: string; chunker?: ChunkerParams } = {},
): Source {
  let real: string;
  try {
    real = fs.realpathSync(path.resolve(dir));
  } catch (e) {
    const code = (e as { code?: unknown } | null)?.code;
    if (code === "ENAMETOOLONG") {
      throw new InvalidInput(
        `source directory "${dir}" has a path longer than the system allows (ENAMETOOLONG): back up a parent directory instead`,
      );
    }
    if (code === "EACCES") {
      throw new InvalidInput(
        `source directory "${dir}" cannot be reached, a parent directory denies access (EACCES): run as a user who may read it`,
      );
    }
    throw new InvalidInput(
      `source directory "${dir}" does not exist: check the path given to --from`,
    );
  }
  if (!fs.statSync(real).isDirectory()) {
    throw new InvalidInput(`source "${dir}" is not a directory: give a directory to --from`);
  }
  const host = options.host ?? hostname();
  let tree: TreeSource<BytePath> | undefined;
  return {
    info: {
      type: "dir",
      key: `dir:${host}:${real}`,
      description: `directory ${real} on ${host}`,
      settings: { path: real, host },
    },
    // Content-defined chunking by default: an edit inside a large file then
    // adds about one block instead of the rest of the file (bench/CHUNKERS.md).
    warm(until) {
      tree = prescanTree(dirTree(real), until).tree;
    },
    parts: () =>
      Promise.resolve([{
        name: "files",
        kind: "tree",
        path: real,
        chunker: options.chunker ?? DEFAULT_FASTCDC,
        ...(tree ? { tree } : {}),
      }]),
  };
}
