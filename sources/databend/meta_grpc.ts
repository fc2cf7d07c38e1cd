/**
 * Reads a meta export from a running Databend meta service over its public
 * gRPC API, as `databend-metactl export --grpc-api-address HOST:PORT` does,
 * and returns it as the same JSON-lines text (`[tree, entry]` per line).
 *
 * A minimal gRPC client over `node:http2` (cleartext HTTP/2 with prior
 * knowledge): it calls `meta.MetaService/ExportV1` (servers from 1.2.315)
 * and falls back to `meta.MetaService/Export` when the server answers
 * UNIMPLEMENTED. The export RPCs need no handshake and no token, so no
 * credentials are sent. See `META_GRPC.md` beside this file for the protocol
 * facts and where they come from.
 *
 * Error messages name the endpoint, never a credential.
 *
 * @module
 */
import http2 from "node:http2";
import protobuf from "protobufjs/light";
import {
  BendsaveError,
  InvalidInput,
  StoreUnreachable,
  TransientError,
} from "../../store/errors.ts";

/** Path of the export RPC with a chunk size (meta service 1.2.315 and later). */
export const EXPORT_V1_PATH = "/meta.MetaService/ExportV1";
/** Path of the original export RPC (32 lines per message). */
export const EXPORT_PATH = "/meta.MetaService/Export";

/** The gRPC status codes this module names in messages. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

const STATUS_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(GrpcStatus).map(([name, code]) => [code, name]),
);

/** The largest message accepted from the server; a bigger one means a bad peer. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 20_000;
const ADVICE = "check [meta] endpoints in the query config, or pass --meta-export-file";

// The two messages of meta.proto the export needs (package `meta`).
const metaNamespace = new protobuf.Root().define("meta");
const ExportRequestType = new protobuf.Type("ExportRequest").add(
  new protobuf.Field("chunk_size", 10, "uint64"),
);
const ExportedChunkType = new protobuf.Type("ExportedChunk").add(
  new protobuf.Field("data", 10, "string", "repeated"),
);
metaNamespace.add(ExportRequestType).add(ExportedChunkType);

/** Options of {@linkcode exportMetaGrpc}. */
export interface MetaGrpcOptions {
  /**
   * Milliseconds to wait for a connection and for the server's answer, and
   * the longest silence allowed between two messages while the caller waits
   * for data (default 20 000). Time the caller spends between reads does
   * not count.
   */
  readonly timeoutMs?: number;
  /** Aborts connecting and reading; the export then fails with the signal's reason. */
  readonly signal?: AbortSignal;
  /**
   * Lines per gRPC message asked of an ExportV1 server (the server's default
   * is 32). Ignored by older servers, which always send 32.
   */
  readonly chunkSize?: number;
  /**
   * Accepted for symmetry with the query config's `[meta]` section and
   * ignored: the export RPCs check no token, so no handshake is made and no
   * credential is sent.
   */
  readonly username?: string;
  /** Ignored, like {@linkcode MetaGrpcOptions.username}; never sent, never printed. */
  readonly password?: string;
  /**
   * TLS to the meta service (the query config's `rpc_tls_meta_server_root_ca_cert`
   * and `rpc_tls_meta_service_domain_name`): the CA certificates (PEM) the
   * server's certificate must chain to, and the name it must carry.
   */
  readonly tls?: { readonly ca: string; readonly servername: string };
}

/** The meta service answered with a gRPC error status, or broke the gRPC protocol. */
export class MetaServiceError extends BendsaveError {
  override readonly code = "meta_service";
  /** The `host:port` of the meta service that answered. */
  readonly endpoint: string;
  /** The gRPC status code, when the server sent one. */
  readonly status?: number;
  /** The server's `grpc-message`, decoded, when it sent one. */
  readonly grpcMessage?: string;
  constructor(
    message: string,
    details: { endpoint: string; status?: number; grpcMessage?: string },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.endpoint = details.endpoint;
    if (details.status !== undefined) this.status = details.status;
    if (details.grpcMessage !== undefined) this.grpcMessage = details.grpcMessage;
  }
}

