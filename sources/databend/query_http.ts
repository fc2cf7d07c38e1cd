/**
 * Runs SQL statements on a Databend query node over its HTTP query API
 * (`POST <endpoint>/v1/query` with `{"sql": …}` and HTTP basic
 * authentication; a reply whose `state` is `Running` is followed through its
 * `next_uri` until it is done). A reply with an `error` stops the run.
 *
 * Credentials never appear in messages.
 *
 * @module
 */
import { DatabaseError } from "../../store/errors.ts";

/** Where and as whom to run statements. */
export interface QueryEndpoint {
  /** `http://host:port` of the query node's HTTP handler. */
  readonly url: string;
  readonly user: string;
  readonly password: string;
}

/** Options of {@linkcode runStatements}. */
export interface RunStatementsOptions {
  /** Milliseconds to wait for one reply (default 300 000). */
  readonly timeoutMs?: number;
  /** Called after each statement succeeded. */
  readonly onDone?: (index: number, statement: string) => void;
  /** Replaces `fetch` (tests). */
  readonly fetch?: typeof fetch;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function errorOf(reply: unknown): string | null {
  if (!isObject(reply)) return "the reply is not a JSON object";
  const e = reply["error"];
  if (e === null || e === undefined) {
    return reply["state"] === "Failed" ? "the query failed" : null;
  }
  if (isObject(e)) {
    const code = e["code"] === undefined ? "" : ` (code ${String(e["code"])})`;
    return `${String(e["message"] ?? "error")}${code}`;
  }
  return String(e);
}

/**
 * Runs `statements` in order, each to its end.
 *
 * @returns how many statements succeeded (all of them).
 * @throws {DatabaseError} when the endpoint cannot be reached or refuses a
 * statement; the message says which one (by number) and why, and how many ran.
 */
export async function runStatements(
  endpoint: QueryEndpoint,
  statements: readonly string[],
  options: RunStatementsOptions = {},
): Promise<number> {
  const doFetch = options.fetch ?? fetch;
  const base = endpoint.url.replace(/\/+$/, "");
  const auth = "Basic " + btoa(`${endpoint.user}:${endpoint.password}`);
  const timeoutMs = options.timeoutMs ?? 300_000;
  const call = async (url: string, init: RequestInit, n: number): Promise<unknown> => {
    let res: Response;
    try {
      res = await doFetch(url, {
        ...init,
        headers: { ...(init.headers ?? {}), authorization: auth },
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      throw new DatabaseError(
        `the query endpoint ${base} cannot be reached (${
          (e as Error).name === "TimeoutError" ? "no reply in time" : (e as Error).message
        }) at statement ${n} of ${statements.length}: check --query-url`,
      );
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    if (!res.ok) {
      const why = (isObject(body) ? errorOf(body) : null) ?? `HTTP ${res.status}`;
      throw new DatabaseError(
        `the query endpoint ${base} refused statement ${n} of ${statements.length} (${why})${
          res.status === 401 ? ": check the user and BENDSAVE_QUERY_PASSWORD" : ""
        }`,
      );
    }
    return body;
  };
  let done = 0;
  for (const [i, sql] of statements.entries()) {
    const n = i + 1;
    let reply = await call(`${base}/v1/query`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sql }),
    }, n);
    for (let hops = 0; hops < 10_000; hops++) {
      const err = errorOf(reply);
      if (err !== null) {
        throw new DatabaseError(
          `statement ${n} of ${statements.length} failed on ${base}: ${err} (${done} ran before it)`,
        );
      }
      const r = reply as Record<string, unknown>;
      const next = r["next_uri"];
      if (r["state"] !== "Running" || typeof next !== "string" || next === "") break;
      reply = await call(new URL(next, `${base}/`).toString(), { method: "GET" }, n);
    }
    done++;
    options.onDone?.(i, sql);
  }
  return done;
}
