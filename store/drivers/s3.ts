/**
 * A blob store in an S3-compatible object store (AWS S3, MinIO, Ceph RGW,
 * R2...), built on the AWS SDK for JavaScript v3.
 *
 * Every repository file is one object: its key is the relative path of
 * FORMAT.md section 4 below the URI's prefix (`<prefix>/packs/b4/b4e4...`).
 * A single PUT, or the completion of a multipart upload, makes an object
 * appear whole or not at all, which is the atomic save of section 15.1; no
 * temporary objects are written.
 *
 * The SDK's own retries are off (one attempt per request): transient
 * failures are thrown as `TransientError` and retried by the
 * `withRetry` wrapper of `retry.ts`, which reports each retry; the requests
 * of `open` are retried by the same policy (`S3StoreOptions.retry`).
 *
 * A request fails with `TransientError` when the server stays silent for
 * the timeout (URI option `timeout` in seconds, default 30): an endpoint
 * that accepts connections but never answers fails within
 * timeout x attempts, bounded by the retry policy's total time.
 *
 * @module
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  type StorageClass,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { randomBytes } from "node:crypto";
import { AccessDenied, AlreadyExists, InvalidInput, NotFound, TransientError } from "../errors.ts";
import { equalBytes } from "../../formats/hash.ts";
import type { RepoUri } from "../../formats/uri.ts";
import {
  canonicalName,
  checkRange,
  checkRawPath,
  checkStreamSize,
  collectStream,
  describeHandle,
  handleOfKey,
  KIND_DIRS,
  objectKey,
  SINGLETONS,
  streamSizeError,
  WAL_DIR,
} from "./_layout.ts";
import { Semaphore } from "./_semaphore.ts";
import { type RetryOptions, retryTransient } from "./retry.ts";
import { httpStatusOf, type S3ErrorContext, translateS3Error } from "./_s3_errors.ts";
import type { ListAfter } from "./list_after.ts";
import type {
  BlobStore,
  ByteRange,
  Capabilities,
  FileInfo,
  FileKind,
  Handle,
  SaveOptions,
} from "./types.ts";

/** An `s3://` repository location, as parsed by `parseRepoUri`. */
export type S3Uri = Extract<RepoUri, { scheme: "s3" }>;

/** Static credentials (tests, or a caller with its own credential source). */
export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** Options of {@linkcode S3Store.open}. */
export interface S3StoreOptions {
  /**
   * Credentials to use instead of the SDK's default chain (environment
   * variables, shared config and credentials files with the `profile` URI
   * option, SSO, web identity, container and instance metadata).
   */
  readonly credentials?: S3Credentials;
  /** Requests in flight at most (default 8). */
  readonly maxConcurrency?: number;
  /**
   * Part size of multipart uploads in bytes (default 8 MiB, at least 5 MiB);
   * objects larger than one part are uploaded in parts.
   */
  readonly partSize?: number;
  /** Keys per listing request (default 1000, the S3 maximum). */
  readonly listPageSize?: number;
  /**
   * How exclusive saves are made. `"auto"` (the default) checks at open
   * whether the server honours `If-None-Match: *` on PUT (two PUTs and a
   * DELETE of a `.tmp-` object under `locks/`) and emulates exclusive
   * creation when it does not; `true` trusts the server without checking;
   * `false` always emulates.
   */
  readonly conditionalWrites?: boolean | "auto";
  /** Milliseconds to wait for a connection (default 10 000, or the idle timeout when shorter). */
  readonly connectTimeoutMs?: number;
  /**
   * Milliseconds a request may wait without a byte from the server before
   * it fails as transient (default the URI option `timeout` in seconds, else
   * 30 000).
   */
  readonly idleTimeoutMs?: number;
  /**
   * How `open` retries its own requests (the bucket check, the
   * conditional-write probe): give the options of the `withRetry` wrapper
   * the store goes into, so that these retries are reported the same way.
   */
  readonly retry?: RetryOptions;
}