/** A meta service address: `host:port`, `[v6]:port`, optionally with `http://`. */
interface Target {
  /** `host:port` as used in messages and in `:authority`. */
  readonly label: string;
  readonly url: string;
  readonly tls?: { readonly ca: string; readonly servername: string };
}

/** The endpoint failed before answering anything: try the next one. */
class EndpointDown extends Error {
  readonly reason: string;
  constructor(reason: string) {
    super(reason);
    this.reason = reason;
  }
}

const ENDPOINT_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

function parseEndpoint(raw: string, tls?: Target["tls"]): Target {
  if (typeof raw !== "string") throw new TypeError("a meta endpoint must be a string");
  let s = raw.trim();
  if (tls !== undefined) s = s.replace(/^https:\/\//i, "");
  if (/^https:\/\//i.test(s)) {
    throw new InvalidInput(
      `meta endpoint "${
        s.replace(/^https:\/\/[^@/]*@/i, "https://")
      }" uses TLS: set rpc_tls_meta_server_root_ca_cert (and rpc_tls_meta_service_domain_name) in [meta] of the query config`,
    );
  }
  s = s.replace(/^http:\/\//i, "").replace(/\/+$/, "");
  const m = ENDPOINT_RE.exec(s);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) {
    // Never quote a value with user info in it: it may hold a password.
    const shown = s.includes("@") ? "(a value with user info)" : `"${s}"`;
    throw new InvalidInput(
      `meta endpoint ${shown} is not host:port: fix [meta] endpoints in the query config`,
    );
  }
  const label = `${m[1]}:${port}`;
  return tls === undefined
    ? { label, url: `http://${label}` }
    : { label, url: `https://${label}`, tls };
}

/** A system error code (`ECONNREFUSED`...) or the error's name, looking into causes. */
function errorCode(e: unknown): string {
  let cur: unknown = e;
  for (let depth = 0; depth < 4 && cur !== null && typeof cur === "object"; depth++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === "string" && c !== "") return c;
    cur = (cur as { cause?: unknown }).cause;
  }
  return e instanceof Error ? e.name : "unknown error";
}

function statusName(code: number): string {
  return STATUS_NAMES.get(code) ?? "UNKNOWN_CODE";
}

/** Decodes a percent-encoded `grpc-message`, keeps it printable and short. */
function decodeGrpcMessage(raw: unknown): string | undefined {
  if (typeof raw !== "string" || raw === "") return undefined;
  let text = raw;
  try {
    text = decodeURIComponent(raw);
  } catch {
    // Not valid percent-encoding: keep the raw text.
  }
  // deno-lint-ignore no-control-regex
  text = text.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function headerValue(h: http2.IncomingHttpHeaders | undefined, name: string): string | undefined {
  const v = h?.[name];
  if (Array.isArray(v)) return v[0];
  return typeof v === "string" ? v : undefined;
}

/** A gRPC length-prefixed message frame around `payload`. */
function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, 5);
  return out;
}

/** Splits a byte stream into gRPC message payloads, copying each byte at most once. */
class FrameReader {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #need: number | undefined;
  readonly #endpoint: string;

  constructor(endpoint: string) {
    this.#endpoint = endpoint;
  }

