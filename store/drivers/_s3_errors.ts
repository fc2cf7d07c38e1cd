/**
 * How the S3 driver turns the AWS SDK's errors into bendsave's domain errors.
 *
 * Messages are built from the S3 error code, the HTTP status and what was
 * being done, never from the SDK's error object: S3 error bodies can echo
 * the access key id, the string to sign or the canonical request, and the
 * SDK copies every field of the body onto the error. For the same reason no
 * SDK error is attached as `cause`.
 *
 * @module
 */
import {
  AccessDenied,
  BendsaveError,
  InvalidInput,
  NotFound,
  StorageFull,
  StoreUnreachable,
  TransientError,
} from "../errors.ts";

/** What the driver was doing when a request failed, for messages. */
export interface S3ErrorContext {
  /** A short phrase, e.g. `load pack "ab12..."`. */
  readonly operation: string;
  readonly bucket: string;
  /** The store's location, `s3://bucket/prefix`. */
  readonly location: string;
  /** The endpoint as shown to people (no credentials). */
  readonly endpoint: string;
  /** The silence after which a request fails, for the message of a timeout. */
  readonly timeoutMs?: number;
}

/** Transport error codes that mean the endpoint cannot be reached at all. */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_NONAME",
  "EAI_FAIL",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** S3 error codes (any status) worth another attempt. */
const TRANSIENT_S3_CODES: ReadonlySet<string> = new Set([
  "SlowDown",
  "ServiceUnavailable",
  "InternalError",
  "RequestTimeout",
  "OperationAborted",
  "ConditionalRequestConflict",
  "NoSuchUpload",
  "IncompleteBody",
  "XAmzContentSHA256Mismatch",
  "BadDigest",
]);

/** The HTTP status of an SDK service error, or undefined for a transport error. */
export function httpStatusOf(e: unknown): number | undefined {
  const status = (e as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata
    ?.httpStatusCode;
  return typeof status === "number" ? status : undefined;
}

/** The S3 error code of an SDK error (`NoSuchKey`, `SlowDown`...), or "". */
export function s3CodeOf(e: unknown): string {
  const err = e as { Code?: unknown; name?: unknown } | null;
  if (typeof err?.Code === "string") return err.Code;
  return typeof err?.name === "string" ? err.name : "";
}

/**
 * The domain error for an error thrown by the SDK (or while reading a
 * response body). Domain errors are returned unchanged; anything else that
 * carries no HTTP status (even the `TypeError` of a failed fetch) is a
 * transport error.
 */
export function translateS3Error(e: unknown, ctx: S3ErrorContext): Error {
  if (e instanceof BendsaveError) return e;
  if (isCredentialsError(e)) {
    return new AccessDenied(
      `no usable AWS credentials were found for ${ctx.location}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give ?profile= naming a profile of the shared credentials file`,
    );
  }
  const status = httpStatusOf(e);
  if (status === undefined) return transportError(e, ctx);
  const code = s3CodeOf(e);
  const what = `${ctx.operation} in ${ctx.location}`;
  const answer = code !== "" && code !== String(status) ? `${status} ${code}` : `${status}`;
  if (code === "NoSuchBucket") {
    return new InvalidInput(
      `S3 bucket "${ctx.bucket}" does not exist: create it or fix the URI`,
    );
  }
  if (code === "RequestTimeTooSkewed") {
    return new AccessDenied(
      `S3 refused ${what} because this machine's clock is off: set the clock (NTP) and run again`,
    );
  }
  if (status === 404) {
    return new NotFound(`${ctx.operation} found nothing in ${ctx.location}: check the name`);
  }
  if (status === 403) {
    const fix = code === "InvalidAccessKeyId" || code === "SignatureDoesNotMatch"
      ? "check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or the profile)"
      : code === "ExpiredToken" || code === "TokenRefreshRequired"
      ? "refresh the credentials"
      : "check the credentials and the bucket policy";
    return new AccessDenied(
      `access to S3 bucket "${ctx.bucket}" was denied (${answer}) for ${ctx.operation}: ${fix}`,
    );
  }
  if (
    code === "PermanentRedirect" || code === "AuthorizationHeaderMalformed" || status === 301
  ) {
    const region = bucketRegionOf(e);
    return new InvalidInput(
      `S3 bucket "${ctx.bucket}" is in another region${region ? ` (${region})` : ""}: add ?region=${
        region ?? "<its region>"
      } to the URI`,
    );
  }
  if (status === 507 || code === "XMinioStorageFull" || code === "QuotaExceeded") {
    return new StorageFull(
      `S3 storage of bucket "${ctx.bucket}" is full (${answer}) for ${ctx.operation}: free space or raise the quota`,
    );
  }
  if (
    status === 429 || status === 500 || status === 502 || status === 503 || status === 504 ||
    TRANSIENT_S3_CODES.has(code)
  ) {
    return new TransientError(
      `S3 endpoint ${ctx.endpoint} answered ${answer} to ${what}: the service is busy or failing, try again later`,
    );
  }
  return new InvalidInput(
    `S3 refused ${what} with ${answer}: check the URI options and the bucket configuration`,
  );
}

/** The SDK's "no credentials" failures (no provider of the chain had any). */
function isCredentialsError(e: unknown): boolean {
  const err = e as { name?: unknown; message?: unknown } | null;
  return err?.name === "CredentialsProviderError" ||
    (typeof err?.message === "string" && err.message.startsWith("Could not load credentials"));
}

function transportError(e: unknown, ctx: S3ErrorContext): Error {
  const code = transportCode(e);
  if (code !== "" && UNREACHABLE_CODES.has(code)) {
    return new StoreUnreachable(
      `cannot reach S3 endpoint ${ctx.endpoint} (${code}): check the endpoint= option of the repository URI and the network`,
    );
  }
  if (code === "TimeoutError" || code === "ETIMEDOUT") {
    const after = ctx.timeoutMs !== undefined ? ` within ${ctx.timeoutMs / 1000} s` : "";
    return new TransientError(
      `S3 endpoint ${ctx.endpoint} did not answer ${ctx.operation} in ${ctx.location}${after}: check the endpoint= option and the network, or allow more time with ?timeout=<seconds>`,
    );
  }
  const detail = code !== "" ? code : "the connection failed";
  return new TransientError(
    `the connection to S3 endpoint ${ctx.endpoint} broke during ${ctx.operation} (${detail}): try again later`,
  );
}

/** The system error code of a transport error (`ECONNRESET`...), looking into causes. */
function transportCode(e: unknown): string {
  let cur: unknown = e;
  for (let depth = 0; depth < 4 && cur !== null && typeof cur === "object"; depth++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === "string" && c !== "") return c;
    const name = (cur as { name?: unknown }).name;
    if (name === "TimeoutError" || name === "AbortError") return name;
    cur = (cur as { cause?: unknown }).cause;
  }
  return "";
}

function bucketRegionOf(e: unknown): string | null {
  const headers = (e as { $response?: { headers?: Record<string, string> } } | null)?.$response
    ?.headers;
  const region = headers?.["x-amz-bucket-region"];
  return typeof region === "string" && /^[a-z0-9-]+$/.test(region) ? region : null;
}
