import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import { InvalidInput, StoreUnreachable, TransientError } from "../../store/errors.ts";
import { type MetaService, startMetaService } from "../../testing/meta_service.ts";
import {
  EXPORT_PATH,
  EXPORT_V1_PATH,
  exportMetaGrpc,
  GrpcStatus,
  MetaServiceError,
} from "./meta_grpc.ts";
import { parseExport, splitLines } from "./meta_export.ts";

const SAMPLE = new URL("../../testdata/sample-cluster/meta-export.jsonl", import.meta.url);
const SAMPLE_LINES = fs.readFileSync(SAMPLE, "utf8").split("\n").filter((l) => l !== "");
const CANARY_PASSWORD = "meta-canary-pw-7Hq2-must-never-be-printed";

/** Reads a whole export as text. */
async function collect(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  const dec = new TextDecoder("utf-8", { fatal: true });
  let text = "";
  for await (const c of chunks) text += dec.decode(c, { stream: true });
  return text + dec.decode();
}

/** Reads an export as far as it goes; returns the lines and the error it ended with. */
async function collectUntilError(
  chunks: AsyncIterable<Uint8Array>,
): Promise<{ lines: string[]; error: unknown }> {
  const lines: string[] = [];
  try {
    for await (const line of splitLines(chunks)) lines.push(line);
  } catch (error) {
    return { lines, error };
  }
  return { lines, error: undefined };
}

/** A loopback port nobody listens on. */
async function deadEndpoint(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

/** A TCP server that accepts connections and never says anything. */
async function silentServer(): Promise<{ endpoint: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    endpoint: `127.0.0.1:${port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function withService(
  options: Parameters<typeof startMetaService>[0],
  fn: (service: MetaService) => Promise<void>,
): Promise<void> {
  const service = await startMetaService(options);
  try {
    await fn(service);
  } finally {
    await service.close();
  }
}

function lineText(lines: readonly string[]): string {
  return lines.map((l) => l + "\n").join("");
}

Deno.test("exportMetaGrpc returns the sample export line for line", async () => {
  await withService({ lines: SAMPLE_LINES }, async (service) => {
    const text = await collect(exportMetaGrpc([service.endpoint], { chunkSize: 5 }));
    assert.equal(text, lineText(SAMPLE_LINES));
    assert.equal(service.calls, 1);
    assert.equal(service.requests.length, 1);
    assert.equal(service.requests[0]?.path, EXPORT_V1_PATH);
    assert.equal(service.requests[0]?.chunkSize, 5);
    assert.equal(service.requests[0]?.headers["content-type"], "application/grpc");
    assert.equal(service.requests[0]?.headers["te"], "trailers");
    // The text parses as a metactl export.
    let entries = 0;
    for await (const _ of parseExport(splitLines([text]))) entries++;
    assert.equal(entries, SAMPLE_LINES.length);
  });
});

Deno.test("exportMetaGrpc leaves the chunk size to the server by default", async () => {
  await withService({ lines: SAMPLE_LINES }, async (service) => {
    const buffers: Uint8Array[] = [];
    for await (const b of exportMetaGrpc([`http://${service.endpoint}`])) buffers.push(b);
    assert.equal(service.requests[0]?.chunkSize, undefined);
    // 57 lines at the server's 32 per message: two messages, one buffer each.
    assert.equal(buffers.length, Math.ceil(SAMPLE_LINES.length / 32));
    assert.equal(await collect(toAsync(buffers)), lineText(SAMPLE_LINES));
  });
});

async function* toAsync(buffers: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* buffers;
}

Deno.test("exportMetaGrpc falls back to Export on a server older than 1.2.315", async () => {
  await withService({ lines: SAMPLE_LINES, legacy: true }, async (service) => {
    const text = await collect(exportMetaGrpc([service.endpoint], { chunkSize: 7 }));
    assert.equal(text, lineText(SAMPLE_LINES));
    assert.deepEqual(service.requests.map((r) => r.path), [EXPORT_V1_PATH, EXPORT_PATH]);
    assert.equal(service.calls, 1);
  });
});

