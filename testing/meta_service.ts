/**
 * A stand-in Databend meta service for tests: a cleartext HTTP/2 gRPC server
 * on loopback (`node:http2`) that answers `meta.MetaService/ExportV1` and
 * `meta.MetaService/Export` the way the real service does — the given lines
 * in `ExportedChunk` messages (`repeated string data = 10`), 32 per message
 * unless the ExportV1 request names a `chunk_size` (field 10), then real
 * trailers with `grpc-status: 0`. Any other path gets a trailers-only
 * UNIMPLEMENTED (12), as tonic answers.
 *
 * It encodes its messages by hand (protobuf Writer, explicit tags) so that it
 * does not share the client's message definitions, and honours HTTP/2
 * back-pressure: it writes no further while the client is not reading.
 *
 * Faults: an error status (at once or after some lines), a server older
 * than 1.2.315 (ExportV1 is UNIMPLEMENTED), a connection dropped mid-stream
 * (no trailers), a stream reset mid-stream, compressed messages.
 *
 * @module
 */
import http2 from "node:http2";
import protobuf from "protobufjs/light";

/** Options of {@linkcode startMetaService}. */
export interface MetaServiceOptions {
  /** The export lines, without line ends. */
  readonly lines: readonly string[];
  /** Lines per message when the request names none (default 32, as the real service). */
  readonly chunkSize?: number;
  /** End every export call with this status: at once, or after `failAfterLines`. */
  readonly failWith?: { readonly code: number; readonly message: string };
  /** With `failWith`: send this many lines first, then the error trailers. */
  readonly failAfterLines?: number;
  /** Behave as a server older than 1.2.315: ExportV1 answers UNIMPLEMENTED. */
  readonly legacy?: boolean;
  /** Destroy the connection (no trailers) once this many lines are sent. */
  readonly dropAfterLines?: number;
  /** Reset the stream (RST_STREAM INTERNAL_ERROR) once this many lines are sent. */
  readonly resetAfterLines?: number;
  /** Mark data messages as compressed (the client must refuse them). */
  readonly compressed?: boolean;
  /** Serve over TLS with this key and certificate (PEM). */
  readonly tls?: { readonly key: string; readonly cert: string };
}

/** One RPC the service received. */
export interface MetaServiceRequest {
  readonly path: string;
  /** The request headers (pseudo-headers included). */
  readonly headers: Readonly<Record<string, string>>;
  /** `chunk_size` of an ExportV1 request, when it names one. */
  readonly chunkSize?: number;
}

/** A running test meta service. */
export interface MetaService {
  /** `127.0.0.1:<port>`, as written in a query config's `[meta] endpoints`. */
  readonly endpoint: string;
  /** Export calls served (ExportV1 and Export; an ExportV1 refused as UNIMPLEMENTED is not one). */
  readonly calls: number;
  /** Every RPC received, in order. */
  readonly requests: readonly MetaServiceRequest[];
  /** Lines handed to HTTP/2 so far, over all calls. */
  readonly linesSent: number;
  /** Export calls the client cancelled (or whose stream closed) before the end. */
  readonly cancelled: number;
  /** Stops the server and closes every connection. */
  close(): Promise<void>;
}

const DATA_TAG = (10 << 3) | 2; // ExportedChunk.data: field 10, length-delimited
const CHUNK_SIZE_TAG = (10 << 3) | 0; // ExportRequest.chunk_size: field 10, varint

function frame(payload: Uint8Array, compressed: boolean): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out[0] = compressed ? 1 : 0;
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, 5);
  return out;
}

function encodeChunk(lines: readonly string[]): Uint8Array {
  const w = protobuf.Writer.create();
  for (const line of lines) w.uint32(DATA_TAG).string(line);
  return w.finish();
}

/** `chunk_size` from the first framed ExportRequest of a request body. */
function decodeChunkSize(body: Uint8Array): number | undefined {
  if (body.length < 5) return undefined;
  const length = new DataView(body.buffer, body.byteOffset).getUint32(1);
  const r = protobuf.Reader.create(body.subarray(5, 5 + length));
  let size: number | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === CHUNK_SIZE_TAG) size = Number(r.uint64().toString());
    else r.skipType(tag & 7);
  }
  return size;
}

function flatHeaders(h: http2.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : String(v);
  }
  return out;
}