const MiB = 1024 * 1024;
const DEFAULT_PART_SIZE = 8 * MiB;
/** The smallest part S3 accepts (except the last one). */
const MIN_PART_SIZE = 5 * MiB;
/** S3 allows at most this many parts per upload. */
const MAX_PARTS = 10_000;
const DEFAULT_CONCURRENCY = 8;
/** Parts of a streamed save uploaded at once (each one a part-size buffer in memory). */
const STREAM_PARTS_IN_FLIGHT = 2;
const DEFAULT_PAGE_SIZE = 1000;
/** How long a request may wait in silence, by default. */
const DEFAULT_TIMEOUT_MS = 30_000;
/** How long a request may wait for a connection, at most, by default. */
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const TRUE_VALUES = new Set(["true", "1", "yes"]);
const FALSE_VALUES = new Set(["false", "0", "no"]);

interface Settings {
  readonly bucket: string;
  /** The key prefix with a trailing `/`, or "" for the bucket root. */
  readonly base: string;
  readonly location: string;
  readonly endpoint: string;
  readonly storageClass: StorageClass | undefined;
  readonly partSize: number;
  readonly pageSize: number;
  readonly maxConcurrency: number;
  /** The idle timeout of a request, for messages. */
  readonly timeoutMs: number;
  /** How the parts of a streamed save are retried (`S3StoreOptions.retry`), or null: not at all. */
  readonly retry: RetryOptions | null;
}

/**
 * A {@linkcode BlobStore} in an S3 bucket, below a key prefix.
 *
 * Names are checked as by every driver (see `_layout.ts`): a bad name throws
 * `TypeError` before any request is made. Errors map to domain errors:
 * 404 to `NotFound`, 403 to `AccessDenied`, a missing bucket to
 * `InvalidInput`, throttling, 5xx answers, broken connections and truncated
 * bodies to `TransientError`, an unreachable endpoint to `StoreUnreachable`.
 * Messages name the bucket and endpoint but never the credentials.
 *
 * @example
 * ```ts ignore
 * import { parseRepoUri } from "../../formats/uri.ts";
 * import { S3Store } from "./s3.ts";
 * import { withRetry } from "./retry.ts";
 *
 * const uri = parseRepoUri("s3://backups/prod?region=eu-west-1");
 * if (uri.scheme !== "s3") throw new Error("unreachable");
 * const store = withRetry(await S3Store.open(uri));
 * await store.save({ kind: "manifest", name: "m1" }, new Uint8Array([1]), { exclusive: true });
 * ```
 */
export class S3Store implements BlobStore, ListAfter {
  /** What this driver can do; `exclusiveCreate` is true only when the server honours `If-None-Match`. */
  readonly capabilities: Capabilities;
  readonly #client: S3Client;
  readonly #settings: Settings;
  readonly #conditional: boolean;
  readonly #slots: Semaphore;

  private constructor(client: S3Client, settings: Settings, conditional: boolean) {
    this.#client = client;
    this.#settings = settings;
    this.#conditional = conditional;
    this.#slots = new Semaphore(settings.maxConcurrency);
    this.capabilities = {
      writable: true,
      exclusiveCreate: conditional,
      rangedRead: true,
      name: "s3",
    };
  }

  /** The store's location, `s3://bucket/prefix`, with no options and no secrets. */
  get location(): string {
    return this.#settings.location;
  }

