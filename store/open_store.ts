/**
 * Opens the blob store behind a repository location (path or URI).
 *
 * @module
 */
import fs from "node:fs";
import type { BlobStore } from "./drivers/types.ts";
import { FsStore } from "./drivers/fs.ts";
import { StagedStore } from "./drivers/staged.ts";
import { InvalidInput, RepositoryNotFound } from "./errors.ts";
import { parseRepoUri } from "../formats/uri.ts";

/**
 * Opens a store for `location`. With `create`, a missing local directory is
 * created; without it, RepositoryNotFound is thrown.
 */
export async function openStore(
  location: string,
  options: { create?: boolean; onWarning?: (message: string) => void } = {},
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
    case "staged":
      if (options.create) {
        throw new InvalidInput(
          `${location} is a read-only staged repository: back up or copy to a local path or s3:// instead`,
        );
      }
      return await StagedStore.open(
        uri.dirs,
        options.onWarning ? { onWarning: options.onWarning } : {},
      );
    case "s3": {
      // Transient faults (503 SlowDown, 5xx, resets, truncated bodies) are retried
      // with backoff by the wrapper; each retry is reported as a warning.
      // Loaded on demand: the AWS SDK triples start-up time for every other command.
      const { S3Store } = await import("./drivers/s3.ts");
      const { withRetry } = await import("./drivers/retry.ts");
      const s3 = await S3Store.open(uri);
      return withRetry(s3, {
        onRetry: (e) =>
          options.onWarning?.(
            `${e.operation} failed (${e.error}); retry ${e.attempt} in ${Math.round(e.delayMs)} ms`,
          ),
      });
    }
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