  /** Bytes received and not yet returned as a message. */
  get buffered(): number {
    return this.#buffered + (this.#need === undefined ? 0 : 5);
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /** The next complete message payload, or undefined when more bytes are needed. */
  next(): Uint8Array | undefined {
    if (this.#need === undefined) {
      if (this.#buffered < 5) return undefined;
      const header = this.#take(5);
      const length = new DataView(header.buffer, header.byteOffset, 5).getUint32(1);
      if (header[0] !== 0) {
        throw new MetaServiceError(
          `the meta service at ${this.#endpoint} sent a compressed gRPC message, which this client does not accept: ${ADVICE}`,
          { endpoint: this.#endpoint },
        );
      }
      if (length > MAX_MESSAGE_BYTES) {
        throw new MetaServiceError(
          `the meta service at ${this.#endpoint} sent a gRPC message of ${length} bytes, more than the ${MAX_MESSAGE_BYTES} byte limit: pass a smaller chunk size`,
          { endpoint: this.#endpoint },
        );
      }
      this.#need = length;
    }
    if (this.#buffered < this.#need) return undefined;
    const payload = this.#take(this.#need);
    this.#need = undefined;
    return payload;
  }

  #take(n: number): Uint8Array {
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length, n - filled);
      out.set(c.subarray(0, k), filled);
      filled += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    return out;
  }
}

/** Races `p` against a timer and the signal; always clears the timer. */
async function bounded<T>(
  p: Promise<T>,
  ms: number,
  onTimeout: () => Error,
  signal: AbortSignal | undefined,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(onTimeout()), ms);
        if (signal) {
          onAbort = () => reject(signal.reason);
          if (signal.aborted) onAbort();
          else signal.addEventListener("abort", onAbort, { once: true });
        }
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (signal && onAbort) signal.removeEventListener("abort", onAbort);
  }
}

/** Opens an HTTP/2 session; any failure is an {@link EndpointDown}. */
async function connect(
  target: Target,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<http2.ClientHttp2Session> {
  const session = target.tls === undefined
    ? http2.connect(target.url)
    : http2.connect(target.url, { ca: target.tls.ca, servername: target.tls.servername });
  let onError: ((e: unknown) => void) | undefined;
  try {
    await bounded(
      new Promise<void>((resolve, reject) => {
        onError = (e) => reject(new EndpointDown(errorCode(e)));
        session.once("error", onError);
        session.once("connect", () => resolve());
      }),
      timeoutMs,
      () => new EndpointDown(`no connection after ${timeoutMs} ms`),
      signal,
    );
  } catch (e) {
    await destroySession(session);
    throw e;
  } finally {
    if (onError) session.off("error", onError);
  }
  // Later session errors also fail the open stream, where they are reported.
  session.on("error", () => {});
  return session;
}

async function destroySession(session: http2.ClientHttp2Session): Promise<void> {
  if (session.destroyed) return;
  const closed = new Promise<void>((resolve) => session.once("close", () => resolve()));
  session.destroy();
  await closed;
}

/**
 * One server-streaming call: sends `body`, yields each response message
 * payload, and checks the gRPC status at the end. Failures before the
 * response headers are {@link EndpointDown}.
 */
async function* streamingCall(
  session: http2.ClientHttp2Session,
  target: Target,
  path: string,
  body: Uint8Array,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  const rpc = path.slice(path.lastIndexOf("/") + 1);
  const stream = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    "te": "trailers",
    "grpc-accept-encoding": "identity",
    "user-agent": "bendsave",
  });
  let headers: http2.IncomingHttpHeaders | undefined;
  let trailers: http2.IncomingHttpHeaders | undefined;
  let streamError: unknown;
  stream.on("response", (h) => (headers = h));
  stream.on("trailers", (t) => (trailers = t));
  stream.on("error", (e) => (streamError ??= e));
  const closed = new Promise<void>((resolve) => stream.once("close", () => resolve()));
  const onAbort = () => stream.destroy(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const reader = new FrameReader(target.label);
  let messages = 0;
  try {
    stream.end(frame(body));
    // Wait for the response headers (or a trailers-only answer, or a failure).
    try {
      await bounded(
        new Promise<void>((resolve, reject) => {
          if (headers) return resolve();
          stream.once("response", () => resolve());
          stream.once("close", () => {
            if (headers) return resolve();
            const why = streamError === undefined ? "closed the stream" : errorCode(streamError);
            reject(new EndpointDown(why));
          });
        }),
        timeoutMs,
        () => new EndpointDown(`no answer after ${timeoutMs} ms`),
        signal,
      );
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      if (e instanceof EndpointDown) throw e;
      throw new EndpointDown(errorCode(e));
    }
    const httpStatus = Number(headers?.[":status"]);
    const contentType = headerValue(headers, "content-type") ?? "";
    if (httpStatus !== 200 || !contentType.startsWith("application/grpc")) {
      throw new EndpointDown(`not a gRPC service: HTTP status ${httpStatus}`);
    }
    const early = headerValue(headers, "grpc-status");
    if (early !== undefined) {
      // Trailers-only answer: the status came with the headers.
      await closed;
      throw statusError(target, rpc, early, headerValue(headers, "grpc-message"), 0);
    }
    const it = stream[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
    for (;;) {
      let r: IteratorResult<Uint8Array>;
      try {
        r = await bounded(
          it.next(),
          timeoutMs,
          () =>
            new TransientError(
              `the meta service at ${target.label} sent nothing for ${timeoutMs} ms during ${rpc} after ${messages} messages: the export is incomplete, try again`,
            ),
          signal,
        );
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        if (e instanceof BendsaveError) throw e;
        throw new TransientError(
          `the connection to the meta service at ${target.label} broke during ${rpc} after ${messages} messages (${
            errorCode(e)
          }): the export is incomplete, try again`,
          { cause: e },
        );
      }
      if (r.done) break;
      reader.push(r.value);
      for (let m = reader.next(); m !== undefined; m = reader.next()) {
        messages++;
        yield m;
      }
    }
    await closed;
    if (streamError !== undefined) {
      if (signal?.aborted) throw signal.reason;
      throw new TransientError(
        `the connection to the meta service at ${target.label} broke during ${rpc} after ${messages} messages (${
          errorCode(streamError)
        }): the export is incomplete, try again`,
        { cause: streamError },
      );
    }
    const status = headerValue(trailers, "grpc-status");
    if (status === undefined) {
      throw new TransientError(
        `the meta service at ${target.label} closed the ${rpc} stream after ${messages} messages without a gRPC status (the connection was dropped): the export is incomplete, try again`,
      );
    }
    if (reader.buffered > 0) {
      throw new MetaServiceError(
        `the meta service at ${target.label} ended ${rpc} in the middle of a message: the export is incomplete, try again`,
        { endpoint: target.label },
      );
    }
    if (status !== "0") {
      throw statusError(target, rpc, status, headerValue(trailers, "grpc-message"), messages);
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!stream.closed) {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      await closed;
    }
  }
}

function statusError(
  target: Target,
  rpc: string,
  rawStatus: string,
  rawMessage: string | undefined,
  messages: number,
): MetaServiceError {
  const status = Number(rawStatus);
  const grpcMessage = decodeGrpcMessage(rawMessage);
  const text = grpcMessage === undefined ? "" : ` (${JSON.stringify(grpcMessage)})`;
  const when = messages === 0 ? "" : ` after ${messages} messages`;
  const details: { endpoint: string; status: number; grpcMessage?: string } = {
    endpoint: target.label,
    status,
  };
  if (grpcMessage !== undefined) details.grpcMessage = grpcMessage;
  return new MetaServiceError(
    `the meta service at ${target.label} answered ${rpc} with gRPC status ${status} ${
      statusName(status)
    }${text}${when}: check the meta service and its log, or pass --meta-export-file`,
    details,
  );
}

/**
 * Exports the meta data of a running meta service, as JSON lines
 * (`[tree, entry]`, each ending in `\n`), in UTF-8. Each yielded buffer
 * holds the whole lines of one gRPC message (32 by default).
 *
 * Endpoints are tried in order until one answers; a meta service that does
 * not know `ExportV1` (older than 1.2.315) is asked with `Export`. Reading is
 * back-pressured: nothing more is read from the network while the caller
 * has not asked for the next buffer. The connection is closed when the
 * export ends, fails, or the caller stops early.
 *
 * The endpoints are checked at once; the connection is made on the first
 * read.
 *
 * @example
 * ```ts ignore
 * import { splitLines } from "./meta_export.ts";
 * for await (const line of splitLines(exportMetaGrpc(["127.0.0.1:9191"]))) {
 *   console.log(line);
 * }
 * ```
 *
 * @throws {InvalidInput} at once, when there is no endpoint or one is not `host:port`.
 * @throws {RangeError} at once, when `chunkSize` or `timeoutMs` is not a positive integer.
 * @throws {StoreUnreachable} when no endpoint could be reached (each is named).
 * @throws {MetaServiceError} when the service answers with an error status or
 * breaks the gRPC protocol.
 * @throws {TransientError} when the connection breaks or stalls mid-export:
 * the export is incomplete and never returned as if whole.
 */
export function exportMetaGrpc(
  endpoints: readonly string[],
  options: MetaGrpcOptions = {},
): AsyncGenerator<Uint8Array> {
  if (endpoints.length === 0) {
    throw new InvalidInput(`no meta endpoints are given: ${ADVICE}`);
  }
  const targets = endpoints.map((e) => parseEndpoint(e, options.tls));
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`timeoutMs must be a positive integer, got ${timeoutMs}`);
  }
  const chunkSize = options.chunkSize;
  if (chunkSize !== undefined && (!Number.isSafeInteger(chunkSize) || chunkSize <= 0)) {
    throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
  }
  return run(targets, timeoutMs, chunkSize, options.signal);
}

