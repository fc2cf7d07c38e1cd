/**
 * The blob-store interface and its drivers.
 *
 * The shared conformance suite lives in `conformance.ts` and is imported by
 * driver tests directly; it is not part of this public surface.
 *
 * @module
 */

export type {
  BlobStore,
  ByteRange,
  Capabilities,
  FileInfo,
  FileKind,
  Handle,
  SaveOptions,
} from "./types.ts";
export { FsStore } from "./fs.ts";
export type { CleanTemporaryFilesOptions, FsStoreOpenOptions } from "./fs.ts";
export { MemStore } from "./mem.ts";
export { StagedStore, type StagedStoreOpenOptions } from "./staged.ts";
export { S3Store } from "./s3.ts";
export type { S3Credentials, S3StoreOptions, S3Uri } from "./s3.ts";
export { isTransient, withRetry } from "./retry.ts";
export type { RetryEvent, RetryOptions } from "./retry.ts";
