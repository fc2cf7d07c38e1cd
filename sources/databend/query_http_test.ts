import assert from "node:assert/strict";
import { DatabaseError } from "../../store/errors.ts";
import { runStatements } from "./query_http.ts";

const EP = { url: "http://db.example:8000/", user: "u", password: "pw-secret" };

Deno.test("runStatements follows next_uri while a query runs, then runs the next statement", async () => {
  const calls: string[] = [];
  const fake = ((url: string, init: RequestInit) => {
    calls.push(`${init.method} ${url}${init.body ? " " + init.body : ""}`);
    const page = calls.length === 1
      ? { state: "Running", error: null, next_uri: "/v1/query/q1/page/1" }
      : { state: "Succeeded", error: null, next_uri: null };
    return Promise.resolve(Response.json(page));
  }) as typeof fetch;
  assert.equal(await runStatements(EP, ["SELECT 1", "SELECT 2"], { fetch: fake }), 2);
  assert.deepEqual(calls, [
    'POST http://db.example:8000/v1/query {"sql":"SELECT 1"}',
    "GET http://db.example:8000/v1/query/q1/page/1",
    'POST http://db.example:8000/v1/query {"sql":"SELECT 2"}',
  ]);
});

Deno.test("runStatements: a refusal, an HTTP error and an unreachable endpoint are one-line DatabaseErrors without the password", async () => {
  const reply = (r: Response) => (() => Promise.resolve(r)) as unknown as typeof fetch;
  await assert.rejects(
    runStatements(EP, ["A", "B"], {
      fetch: reply(
        Response.json({ state: "Failed", error: { code: 7, message: "no such table" } }),
      ),
    }),
    (e: unknown) =>
      e instanceof DatabaseError &&
      /statement 1 of 2 failed .*: no such table \(code 7\)/.test(e.message),
  );
  await assert.rejects(
    runStatements(EP, ["A"], { fetch: reply(new Response("nope", { status: 401 })) }),
    /refused statement 1 of 1 \(HTTP 401\): check the user and BENDSAVE_QUERY_PASSWORD/,
  );
  await assert.rejects(
    runStatements(EP, ["A"], {
      fetch: (() => Promise.reject(new TypeError("connection refused"))) as typeof fetch,
    }),
    (e: unknown) =>
      e instanceof DatabaseError && /cannot be reached/.test(e.message) &&
      !e.message.includes("pw-secret"),
  );
});