async function* run(
  targets: readonly Target[],
  timeoutMs: number,
  chunkSize: number | undefined,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  const v1Body = ExportRequestType.encode(
    chunkSize === undefined ? {} : { chunk_size: chunkSize },
  ).finish();
  const encoder = new TextEncoder();
  const failures: string[] = [];
  for (const target of targets) {
    signal?.throwIfAborted();
    let session: http2.ClientHttp2Session;
    try {
      session = await connect(target, timeoutMs, signal);
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      if (!(e instanceof EndpointDown)) throw e;
      failures.push(`${target.label} (${e.reason})`);
      continue;
    }
    let answered = false;
    try {
      for (
        const [path, body] of [[EXPORT_V1_PATH, v1Body], [EXPORT_PATH, new Uint8Array()]] as const
      ) {
        try {
          for await (
            const payload of streamingCall(session, target, path, body, timeoutMs, signal)
          ) {
            answered = true;
            let chunk: { data?: string[] };
            try {
              chunk = ExportedChunkType.decode(payload) as unknown as { data?: string[] };
            } catch (e) {
              throw new MetaServiceError(
                `the meta service at ${target.label} sent a message that is not an ExportedChunk: ${ADVICE}`,
                { endpoint: target.label },
                { cause: e },
              );
            }
            const lines = chunk.data ?? [];
            if (lines.length === 0) continue;
            if (lines.some((l) => l.includes("\n"))) {
              throw new MetaServiceError(
                `the meta service at ${target.label} sent an export line with a line break in it: ${ADVICE}`,
                { endpoint: target.label },
              );
            }
            yield encoder.encode(lines.join("\n") + "\n");
            signal?.throwIfAborted();
          }
          return;
        } catch (e) {
          if (
            !answered && path === EXPORT_V1_PATH && e instanceof MetaServiceError &&
            e.status === GrpcStatus.UNIMPLEMENTED
          ) {
            continue; // A server older than 1.2.315: ask with Export.
          }
          throw e;
        }
      }
    } catch (e) {
      if (answered || !(e instanceof EndpointDown || isUnavailable(e))) throw e;
      failures.push(`${target.label} (${e instanceof EndpointDown ? e.reason : "UNAVAILABLE"})`);
    } finally {
      await destroySession(session);
    }
  }
  // A TLS server hangs up on a plain HTTP/2 client: say what would fix that.
  const tlsHint = targets.some((t) => t.tls === undefined) &&
      failures.some((f) => /closed|ECONNRESET|PROTOCOL/i.test(f))
    ? " (a meta service with TLS needs rpc_tls_meta_server_root_ca_cert in [meta])"
    : "";
  throw new StoreUnreachable(
    `cannot reach the meta service at ${failures.join(", ")}: ${ADVICE}${tlsHint}`,
  );
}

function isUnavailable(e: unknown): boolean {
  return e instanceof MetaServiceError && e.status === GrpcStatus.UNAVAILABLE;
}
