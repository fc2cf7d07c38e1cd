/**
 * Opens a Databend cluster's own storage (the `[storage]` section of its
 * query-node config) through the same drivers as repositories.
 *
 * @module
 */
import fs from "node:fs";
import type { BlobStore } from "../../store/drivers/types.ts";
import { FsStore } from "../../store/drivers/fs.ts";
import { InvalidInput } from "../../store/errors.ts";
import { openS3Store } from "../../store/open_store.ts";
import type { StorageConfig } from "./query_config.ts";

/** Options of {@linkcode openClusterStorage}. */
export interface OpenClusterStorageOptions {
  /** Create a missing fs data directory (restore); default false (backup). */
  readonly create?: boolean;
  /** Receives retry warnings of the S3 driver. */
  readonly onWarning?: (message: string) => void;
}

/**
 * Opens the storage a query-node config describes: the fs `data_path`, or
 * the S3 bucket and root with the config's endpoint, region and keys (the
 * SDK's default credential chain when the config has none). Objects are
 * `raw` handles named by their path below the storage root.
 *
 * @throws {InvalidInput} when an fs data path is missing (without `create`)
 * or is not a directory.
 */
export async function openClusterStorage(
  storage: StorageConfig,
  options: OpenClusterStorageOptions = {},
): Promise<BlobStore> {
  if (storage.type === "fs") {
    const st = fs.statSync(storage.dataPath, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) {
      throw new InvalidInput(
        `storage data_path "${storage.dataPath}" is not a directory: fix [storage.fs] data_path in the query config`,
      );
    }
    if (!st && !options.create) {
      throw new InvalidInput(
        `storage data_path "${storage.dataPath}" does not exist: fix [storage.fs] data_path in the query config`,
      );
    }
    return await FsStore.open(storage.dataPath, { create: options.create ?? false });
  }
  const settings: Record<string, string> = {
    // Databend's default is path style unless enable_virtual_host_style is set.
    force_path_style: storage.enableVirtualHostStyle === true ? "false" : "true",
  };
  if (storage.endpointUrl !== undefined) settings["endpoint"] = storage.endpointUrl;
  if (storage.region !== undefined) settings["region"] = storage.region;
  const credentials = storage.accessKeyId !== undefined && storage.secretAccessKey !== undefined
    ? {
      accessKeyId: storage.accessKeyId,
      secretAccessKey: storage.secretAccessKey,
      ...(storage.securityToken !== undefined ? { sessionToken: storage.securityToken } : {}),
    }
    : undefined;
  return await openS3Store(
    {
      scheme: "s3",
      bucket: storage.bucket,
      prefix: storage.root.replace(/^\/+|\/+$/g, ""),
      options: settings,
    },
    {
      // No probe write: a backup only reads the cluster's storage, and a restore
      // writes objects, never exclusive ones.
      s3: { ...(credentials ? { credentials } : {}), conditionalWrites: false },
      ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    },
  );
}