/** Starts a test meta service on a free loopback port. */
export async function startMetaService(options: MetaServiceOptions): Promise<MetaService> {
  const server = options.tls === undefined
    ? http2.createServer()
    : http2.createSecureServer({ key: options.tls.key, cert: options.tls.cert });
  const sessions = new Set<http2.ServerHttp2Session>();
  const requests: MetaServiceRequest[] = [];
  let calls = 0;
  let linesSent = 0;
  let cancelled = 0;

  server.on("session", (s) => {
    sessions.add(s);
    s.on("error", () => {});
    s.on("close", () => sessions.delete(s));
  });

  const trailersOnly = (stream: http2.ServerHttp2Stream, code: number, message: string) => {
    stream.respond({
      ":status": 200,
      "content-type": "application/grpc",
      "grpc-status": String(code),
      "grpc-message": encodeURIComponent(message),
    }, { endStream: true });
  };

  /** Writes, waiting while HTTP/2 flow control holds the data back; false when closed. */
  const write = async (stream: http2.ServerHttp2Stream, bytes: Uint8Array): Promise<boolean> => {
    if (stream.destroyed || stream.closed) return false;
    if (stream.write(bytes)) return true;
    await new Promise<void>((resolve) => {
      const done = () => {
        stream.off("drain", done);
        stream.off("close", done);
        resolve();
      };
      stream.on("drain", done);
      stream.on("close", done);
    });
    return !stream.destroyed && !stream.closed;
  };

  const serveExport = async (stream: http2.ServerHttp2Stream, perMessage: number) => {
    const { lines, failWith, failAfterLines, dropAfterLines, resetAfterLines } = options;
    if (failWith && failAfterLines === undefined) {
      trailersOnly(stream, failWith.code, failWith.message);
      return;
    }
    let status = { code: 0, message: "" };
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
      waitForTrailers: true,
    });
    stream.on("wantTrailers", () => {
      stream.sendTrailers({
        "grpc-status": String(status.code),
        "grpc-message": encodeURIComponent(status.message),
      });
    });
    const stopAt = Math.min(
      lines.length,
      failWith ? failAfterLines ?? 0 : lines.length,
      dropAfterLines ?? lines.length,
      resetAfterLines ?? lines.length,
    );
    let sent = 0;
    while (sent < stopAt) {
      const batch = lines.slice(sent, Math.min(sent + perMessage, stopAt));
      if (!await write(stream, frame(encodeChunk(batch), options.compressed === true))) {
        cancelled++;
        return;
      }
      sent += batch.length;
      linesSent += batch.length;
    }
    if (dropAfterLines !== undefined && sent >= dropAfterLines) {
      // Let the client read what was sent, then drop the connection, as a
      // meta service that dies mid-export does.
      await new Promise<void>((resolve) => stream.write(new Uint8Array(0), () => resolve()));
      await new Promise<void>((resolve) => setTimeout(resolve, 50));
      stream.session?.destroy();
      return;
    }
    if (resetAfterLines !== undefined && sent >= resetAfterLines) {
      await new Promise<void>((resolve) => setTimeout(resolve, 50));
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (failWith) status = { code: failWith.code, message: failWith.message };
    stream.end();
  };

  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    const path = String(headers[":path"]);
    const parts: Uint8Array[] = [];
    stream.on("data", (c: Uint8Array) => parts.push(c));
    stream.on("end", () => {
      const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        body.set(p, at);
        at += p.length;
      }
      const chunkSize = path.endsWith("/ExportV1") ? decodeChunkSize(body) : undefined;
      const record: { path: string; headers: Record<string, string>; chunkSize?: number } = {
        path,
        headers: flatHeaders(headers),
      };
      if (chunkSize !== undefined) record.chunkSize = chunkSize;
      requests.push(record);
      const isV1 = path === "/meta.MetaService/ExportV1" && options.legacy !== true;
      if (!isV1 && path !== "/meta.MetaService/Export") {
        trailersOnly(stream, 12, `Operation is not implemented or not supported`);
        return;
      }
      calls++;
      const perMessage = isV1 && chunkSize !== undefined && chunkSize > 0
        ? chunkSize
        : options.chunkSize ?? 32;
      serveExport(stream, perMessage).catch(() => stream.destroy());
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");

  return {
    endpoint: `127.0.0.1:${address.port}`,
    get calls() {
      return calls;
    },
    get requests() {
      return requests;
    },
    get linesSent() {
      return linesSent;
    },
    get cancelled() {
      return cancelled;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(
        [...sessions].map((s) =>
          s.destroyed ? undefined : new Promise<void>((resolve) => {
            s.once("close", () => resolve());
            s.destroy();
          })
        ),
      );
      await closed;
    },
  };
}
