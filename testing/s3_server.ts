/**
 * A real S3-compatible server on loopback for tests: s3rver (npm) run
 * in-process, on a free port, storing into a temporary directory, silent.
 *
 * s3rver ignores `If-None-Match: *` on PUT. By default this server adds it
 * in front of s3rver, as AWS S3 does since 2024: a conditional PUT (or
 * multipart completion) of an existing key gets 412 PreconditionFailed, and
 * conditional writes of one key are serialized so exactly one wins. Pass
 * `conditionalWrites: false` for plain s3rver behaviour.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import S3rver from "s3rver";

/** Options of {@linkcode startS3Server}. */
export interface S3ServerOptions {
  /** Honour `If-None-Match: *` on PUT and multipart completion (default true). */
  readonly conditionalWrites?: boolean;
}

/** A running test server. */
export interface S3Server {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /** The region s3rver expects (its continuation tokens name it). */
  readonly region: string;
  /** The credentials s3rver accepts. */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Requests the server has received so far. */
  readonly requests: number;
  /** Creates a bucket (names of 3 to 63 characters). */
  bucket(name: string): Promise<void>;
  /** Every key stored in a bucket, sorted (read from the store, not through S3). */
  keys(bucket: string): Promise<string[]>;
  /** Stops the server and deletes everything it stored. */
  stop(): Promise<void>;
}

/** The minimal surface of s3rver this module uses. */
interface S3rverApp {
  callback(): (req: http.IncomingMessage, res: http.ServerResponse) => void;
  store: {
    putBucket(name: string): Promise<unknown>;
    existsObject(bucket: string, key: string): Promise<boolean>;
    listObjects(
      bucket: string,
      options: Record<string, unknown>,
    ): Promise<{ objects: { key: string }[] }>;
  };
}

const PRECONDITION_FAILED = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' +
  "<Code>PreconditionFailed</Code>" +
  "<Message>At least one of the pre-conditions you specified did not hold</Message>" +
  "<Condition>If-None-Match</Condition></Error>";

/**
 * Starts s3rver on 127.0.0.1 with a free port and an empty temporary
 * directory. Call `stop` when done.
 *
 * @example
 * ```ts ignore
 * import { startS3Server } from "./s3_server.ts";
 * const server = await startS3Server();
 * await server.bucket("repo-test");
 * // ... s3://repo-test/prefix?endpoint=${server.endpoint}&region=us-east-1
 * await server.stop();
 * ```
 */
export async function startS3Server(options: S3ServerOptions = {}): Promise<S3Server> {
  patchDesForS3rver();
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "bendsave-s3rver-"));
  const app = new (S3rver as unknown as new (o: Record<string, unknown>) => S3rverApp)({
    directory,
    silent: true,
    resetOnClose: false,
  });
  const handle = app.callback();
  const conditional = options.conditionalWrites ?? true;
  const busy = new Map<string, Promise<void>>();
  let requests = 0;

  /** Answers a conditional write: 412 when the key exists, else s3rver's answer. */
  const conditionalWrite = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    bucket: string,
    key: string,
  ): Promise<void> => {
    if (await app.store.existsObject(bucket, key)) {
      req.resume();
      res.writeHead(412, { "content-type": "application/xml" });
      res.end(PRECONDITION_FAILED);
    } else {
      handle(req, res);
    }
    if (!res.writableFinished) await new Promise((resolve) => res.once("close", resolve));
  };

  const server = http.createServer((req, res) => {
    requests++;
    const url = new URL(req.url ?? "/", "http://localhost");
    const target = conditional && req.headers["if-none-match"] === "*" &&
        ((req.method === "PUT" && !url.searchParams.has("uploadId")) ||
          (req.method === "POST" && url.searchParams.has("uploadId")))
      ? objectOf(url.pathname)
      : null;
    if (target === null) {
      handle(req, res);
      return;
    }
    // Conditional writes of one key run one at a time, as on a real server.
    const id = `${target.bucket}/${target.key}`;
    const before = busy.get(id) ?? Promise.resolve();
    const mine = before.then(() => conditionalWrite(req, res, target.bucket, target.key));
    const tail = mine.catch(() => {});
    busy.set(id, tail);
    void tail.then(() => {
      if (busy.get(id) === tail) busy.delete(id);
    });
    mine.catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") {
    throw new Error("the s3rver test server has no TCP address: this is a bug in the test helper");
  }
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    region: "us-east-1",
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    get requests() {
      return requests;
    },
    async bucket(name: string): Promise<void> {
      await app.store.putBucket(name);
    },
    async keys(bucket: string): Promise<string[]> {
      const { objects } = await app.store.listObjects(bucket, {});
      return objects.map((o) => o.key).sort();
    },
    async stop(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(directory, { recursive: true, force: true });
      // s3rver may still finish writing a request whose connection was cut, and so
      // recreate part of the directory: remove it again once that has settled.
      await new Promise((resolve) => setTimeout(resolve, 50));
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}

let desPatched = false;

/**
 * s3rver seals its ListObjectsV2 continuation tokens with DES-CBC, a cipher
 * that OpenSSL 3 and Deno no longer offer: every truncated listing would fail
 * with 500. In this test process, "des" becomes a pass-through (the token is
 * then the IV plus the plain `region/bucket/key`, which s3rver reads back).
 */
function patchDesForS3rver(): void {
  if (desPatched) return;
  desPatched = true;
  const passThrough = {
    update: (data: string | Uint8Array) =>
      typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data),
    final: () => Buffer.alloc(0),
  };
  const cipher = crypto.createCipheriv;
  const decipher = crypto.createDecipheriv;
  crypto.createCipheriv =
    ((algorithm: string, ...rest: unknown[]) =>
      algorithm === "des"
        ? passThrough
        : (cipher as (...a: unknown[]) => unknown)(algorithm, ...rest)) as typeof cipher;
  crypto.createDecipheriv =
    ((algorithm: string, ...rest: unknown[]) =>
      algorithm === "des"
        ? passThrough
        : (decipher as (...a: unknown[]) => unknown)(algorithm, ...rest)) as typeof decipher;
}

/** The bucket and key of a path-style request path, or null. */
function objectOf(pathname: string): { bucket: string; key: string } | null {
  const m = /^\/([^/]+)\/(.+)$/.exec(pathname);
  if (m === null) return null;
  try {
    return { bucket: decodeURIComponent(m[1]!), key: decodeURIComponent(m[2]!) };
  } catch {
    return null;
  }
}
