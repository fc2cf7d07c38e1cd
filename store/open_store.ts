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
import type { RetryOptions } from "./drivers/retry.ts";
import type { S3StoreOptions, S3Uri } from "./drivers/s3.ts";

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
    case "staged": {
      if (options.create) {
        throw new InvalidInput(
          `${location} is a read-only staged repository: back up or copy to a local path or s3:// instead`,
        );
      }
      // Loaded on demand, as S3's: a wal-push or wal-fetch of a local repository skips it.
      const { StagedStore } = await import("./drivers/staged.ts");
      return await StagedStore.open(
        uri.dirs,
        options.onWarning ? { onWarning: options.onWarning } : {},
      );
    }
    case "s3":
      return await openS3Store(uri, options.onWarning ? { onWarning: options.onWarning } : {});
  }
}

/**
 * Opens an S3 store inside the retry wrapper: transient faults (503
 * SlowDown, 5xx, resets, timeouts, truncated bodies) are retried with
 * backoff, those of the open itself included, and each retry is reported
 * through `onWarning`. Every S3 store (a repository, a cluster's storage)
 * is composed here.
 */
export async function openS3Store(
  uri: S3Uri,
  options: { s3?: S3StoreOptions; onWarning?: (message: string) => void } = {},
): Promise<BlobStore> {
  // Loaded on demand: the AWS SDK triples start-up time for every other command.
  const { S3Store } = await import("./drivers/s3.ts");
  const { withRetry } = await import("./drivers/retry.ts");
  const retry: RetryOptions = {
    onRetry: (e) =>
      options.onWarning?.(
        `${e.operation} failed (${e.error}); retry ${e.attempt} in ${Math.round(e.delayMs)} ms`,
      ),
  };
  return withRetry(await S3Store.open(uri, { ...options.s3, retry }), retry);
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