  /**
   * Opens the store of `uri` (options `region`, `endpoint`,
   * `force_path_style`, `storage_class`, `profile`, `timeout`). Checks that the bucket
   * exists and can be reached, and, unless told, whether the server supports
   * conditional writes.
   *
   * Throws `InvalidInput` for a bad option, a missing bucket or a wrong
   * region, `AccessDenied` when the credentials are refused, and
   * `StoreUnreachable` when the endpoint cannot be reached.
   */
  static async open(uri: S3Uri, options: S3StoreOptions = {}): Promise<S3Store> {
    const location = `s3://${uri.bucket}${uri.prefix ? "/" + uri.prefix : ""}`;
    const o = uri.options;
    const endpoint = o["endpoint"] !== undefined ? parseEndpoint(o["endpoint"], location) : null;
    const forcePathStyle = o["force_path_style"] !== undefined
      ? parseFlag(o["force_path_style"], "force_path_style", location)
      : endpoint !== null; // S3-compatible servers at an address rarely have bucket DNS names
    const partSize = options.partSize ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE) {
      throw new RangeError(
        `S3 part size ${partSize} is too small: use at least ${MIN_PART_SIZE} bytes (5 MiB)`,
      );
    }
    const pageSize = options.listPageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
      throw new RangeError(`S3 list page size ${pageSize} is invalid: use 1 to 1000`);
    }
    const maxConcurrency = options.maxConcurrency ?? DEFAULT_CONCURRENCY;
    const storageClass = o["storage_class"] === undefined || o["storage_class"] === ""
      ? undefined
      : checkStorageClass(o["storage_class"], location);
    const timeoutMs = options.idleTimeoutMs ??
      (o["timeout"] !== undefined ? parseTimeout(o["timeout"], location) : DEFAULT_TIMEOUT_MS);

    const config: S3ClientConfig = {
      forcePathStyle,
      maxAttempts: 1, // retries belong to the withRetry wrapper
      // Checksums only where S3 requires them: many S3-compatible servers reject the
      // newer checksum headers, and every byte bendsave reads back is checked by hash.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: {
        connectionTimeout: options.connectTimeoutMs ??
          Math.min(DEFAULT_CONNECT_TIMEOUT_MS, timeoutMs),
        socketTimeout: timeoutMs,
        httpAgent: { keepAlive: true, maxSockets: maxConcurrency },
        httpsAgent: { keepAlive: true, maxSockets: maxConcurrency },
      },
    };
    if (endpoint !== null) config.endpoint = endpoint.url;
    if (o["region"]) config.region = o["region"];
    if (o["profile"]) config.profile = o["profile"];
    if (options.credentials) {
      const c = options.credentials;
      config.credentials = c.sessionToken === undefined
        ? { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey }
        : {
          accessKeyId: c.accessKeyId,
          secretAccessKey: c.secretAccessKey,
          sessionToken: c.sessionToken,
        };
    }
    let client = new S3Client(config);
    if (!o["region"]) {
      // The region may come from AWS_REGION or the shared config file; an S3-compatible
      // server at an explicit endpoint usually ignores it.
      let resolved = "";
      try {
        resolved = await client.config.region();
      } catch {
        resolved = "";
      }
      if (resolved === "") {
        client.destroy();
        if (endpoint === null) {
          throw new InvalidInput(
            `no AWS region is set for ${location}: add ?region=<region> to the URI or set AWS_REGION`,
          );
        }
        client = new S3Client({ ...config, region: "us-east-1" });
      }
    }
    const region = o["region"] || await client.config.region();
    const settings: Settings = {
      bucket: uri.bucket,
      base: uri.prefix ? uri.prefix + "/" : "",
      location,
      endpoint: endpoint?.shown ?? `https://s3.${region}.amazonaws.com`,
      storageClass,
      partSize,
      pageSize,
      maxConcurrency,
      timeoutMs,
      retry: options.retry ?? null,
    };
    const probe = new S3Store(client, settings, options.conditionalWrites === true);
    try {
      const retry = options.retry ?? {};
      await retryTransient(
        `open of bucket "${uri.bucket}"`,
        () => probe.#checkBucket(),
        retry,
      );
      const conditional = options.conditionalWrites === "auto" ||
          options.conditionalWrites === undefined
        ? await retryTransient(
          "check of conditional writes",
          () => probe.#probeConditionalWrites(),
          retry,
        )
        : options.conditionalWrites;
      return new S3Store(client, settings, conditional);
    } catch (e) {
      client.destroy();
      throw e;
    }
  }

  /**
   * Stores `data` under `h` with one PUT, or with a multipart upload when it
   * is larger than the part size (the upload is aborted when a part fails).
   * With `exclusive`, fails with `AlreadyExists` when the name exists (an
   * object holding exactly `data` counts as this save having landed).
   */
  async save(h: Handle, data: Uint8Array, options: SaveOptions = {}): Promise<void> {
    const key = this.#key(h);
    const exclusive = options.exclusive === true;
    const ctx = this.#ctx(`save ${describeHandle(h)}`);
    if (exclusive && !this.#conditional) {
      // Emulated exclusive create: look, then write. NOT atomic: two writers that
      // both look before either writes both succeed, and the later PUT replaces
      // the earlier object. capabilities.exclusiveCreate is false to say so.
      if (await this.#exists(key, ctx)) throw this.#alreadyExists(h);
    }
    const ifNoneMatch = exclusive && this.#conditional ? "*" : undefined;
    try {
      if (data.length > this.#settings.partSize) {
        await this.#multipart(h, key, data, ifNoneMatch, ctx);
        return;
      }
      await this.#request(ctx, () =>
        this.#client.send(
          new PutObjectCommand({
            Bucket: this.#settings.bucket,
            Key: key,
            Body: data,
            ContentLength: data.length,
            ContentType: "application/octet-stream",
            ...(ifNoneMatch ? { IfNoneMatch: ifNoneMatch } : {}),
            ...this.#storageClassOf(h),
          }),
        ), { exclusiveOf: ifNoneMatch ? h : null });
    } catch (e) {
      // A 412 can answer our own write: Deno's HTTP client sends a request again by
      // itself when a reused connection breaks before the reply, even after the
      // server stored the object. Identical bytes under the name mean the save is done.
      if (e instanceof AlreadyExists && ifNoneMatch && await this.#holds(h, data)) return;
      throw e;
    }
  }

  /** True when the object of `h` exists and holds exactly `data`. */
  async #holds(h: Handle, data: Uint8Array): Promise<boolean> {
    try {
      return equalBytes(await this.load(h), data);
    } catch (e) {
      if (e instanceof NotFound) return false;
      throw e;
    }
  }

  /**
   * Stores the bytes of `chunks` (exactly `size` of them) under `h`: an
   * object no larger than the part size with one PUT, a larger one with a
   * multipart upload of parts cut from the chunks as they come (at most
   * two parts in memory, each uploaded and retried on its own when the store
   * was opened with `retry`). When `chunks` throws or holds another number
   * of bytes (`RangeError`), or a part fails, the upload is aborted and no
   * object appears under the name.
   */
  async saveStream(
    h: Handle,
    chunks: AsyncIterable<Uint8Array>,
    size: number,
    options: SaveOptions = {},
  ): Promise<void> {
    const key = this.#key(h);
    checkStreamSize(size);
    const { partSize } = this.#settings;
    if (size <= partSize) {
      await this.save(h, await collectStream(h, chunks, size), options);
      return;
    }
    this.#checkPartCount(h, size);
    const exclusive = options.exclusive === true;
    const ctx = this.#ctx(`save ${describeHandle(h)}`);
    if (exclusive && !this.#conditional) {
      if (await this.#exists(key, ctx)) throw this.#alreadyExists(h); // emulated, as in save
    }
    const ifNoneMatch = exclusive && this.#conditional ? "*" : undefined;
    const uploadId = await this.#retrying(ctx.operation, () => this.#startUpload(h, key, ctx));
    const pending: Promise<{ ETag: string; PartNumber: number }>[] = [];
    try {
      let part = new Uint8Array(partSize);
      let filled = 0;
      let written = 0;
      const send = async (body: Uint8Array) => {
        const number = pending.length + 1;
        const upload = this.#retrying(
          `${ctx.operation} (part ${number})`,
          () => this.#uploadPart(key, uploadId, number, body, ctx),
        );
        upload.catch(() => {}); // awaited below; never an unhandled rejection meanwhile
        pending.push(upload);
        // Bounded memory: wait for the oldest part once enough are in flight.
        if (pending.length >= STREAM_PARTS_IN_FLIGHT) {
          await pending[pending.length - STREAM_PARTS_IN_FLIGHT];
        }
      };
      for await (const chunk of chunks) {
        if (written + chunk.length > size) throw streamSizeError(h, written + chunk.length, size);
        written += chunk.length;
        let from = 0;
        while (from < chunk.length) {
          const n = Math.min(chunk.length - from, partSize - filled);
          part.set(chunk.subarray(from, from + n), filled);
          filled += n;
          from += n;
          if (filled === partSize) {
            await send(part);
            part = new Uint8Array(partSize);
            filled = 0;
          }
        }
      }
      if (written !== size) throw streamSizeError(h, written, size);
      if (filled > 0) await send(part.subarray(0, filled));
      const parts = await Promise.all(pending);
      await this.#completeUpload(h, key, uploadId, parts, ifNoneMatch, ctx);
    } catch (e) {
      await Promise.allSettled(pending); // no part may land after the abort
      await this.#abortUpload(key, uploadId, ctx);
      throw e;
    }
  }

  /** Runs `fn` under the retry policy the store was opened with, or once. */
  #retrying<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const retry = this.#settings.retry;
    return retry === null ? fn() : retryTransient(operation, fn, retry);
  }

  /**
   * Reads the whole object, or `range` of it with a ranged GET. A range past
   * the end returns the bytes that exist; a zero-length range returns an
   * empty array without a request. A body shorter than announced throws
   * `TransientError`.
   */
  async load(h: Handle, range?: ByteRange): Promise<Uint8Array> {
    const key = this.#key(h);
    if (range) {
      checkRange(range);
      if (range.length === 0) return new Uint8Array(0);
    }
    const ctx = this.#ctx(`load ${describeHandle(h)}`);
    return await this.#request(ctx, async () => {
      let response;
      try {
        response = await this.#client.send(
          new GetObjectCommand({
            Bucket: this.#settings.bucket,
            Key: key,
            ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}),
          }),
        );
      } catch (e) {
        // 416: the range starts at or after the end of the object.
        if (range && httpStatusOf(e) === 416) return new Uint8Array(0);
        throw e;
      }
      const body = response.Body;
      const bytes = body ? await body.transformToByteArray() : new Uint8Array(0);
      const announced = response.ContentLength;
      if (announced !== undefined && bytes.length !== announced) {
        throw new TransientError(
          `S3 sent ${bytes.length} of ${announced} bytes for ${ctx.operation} in ${ctx.location}: the transfer was cut short, try again`,
        );
      }
      if (range) {
        // Trust the range the server says it sent, not the one asked for: some servers
        // ignore Range (200 and the whole object) or widen it (s3rver reads "0-0" as "0-").
        const start = rangeStartOf(response.ContentRange) ?? 0;
        if (start !== range.offset || bytes.length > range.length) {
          const from = Math.max(0, range.offset - start);
          return bytes.slice(from, from + range.length);
        }
      }
      return bytes;
    });
  }

  /** Metadata of one object (a HEAD request). Throws `NotFound` when absent. */
  async stat(h: Handle): Promise<FileInfo> {
    const key = this.#key(h);
    const ctx = this.#ctx(`stat ${describeHandle(h)}`);
    const head = await this.#request(
      ctx,
      () => this.#client.send(new HeadObjectCommand({ Bucket: this.#settings.bucket, Key: key })),
    );
    return {
      kind: h.kind,
      name: canonicalName(h),
      size: head.ContentLength ?? 0,
      ...(head.LastModified ? { mtimeMs: head.LastModified.getTime() } : {}),
      ...(head.ETag ? { etag: head.ETag } : {}),
    };
  }

  /**
   * Every object of a kind, from paged ListObjectsV2 requests below
   * `<prefix>/<kind directory>/` (for `raw`, every object below the prefix,
   * named by its key relative to the prefix), in ascending key order.
   */
  list(kind: FileKind): AsyncIterable<FileInfo> {
    return this.listAfter(kind, "");
  }

  /** Like {@linkcode S3Store.list}, starting after the object named `after` ("" for the start). */
  async *listAfter(kind: FileKind, after: string): AsyncIterable<FileInfo> {
    const { bucket, base, pageSize } = this.#settings;
    let listPrefix: string;
    switch (kind) {
      case "config":
      case "guide":
        listPrefix = base + SINGLETONS[kind];
        break;
      case "manifest":
      case "index":
      case "lock":
      case "key":
        listPrefix = `${base}${KIND_DIRS[kind]}/`;
        break;
      case "pack":
        listPrefix = `${base}packs/`;
        break;
      case "wal":
        listPrefix = `${base}${WAL_DIR}/`;
        break;
      case "raw":
        listPrefix = base;
        break;
      default:
        throw new TypeError(`unknown file kind "${String(kind)}"`);
    }
    const ctx = this.#ctx(`list ${kind}`);
    let startAfter = after === "" ? undefined : this.#key({ kind, name: after });
    let token: string | undefined;
    for (;;) {
      const page = await this.#request(ctx, () =>
        this.#client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: listPrefix,
            MaxKeys: pageSize,
            ...(token !== undefined ? { ContinuationToken: token } : {}),
            ...(token === undefined && startAfter !== undefined ? { StartAfter: startAfter } : {}),
          }),
        ));
      let last: string | undefined;
      for (const object of page.Contents ?? []) {
        const key = object.Key;
        if (key === undefined || !key.startsWith(base)) continue;
        last = key;
        const info = fileInfoOf(
          kind,
          key.slice(base.length),
          object.Size ?? 0,
          object.LastModified,
          object.ETag,
        );
        if (info) yield info;
      }
      if (page.IsTruncated !== true) return;
      token = page.NextContinuationToken;
      if (token === undefined) {
        if (last === undefined) return; // a truncated page without keys or token: nothing more to ask
        startAfter = last;
      }
    }
  }

  /** Removes an object (DeleteObject); an absent object is not an error. */
  async remove(h: Handle): Promise<void> {
    const key = this.#key(h);
    const ctx = this.#ctx(`remove ${describeHandle(h)}`);
    try {
      await this.#request(
        ctx,
        () =>
          this.#client.send(new DeleteObjectCommand({ Bucket: this.#settings.bucket, Key: key })),
      );
    } catch (e) {
      if (e instanceof NotFound) return; // some servers answer 404 for an absent key
      throw e;
    }
  }

  /** Closes the SDK client's connections. */
  close(): Promise<void> {
    this.#client.destroy();
    return Promise.resolve();
  }

  #key(h: Handle): string {
    return this.#settings.base + objectKey(h);
  }

  #ctx(operation: string): S3ErrorContext {
    const { bucket, location, endpoint, timeoutMs } = this.#settings;
    return { operation, bucket, location, endpoint, timeoutMs };
  }

  #storageClassOf(h: Handle): { StorageClass?: StorageClass } {
    // Only packs go to the chosen class: config, manifests, index files and locks
    // must stay readable at once (an archive class would need a restore first).
    return h.kind === "pack" && this.#settings.storageClass !== undefined
      ? { StorageClass: this.#settings.storageClass }
      : {};
  }

  #alreadyExists(h: Handle): AlreadyExists {
    return new AlreadyExists(
      `${
        describeHandle(h)
      } already exists in ${this.location}: choose another name or remove it first`,
    );
  }

  /** Runs one request in a concurrency slot and translates its errors. */
  async #request<T>(
    ctx: S3ErrorContext,
    fn: () => Promise<T>,
    options: { exclusiveOf?: Handle | null } = {},
  ): Promise<T> {
    return await this.#slots.run(async () => {
      try {
        return await fn();
      } catch (e) {
        if (options.exclusiveOf && httpStatusOf(e) === 412) {
          throw this.#alreadyExists(options.exclusiveOf);
        }
        throw translateS3Error(e, ctx);
      }
    });
  }

  async #exists(key: string, ctx: S3ErrorContext): Promise<boolean> {
    try {
      await this.#request(
        ctx,
        () => this.#client.send(new HeadObjectCommand({ Bucket: this.#settings.bucket, Key: key })),
      );
      return true;
    } catch (e) {
      if (e instanceof NotFound) return false;
      throw e;
    }
  }

  async #multipart(
    h: Handle,
    key: string,
    data: Uint8Array,
    ifNoneMatch: string | undefined,
    ctx: S3ErrorContext,
  ): Promise<void> {
    const { partSize } = this.#settings;
    const count = this.#checkPartCount(h, data.length);
    const uploadId = await this.#startUpload(h, key, ctx);
    try {
      const results = await Promise.allSettled(
        Array.from({ length: count }, (_, i) =>
          this.#uploadPart(
            key,
            uploadId,
            i + 1,
            data.subarray(i * partSize, Math.min(data.length, (i + 1) * partSize)),
            ctx,
          )),
      );
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
      const parts = results.map((r) =>
        (r as PromiseFulfilledResult<{ ETag: string; PartNumber: number }>).value
      );
      await this.#completeUpload(h, key, uploadId, parts, ifNoneMatch, ctx);
    } catch (e) {
      await this.#abortUpload(key, uploadId, ctx);
      throw e;
    }
  }

  /** How many parts an object of `size` bytes needs; `RangeError` when more than S3 allows. */
  #checkPartCount(h: Handle, size: number): number {
    const { partSize } = this.#settings;
    const count = Math.ceil(size / partSize);
    if (count > MAX_PARTS) {
      throw new RangeError(
        `${
          describeHandle(h)
        } needs ${count} parts of ${partSize} bytes, more than S3 allows: use a larger part size`,
      );
    }
    return count;
  }

  /** Starts a multipart upload of `key`; its upload id. */
  async #startUpload(h: Handle, key: string, ctx: S3ErrorContext): Promise<string> {
    const created = await this.#request(ctx, () =>
      this.#client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.#settings.bucket,
          Key: key,
          ContentType: "application/octet-stream",
          ...this.#storageClassOf(h),
        }),
      ));
    const uploadId = created.UploadId;
    if (uploadId === undefined) {
      throw new TransientError(
        `S3 endpoint ${ctx.endpoint} started an upload for ${ctx.operation} without an upload id: try again`,
      );
    }
    return uploadId;
  }

  /** Uploads part `number` of an upload. */
  async #uploadPart(
    key: string,
    uploadId: string,
    number: number,
    body: Uint8Array,
    ctx: S3ErrorContext,
  ): Promise<{ ETag: string; PartNumber: number }> {
    const part = await this.#request(ctx, () =>
      this.#client.send(
        new UploadPartCommand({
          Bucket: this.#settings.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: number,
          Body: body,
          ContentLength: body.length,
        }),
      ));
    if (part.ETag === undefined) {
      throw new TransientError(
        `S3 endpoint ${ctx.endpoint} stored part ${number} of ${ctx.operation} without an ETag: try again`,
      );
    }
    return { ETag: part.ETag, PartNumber: number };
  }

  /** Completes an upload: the object appears whole. */
  async #completeUpload(
    h: Handle,
    key: string,
    uploadId: string,
    parts: { ETag: string; PartNumber: number }[],
    ifNoneMatch: string | undefined,
    ctx: S3ErrorContext,
  ): Promise<void> {
    await this.#request(ctx, () =>
      this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#settings.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
          ...(ifNoneMatch ? { IfNoneMatch: ifNoneMatch } : {}),
        }),
      ), { exclusiveOf: ifNoneMatch ? h : null });
  }

  /** Aborts an upload, best effort: parts of an unfinished upload are billed until aborted. */
  async #abortUpload(key: string, uploadId: string, ctx: S3ErrorContext): Promise<void> {
    await this.#request(ctx, () =>
      this.#client.send(
        new AbortMultipartUploadCommand({
          Bucket: this.#settings.bucket,
          Key: key,
          UploadId: uploadId,
        }),
      )).catch(() => {});
  }

  /** HEAD the bucket: a missing bucket, refused credentials or a dead endpoint fail here. */
  async #checkBucket(): Promise<void> {
    const ctx = this.#ctx(`open of bucket "${this.#settings.bucket}"`);
    try {
      await this.#request(
        ctx,
        () => this.#client.send(new HeadBucketCommand({ Bucket: this.#settings.bucket })),
      );
    } catch (e) {
      if (e instanceof NotFound) {
        // HEAD answers carry no error code: a 404 on the bucket means no bucket.
        throw new InvalidInput(
          `S3 bucket "${this.#settings.bucket}" does not exist: create it or fix the URI`,
        );
      }
      throw e;
    }
  }

  /**
   * Whether the server honours `If-None-Match: *` on PUT: writes a probe
   * object twice under `locks/.tmp-<24 hex>` (a name every lister ignores)
   * and removes it. A server that accepts the second PUT ignores the header.
   */
  async #probeConditionalWrites(): Promise<boolean> {
    const key = `${this.#settings.base}locks/.tmp-${randomBytes(12).toString("hex")}`;
    const ctx = this.#ctx("check of conditional writes");
    const put = () =>
      this.#slots.run(() =>
        this.#client.send(
          new PutObjectCommand({
            Bucket: this.#settings.bucket,
            Key: key,
            Body: new Uint8Array(0),
            ContentLength: 0,
            IfNoneMatch: "*",
          }),
        )
      );
    try {
      await put();
    } catch (e) {
      const error = translateS3Error(e, ctx);
      // Read-only credentials: writes fail anyway, so exclusivity does not matter.
      if (error instanceof AccessDenied) return false;
      // A server that rejects the header outright (400, 501 NotImplemented).
      if (error instanceof InvalidInput) return false;
      throw error;
    }
    try {
      await put();
      return false; // the second conditional PUT was accepted: the header is ignored
    } catch (e) {
      if (httpStatusOf(e) === 412) return true;
      const error = translateS3Error(e, ctx);
      if (error instanceof InvalidInput) return false;
      throw error;
    } finally {
      await this.#request(
        ctx,
        () =>
          this.#client.send(new DeleteObjectCommand({ Bucket: this.#settings.bucket, Key: key })),
      ).catch(() => {});
    }
  }
}

