/**
 * Opens the blob store behind a repository location (path or URI).
 *
 * @module
 */
import fs from "node:fs";
import type { BlobStore } from "./drivers/types.ts";
import { FsStore } from "./drivers/fs.ts";
import { InvalidInput, RepositoryNotFound } from "./errors.ts";
import { parseRepoUri } from "../formats/uri.ts";

/**
 * Opens a store for `location`. With `create`, a missing local directory is
 * created; without it, RepositoryNotFound is thrown.
 */
export async function openStore(
  location: string,
  options: { create?: boolean } = {},
): Promise<BlobStore> {
  let uri;
  try {
    uri = parseRepoUri(location);
  } catch (e) {
    throw new InvalidInput((e as Error).message);
  }
  switch (uri.scheme) {
    case "fs": {
      const st = (() => {
        try {
          return fs.statSync(uri.path);
        } catch {
          return null;
        }
      })();
      if (st && !st.isDirectory()) {
        throw new InvalidInput(
          `repository location "${uri.path}" is a file, not a directory: give a directory path`,
        );
      }
      if (!st && !options.create) {
        throw new RepositoryNotFound(
          `no repository at "${uri.path}" (the directory does not exist): check the path`,
        );
      }
      return await FsStore.open(uri.path, { create: options.create ?? false });
    }
    case "s3":
    case "staged":
      throw new InvalidInput(
        `${
          uri.scheme === "s3" ? "s3://" : "staged:"
        } repositories are not supported by this version yet: use a local path`,
      );
  }
}

/**
 * Splits `<repo>/manifests/<name>.manifest` into the repository location and
 * the manifest name; any other location is a repository with no manifest.
 */
export function splitManifestLocation(location: string): { repo: string; manifest: string | null } {
  const m = /^(.*?)\/+manifests\/+([^/]+\.manifest)$/.exec(location);
  if (!m) return { repo: location, manifest: null };
  return { repo: m[1] === "" ? "/" : m[1]!, manifest: m[2]! };
}