Deno.test("exportMetaGrpc skips a dead endpoint and exports from the next", async () => {
  const dead = await deadEndpoint();
  await withService({ lines: SAMPLE_LINES }, async (service) => {
    const text = await collect(exportMetaGrpc([dead, service.endpoint]));
    assert.equal(text, lineText(SAMPLE_LINES));
    assert.equal(service.calls, 1);
  });
});

Deno.test("exportMetaGrpc throws StoreUnreachable naming every dead endpoint", async () => {
  const a = await deadEndpoint();
  const b = await deadEndpoint();
  const e = await collect(exportMetaGrpc([a, b], { password: CANARY_PASSWORD })).then(
    () => undefined,
    (e) => e,
  );
  assert.ok(e instanceof StoreUnreachable, String(e));
  assert.match(e.message, /^cannot reach the meta service at /);
  assert.ok(e.message.includes(`${a} (ECONNREFUSED)`), e.message);
  assert.ok(e.message.includes(`${b} (ECONNREFUSED)`), e.message);
  assert.match(
    e.message,
    /check \[meta\] endpoints in the query config, or pass --meta-export-file$/,
  );
  assert.ok(!e.message.includes(CANARY_PASSWORD));
});

Deno.test("exportMetaGrpc times out on a silent endpoint and tries the next", async () => {
  const silent = await silentServer();
  try {
    await withService({ lines: SAMPLE_LINES }, async (service) => {
      const text = await collect(
        exportMetaGrpc([silent.endpoint, service.endpoint], { timeoutMs: 300 }),
      );
      assert.equal(text, lineText(SAMPLE_LINES));
    });
    const e = await collect(exportMetaGrpc([silent.endpoint], { timeoutMs: 300 })).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(e instanceof StoreUnreachable, String(e));
    assert.ok(e.message.includes(`${silent.endpoint} (no answer after 300 ms)`), e.message);
  } finally {
    await silent.close();
  }
});

Deno.test("exportMetaGrpc reports an error status with its code, message and endpoint", async () => {
  await withService(
    { lines: SAMPLE_LINES, failWith: { code: 13, message: "snapshot is broken: 100% bad" } },
    async (service) => {
      await withService({ lines: SAMPLE_LINES }, async (second) => {
        const e = await collect(exportMetaGrpc([service.endpoint, second.endpoint])).then(
          () => undefined,
          (e) => e,
        );
        assert.ok(e instanceof MetaServiceError, String(e));
        assert.equal(e.status, GrpcStatus.INTERNAL);
        assert.equal(e.grpcMessage, "snapshot is broken: 100% bad");
        assert.equal(e.endpoint, service.endpoint);
        assert.ok(e.message.includes(service.endpoint), e.message);
        assert.ok(e.message.includes("gRPC status 13 INTERNAL"), e.message);
        assert.ok(e.message.includes('"snapshot is broken: 100% bad"'), e.message);
        // An answer from the first endpoint is final: the second is not asked.
        assert.equal(second.requests.length, 0);
      });
    },
  );
});

Deno.test("exportMetaGrpc fails when the status after some lines is an error", async () => {
  await withService(
    {
      lines: SAMPLE_LINES,
      chunkSize: 4,
      failWith: { code: 14, message: "leader changed" },
      failAfterLines: 12,
    },
    async (service) => {
      const { lines, error } = await collectUntilError(exportMetaGrpc([service.endpoint]));
      assert.ok(error instanceof MetaServiceError, String(error));
      assert.equal(error.status, GrpcStatus.UNAVAILABLE);
      assert.ok(error.message.includes("after 3 messages"), error.message);
      assert.deepEqual(lines, SAMPLE_LINES.slice(0, 12));
    },
  );
});