/** The first byte of a `Content-Range: bytes a-b/size` answer, or null. */
function rangeStartOf(contentRange: string | undefined): number | null {
  const m = contentRange === undefined ? null : /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(contentRange);
  return m ? Number(m[1]) : null;
}

/** The FileInfo of a key relative to the prefix when it belongs to `kind`, else null. */
function fileInfoOf(
  kind: FileKind,
  relative: string,
  size: number,
  modified: Date | undefined,
  etag?: string,
): FileInfo | null {
  let name: string;
  if (kind === "raw") {
    try {
      checkRawPath(relative);
    } catch {
      return null; // "folder/" markers and other keys that are no relative path
    }
    // Temporary names (such as the conditional-write probe) are never listed, as in FsStore.
    if (relative.split("/").some((segment) => segment.startsWith(".tmp-"))) return null;
    name = relative;
  } else {
    const h = handleOfKey(relative);
    if (h === null || h.kind !== kind) return null;
    name = h.name;
  }
  return {
    kind,
    name,
    size,
    ...(modified ? { mtimeMs: modified.getTime() } : {}),
    ...(etag ? { etag } : {}),
  };
}

function parseFlag(value: string, option: string, location: string): boolean {
  const v = value.toLowerCase();
  if (TRUE_VALUES.has(v)) return true;
  if (FALSE_VALUES.has(v)) return false;
  throw new InvalidInput(
    `S3 option ${option}="${value}" of ${location} is not a boolean: use true or false`,
  );
}

