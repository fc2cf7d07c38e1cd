/**
 * Fault injection for S3 tests with msw: intercepts the HTTP requests this
 * process sends to an S3 endpoint (the AWS SDK's node:http requests) and
 * fails a chosen fraction of them the ways real S3 fails: 503 SlowDown,
 * 500 InternalError, 502 Bad Gateway, connections reset before the request
 * reaches the server, replies cut off after the server acted, and truncated
 * bodies. The other requests pass through to the real server.
 *
 * A "reset" may be sent again by the runtime's HTTP client on its own (it
 * takes the request as never sent on a reused connection), so some resets
 * never reach the driver: count retries, not injected faults, for what the
 * driver saw.
 *
 * @module
 */
import { bypass, http, HttpResponse, passthrough } from "msw";
import { setupServer } from "msw/node";
import { prng } from "./mod.ts";

/** A way for a request to fail. */
export type S3FaultKind =
  | "slowdown"
  | "internal"
  | "bad-gateway"
  | "reset"
  | "lost-reply"
  | "truncate";

/** Every kind of fault, the default mix. */
export const S3_FAULT_KINDS: readonly S3FaultKind[] = [
  "slowdown",
  "internal",
  "bad-gateway",
  "reset",
  "lost-reply",
  "truncate",
];

/** Options of {@linkcode injectS3Faults}. */
export interface S3FaultOptions {
  /** The endpoint whose requests are intercepted, e.g. `http://127.0.0.1:9000`. */
  readonly endpoint: string;
  /** The fraction of requests to fail, 0 to 1 (default 0.1). */
  readonly rate?: number;
  /** Seed of the choice of requests and kinds (default 1). */
  readonly seed?: number;
  /** The kinds to choose from, uniformly (default all). */
  readonly kinds?: readonly S3FaultKind[];
  /** Inject at most this many random faults (default no limit; with `configure`, this many more). */
  readonly limit?: number;
  /**
   * A fixed answer for some requests (a permanent fault such as 403 on
   * every PUT): return a Response to send it, or undefined to go on.
   */
  readonly respond?: (request: Request) => Response | undefined;
}

/** What an injector did so far. */
export interface S3FaultStats {
  /** Requests intercepted. */
  requests: number;
  /** Requests failed by the random faults (not counting `respond` answers). */
  injected: number;
  /** Requests answered by `respond`. */
  answered: number;
  /** Injected faults by kind. */
  readonly byKind: Record<S3FaultKind, number>;
  /** Requests by method, e.g. `{ PUT: 12, GET: 30 }`. */
  readonly byMethod: Record<string, number>;
}

/** A running injector. */
export interface S3Faults {
  readonly stats: S3FaultStats;
  /**
   * Changes `rate`, `kinds` or `respond` from now on. (Install the injector
   * before the store under test makes its first request: the HTTP client's
   * connections opened before it are not intercepted.)
   */
  configure(options: Omit<S3FaultOptions, "endpoint" | "seed">): void;
  /** Stops intercepting (again is a no-op). */
  stop(): void;
}

/** The body of an S3 error answer. */
export function s3ErrorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>${message}</Message><RequestId>FAULT</RequestId></Error>`;
}

/** A body that yields `bytes`, then fails as a reset connection does. */
function brokenStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      if (bytes.length > 0) controller.enqueue(bytes.slice());
      controller.error(Object.assign(new Error("connection reset by the fault injector"), {
        code: "ECONNRESET",
      }));
    },
  });
}

/**
 * Starts intercepting the requests to `endpoint`. Only one injector may run
 * at a time in a process.
 *
 * @example
 * ```ts ignore
 * import { injectS3Faults } from "./s3_faults.ts";
 * const faults = injectS3Faults({ endpoint: "http://127.0.0.1:9000", rate: 0.1 });
 * // ... run a workload ...
 * faults.stop();
 * console.log(faults.stats.injected);
 * ```
 */
export function injectS3Faults(options: S3FaultOptions): S3Faults {
  let rate = options.rate ?? 0.1;
  let kinds = options.kinds ?? S3_FAULT_KINDS;
  let respond = options.respond;
  let limit = options.limit ?? Infinity;
  const next = prng(options.seed ?? 1);
  const random = () => next() / 2 ** 32;
  const stats: S3FaultStats = {
    requests: 0,
    injected: 0,
    answered: 0,
    byKind: Object.fromEntries(S3_FAULT_KINDS.map((k) => [k, 0])) as Record<S3FaultKind, number>,
    byMethod: {},
  };
  const xml = { "content-type": "application/xml" };

  const server = setupServer(
    http.all(`${options.endpoint}/*`, async ({ request }) => {
      stats.requests++;
      stats.byMethod[request.method] = (stats.byMethod[request.method] ?? 0) + 1;
      const fixed = respond?.(request);
      if (fixed !== undefined) {
        stats.answered++;
        return fixed;
      }
      if (stats.injected >= limit || random() >= rate) return passthrough();
      let kind = kinds[Math.floor(random() * kinds.length)]!;
      if (kind === "truncate" && request.method !== "GET") kind = "reset";
      stats.injected++;
      stats.byKind[kind]++;
      switch (kind) {
        case "slowdown":
          return new HttpResponse(s3ErrorXml("SlowDown", "Please reduce your request rate."), {
            status: 503,
            headers: xml,
          });
        case "internal":
          return new HttpResponse(
            s3ErrorXml("InternalError", "We encountered an internal error. Please try again."),
            { status: 500, headers: xml },
          );
        case "bad-gateway":
          return new HttpResponse("<html><body>502 Bad Gateway</body></html>", {
            status: 502,
            headers: { "content-type": "text/html" },
          });
        case "reset":
          return HttpResponse.error();
        case "lost-reply": {
          // The server acts on the request, then the connection breaks in the middle of
          // its reply (the announced length is never reached). A plain network error
          // would not do: the HTTP client would take it for a request never sent and
          // send it again by itself.
          const real = await fetch(bypass(request));
          const body = new Uint8Array(await real.arrayBuffer());
          const headers = new Headers(real.headers);
          headers.set("content-length", String(body.length + 64));
          return new HttpResponse(brokenStream(body.subarray(0, body.length >> 1)), {
            status: real.status,
            headers,
          });
        }
        case "truncate": {
          const real = await fetch(bypass(request));
          const body = new Uint8Array(await real.arrayBuffer());
          if (body.length < 2) return HttpResponse.error();
          // Keep the announced Content-Length; send half of the bytes, then break.
          return new HttpResponse(brokenStream(body.subarray(0, body.length >> 1)), {
            status: real.status,
            headers: new Headers(real.headers),
          });
        }
      }
    }),
  );
  server.listen({ onUnhandledFrame: "bypass" });
  let stopped = false;
  return {
    stats,
    configure(changes) {
      if (changes.rate !== undefined) rate = changes.rate;
      if (changes.kinds !== undefined) kinds = changes.kinds;
      if ("respond" in changes) respond = changes.respond;
      if (changes.limit !== undefined) limit = stats.injected + changes.limit;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      server.close();
    },
  };
}