Deno.test("exportMetaGrpc tries the next endpoint when the first is UNAVAILABLE", async () => {
  await withService(
    { lines: ["x"], failWith: { code: 14, message: "not ready" } },
    async (busy) => {
      await withService({ lines: SAMPLE_LINES }, async (service) => {
        const text = await collect(exportMetaGrpc([busy.endpoint, service.endpoint]));
        assert.equal(text, lineText(SAMPLE_LINES));
      });
    },
  );
});

Deno.test("exportMetaGrpc fails on a connection dropped mid-stream", async () => {
  const lines = Array.from({ length: 500 }, (_, i) => `["state_machine/0",{"N":${i}}]`);
  await withService({ lines, chunkSize: 10, dropAfterLines: 200 }, async (service) => {
    const got = await collectUntilError(exportMetaGrpc([service.endpoint]));
    // The 200 lines sent arrive, then the end without a status is an error,
    // not the end of a shorter export.
    assert.deepEqual(got.lines, lines.slice(0, 200));
    assert.ok(got.error instanceof TransientError, String(got.error));
    assert.equal(
      got.error.message,
      `the meta service at ${service.endpoint} closed the ExportV1 stream after 20 messages without a gRPC status (the connection was dropped): the export is incomplete, try again`,
    );
  });
});