/** The `timeout` option, seconds (a decimal number greater than 0), in milliseconds. */
function parseTimeout(value: string, location: string): number {
  const seconds = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!(seconds > 0) || seconds > 86_400) {
    throw new InvalidInput(
      `S3 option timeout="${value}" of ${location} is not a number of seconds: use for example timeout=30`,
    );
  }
  return Math.max(1, Math.round(seconds * 1000));
}

function parseEndpoint(value: string, location: string): { url: string; shown: string } {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidInput(
      `S3 option endpoint of ${location} is not a URL: use endpoint=http://host:port`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidInput(
      `S3 option endpoint of ${location} is not an http or https URL: use endpoint=http://host:port`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    // Do not quote the value: it holds a secret.
    throw new InvalidInput(
      `S3 option endpoint of ${location} contains a user name or password: remove them and pass credentials through AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or a profile`,
    );
  }
  const shown = url.origin + (url.pathname === "/" ? "" : url.pathname);
  return { url: shown, shown };
}

const STORAGE_CLASSES: ReadonlySet<string> = new Set([
  "STANDARD",
  "REDUCED_REDUNDANCY",
  "STANDARD_IA",
  "ONEZONE_IA",
  "INTELLIGENT_TIERING",
  "GLACIER",
  "DEEP_ARCHIVE",
  "GLACIER_IR",
  "OUTPOSTS",
  "SNOW",
  "EXPRESS_ONEZONE",
]);

function checkStorageClass(value: string, location: string): StorageClass {
  if (!STORAGE_CLASSES.has(value)) {
    throw new InvalidInput(
      `S3 option storage_class="${value}" of ${location} is unknown: use one of ${
        [...STORAGE_CLASSES].join(", ")
      }`,
    );
  }
  return value as StorageClass;
}