Deno.test("exportMetaGrpc fails on a stream reset mid-stream", async () => {
  const lines = Array.from({ length: 500 }, (_, i) => `["state_machine/0",{"N":${i}}]`);
  await withService({ lines, chunkSize: 10, resetAfterLines: 100 }, async (service) => {
    const got = await collectUntilError(exportMetaGrpc([service.endpoint]));
    assert.deepEqual(got.lines, lines.slice(0, 100));
    assert.ok(got.error instanceof TransientError, String(got.error));
    assert.ok(got.error.message.includes(service.endpoint), got.error.message);
    assert.match(got.error.message, /broke during ExportV1 after 10 messages \(/);
    assert.match(got.error.message, /the export is incomplete, try again$/);
  });
});

Deno.test("exportMetaGrpc refuses compressed messages", async () => {
  await withService({ lines: SAMPLE_LINES, compressed: true }, async (service) => {
    const { error } = await collectUntilError(exportMetaGrpc([service.endpoint]));
    assert.ok(error instanceof MetaServiceError, String(error));
    assert.match(error.message, /sent a compressed gRPC message/);
    assert.equal(error.endpoint, service.endpoint);
  });
});

Deno.test("exportMetaGrpc never puts the password in errors or requests", async () => {
  const opts = { username: "root", password: CANARY_PASSWORD, timeoutMs: 2_000 };
  const errors: unknown[] = [];
  const dead = await deadEndpoint();
  errors.push(await collect(exportMetaGrpc([dead], opts)).catch((e) => e));
  await withService(
    { lines: SAMPLE_LINES, failWith: { code: 16, message: "Unknown user" } },
    async (service) => {
      errors.push(await collect(exportMetaGrpc([service.endpoint], opts)).catch((e) => e));
      for (const r of service.requests) {
        assert.ok(!JSON.stringify(r.headers).includes(CANARY_PASSWORD));
      }
    },
  );
  await withService({ lines: SAMPLE_LINES, dropAfterLines: 40 }, async (service) => {
    errors.push(await collect(exportMetaGrpc([service.endpoint], opts)).catch((e) => e));
  });
  assert.throws(
    () => exportMetaGrpc([`http://root:${CANARY_PASSWORD}@127.0.0.1:9191`], opts),
    InvalidInput,
  );
  try {
    exportMetaGrpc([`http://root:${CANARY_PASSWORD}@127.0.0.1:9191`], opts);
  } catch (e) {
    errors.push(e);
  }
  assert.equal(errors.length, 4);
  for (const e of errors) {
    assert.ok(e instanceof Error, String(e));
    const shown = `${e.message}\n${String(e)}\n${e.stack ?? ""}\n${JSON.stringify(e)}`;
    assert.ok(!shown.includes(CANARY_PASSWORD), shown);
  }
});

Deno.test("exportMetaGrpc rejects endpoints that are not host:port at once", () => {
  assert.throws(() => exportMetaGrpc([]), InvalidInput);
  assert.throws(() => exportMetaGrpc(["127.0.0.1"]), /meta endpoint "127.0.0.1" is not host:port/);
  assert.throws(() => exportMetaGrpc(["host:99999"]), InvalidInput);
  assert.throws(
    () => exportMetaGrpc(["https://meta:9191"]),
    /uses TLS: set rpc_tls_meta_server_root_ca_cert/,
  );
  assert.throws(() => exportMetaGrpc(["127.0.0.1:9191"], { chunkSize: 0 }), RangeError);
  assert.throws(() => exportMetaGrpc(["127.0.0.1:9191"], { timeoutMs: -1 }), RangeError);
  // Well-formed endpoints, including IPv6 and an http:// prefix, are accepted.
  const it = exportMetaGrpc(["[::1]:9191", "http://meta-1.local:9191/", "meta_2:9191"]);
  assert.equal(typeof it.next, "function");
});

Deno.test("exportMetaGrpc streams a large export", async () => {
  const lines = Array.from(
    { length: 50_000 },
    (_, i) =>
      `["state_machine/0",{"GenericKV":{"key":"__fd_table/1/t${i}","value":{"seq":${i},"meta":null,"data":[49,50,53]}}}]`,
  );
  await withService({ lines }, async (service) => {
    let n = 0;
    let bytes = 0;
    for await (const b of exportMetaGrpc([service.endpoint], { chunkSize: 1000 })) {
      bytes += b.length;
      for (const c of b) if (c === 10) n++;
    }
    assert.equal(n, lines.length);
    assert.equal(bytes, new TextEncoder().encode(lineText(lines)).length);
    assert.equal(service.calls, 1);
  });
  await withService({ lines }, async (service) => {
    const text = await collect(exportMetaGrpc([service.endpoint]));
    assert.equal(text, lineText(lines));
  });
});

Deno.test("exportMetaGrpc reads no further than the caller and closes the call on an early stop", async () => {
  const pad = "x".repeat(200);
  const lines = Array.from({ length: 50_000 }, (_, i) => `["raft_log",{"N":"${i}${pad}"}]`);
  await withService({ lines, chunkSize: 8 }, async (service) => {
    let buffers = 0;
    for await (const _ of exportMetaGrpc([service.endpoint])) {
      buffers++;
      if (buffers === 1) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        // About 10 MB are due; flow control holds the server to its windows.
        assert.ok(service.linesSent < lines.length / 4, `${service.linesSent} lines sent`);
      }
      if (buffers === 3) break;
    }
    for (let i = 0; i < 100 && service.cancelled === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(service.cancelled, 1);
    assert.ok(service.linesSent < lines.length);
  });
});

Deno.test("exportMetaGrpc stops with the signal's reason when aborted", async () => {
  const lines = Array.from({ length: 20_000 }, (_, i) => `["raft_log",{"N":${i}}]`);
  await withService({ lines, chunkSize: 16 }, async (service) => {
    const ac = new AbortController();
    const reason = new Error("stop now");
    let buffers = 0;
    const e = await (async () => {
      for await (const _ of exportMetaGrpc([service.endpoint], { signal: ac.signal })) {
        if (++buffers === 2) ac.abort(reason);
      }
    })().then(() => undefined, (e) => e);
    assert.equal(e, reason);
    assert.equal(buffers, 2);
  });
  const ac = new AbortController();
  ac.abort(new Error("before start"));
  const silent = await silentServer();
  try {
    const e = await collect(exportMetaGrpc([silent.endpoint], { signal: ac.signal })).catch((e) =>
      e
    );
    assert.equal((e as Error).message, "before start");
  } finally {
    await silent.close();
  }
});
