import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Buffer } from "node:buffer";
import { AccessDenied, AlreadyExists, TransientError } from "../errors.ts";
import { backup } from "../backup/backup.ts";
import { restore } from "../restore/restore.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { parseRepoUri } from "../../formats/uri.ts";
import { describeTree, makeTree, prng, randomBytes } from "../../testing/mod.ts";
import { injectS3Faults, s3ErrorXml } from "../../testing/s3_faults.ts";
import { type S3Server, startS3Server } from "../../testing/s3_server.ts";
import { type RetryEvent, withRetry } from "./retry.ts";
import { S3Store, type S3StoreOptions, type S3Uri } from "./s3.ts";
import type { BlobStore, FileKind, Handle } from "./types.ts";

const MiB = 1024 * 1024;

async function openS3(
  server: S3Server,
  bucket: string,
  options: S3StoreOptions = {},
): Promise<S3Store> {
  const uri = parseRepoUri(
    `s3://${bucket}/backups/app?endpoint=${server.endpoint}&region=${server.region}`,
  ) as S3Uri;
  return await S3Store.open(uri, { credentials: server.credentials, ...options });
}

/** Retry settings for tests: many quick attempts, seeded jitter. */
function retryOptions(events: RetryEvent[], seed: number) {
  const next = prng(seed);
  return {
    attempts: 10,
    baseDelayMs: 2,
    maxDelayMs: 50,
    random: () => next() / 2 ** 32,
    onRetry: (e: RetryEvent) => {
      events.push(e);
      if (Deno.env.get("DBG")) console.log(JSON.stringify(e));
    },
  };
}

function hex(i: number): string {
  return (i.toString(16).padStart(2, "0") + "5a").repeat(16);
}

async function names(store: BlobStore, kind: FileKind): Promise<string[]> {
  const out: string[] = [];
  for await (const info of store.list(kind)) out.push(info.name);
  return out.sort();
}

Deno.test("S3Store load of a truncated body throws TransientError", async () => {
  const server = await startS3Server();
  await server.bucket("truncated");
  const faults = injectS3Faults({ endpoint: server.endpoint, rate: 0, kinds: ["truncate"] });
  const store = await openS3(server, "truncated");
  try {
    const h: Handle = { kind: "index", name: "i" };
    await store.save(h, randomBytes(4000, 1));
    faults.configure({ rate: 1 });
    try {
      for (const range of [undefined, { offset: 10, length: 3000 }]) {
        const e = await store.load(h, range).then(() => null, (err) => err);
        assert.ok(e instanceof TransientError, String(e));
        assert.ok(!e.message.includes("\n"));
      }
      assert.ok(faults.stats.byKind.truncate >= 2);
    } finally {
      faults.stop();
    }
  } finally {
    await store.close();
    await server.stop();
  }
});

Deno.test("withRetry(S3Store) exclusive save whose reply is lost lands once and succeeds", async () => {
  const server = await startS3Server();
  await server.bucket("lost");
  const faults = injectS3Faults({ endpoint: server.endpoint, rate: 0 });
  const events: RetryEvent[] = [];
  const store = withRetry(await openS3(server, "lost"), retryOptions(events, 1));
  try {
    for (const [i, size] of [100, 11 * MiB].entries()) {
      const h: Handle = { kind: "manifest", name: `20260101_00000${i}.manifest` };
      const data = randomBytes(size, i);
      faults.configure({ rate: 1, kinds: ["lost-reply"], limit: 1 });
      await store.save(h, data, { exclusive: true });
      assert.equal(faults.stats.byKind["lost-reply"], i + 1);
      assert.equal(Buffer.compare(await store.load(h), data), 0);
      await assert.rejects(store.save(h, randomBytes(10, 9), { exclusive: true }), AlreadyExists);
    }
  } finally {
    faults.stop();
    await store.close?.();
    await server.stop();
  }
});

Deno.test("S3Store aborts a multipart upload whose part fails", async () => {
  const server = await startS3Server();
  await server.bucket("abort");
  const seen: string[] = [];
  const faults = injectS3Faults({
    endpoint: server.endpoint,
    rate: 0,
    respond: (r) => {
      const url = new URL(r.url);
      if (url.searchParams.has("uploadId")) {
        const part = url.searchParams.get("partNumber");
        seen.push(`${r.method}${part ? ` part ${part}` : ""}`);
        if (part === "2") {
          return new Response(s3ErrorXml("InternalError", "boom"), { status: 500 });
        }
      }
      return undefined;
    },
  });
  const store = await openS3(server, "abort", { partSize: 5 * MiB });
  try {
    const h: Handle = { kind: "pack", name: hex(1) };
    await assert.rejects(store.save(h, randomBytes(11 * MiB, 2)), TransientError);
    assert.ok(seen.includes("DELETE"), `no abort in ${seen.join(", ")}`);
    assert.ok(!seen.includes("POST"), "the upload was completed");
    await assert.rejects(store.stat(h));
  } finally {
    faults.stop();
    await store.close();
    await server.stop();
  }
});

Deno.test("withRetry(S3Store) passes a save/load/list workload byte-exactly with 10% transient faults", async () => {
  const server = await startS3Server();
  await server.bucket("workload");
  const faults = injectS3Faults({ endpoint: server.endpoint, rate: 0.1, seed: 42 });
  const events: RetryEvent[] = [];
  let store: BlobStore | null = null;
  try {
    store = withRetry(
      await openS3(server, "workload", { partSize: 5 * MiB }),
      retryOptions(events, 3),
    );
    const objects: { h: Handle; data: Uint8Array; exclusive: boolean }[] = [];
    for (let i = 0; i < 40; i++) {
      objects.push({
        h: { kind: "manifest", name: `m${i}` },
        data: randomBytes(100 + i * 50, i),
        exclusive: true,
      });
    }
    for (let i = 0; i < 12; i++) {
      objects.push({
        h: { kind: "pack", name: hex(i) },
        data: randomBytes(i < 2 ? 11 * MiB + i : 64 * 1024 * (i + 1), 100 + i),
        exclusive: false,
      });
    }
    for (let i = 0; i < 8; i++) {
      objects.push({
        h: { kind: "index", name: `x${i}` },
        data: randomBytes(3000, 200 + i),
        exclusive: false,
      });
    }
    const s = store;
    for (let i = 0; i < objects.length; i += 8) {
      await Promise.all(
        objects.slice(i, i + 8).map((o) => s.save(o.h, o.data, { exclusive: o.exclusive })),
      );
    }
    for (const kind of ["manifest", "pack", "index"] as const) {
      const expected = objects.filter((o) => o.h.kind === kind).map((o) => o.h.name).sort();
      assert.deepEqual(await names(s, kind), expected, `list ${kind}`);
    }
    for (const o of objects) {
      assert.equal(Buffer.compare(await s.load(o.h), o.data), 0, `load ${o.h.name}`);
      assert.equal((await s.stat(o.h)).size, o.data.length);
      const offset = Math.floor(o.data.length / 3);
      const got = await s.load(o.h, { offset, length: 777 });
      assert.equal(
        Buffer.compare(got, o.data.subarray(offset, offset + 777)),
        0,
        `range ${o.h.name}`,
      );
    }
    for (const o of objects.filter((_, i) => i % 2 === 0)) await s.remove(o.h);
    const left = objects.filter((_, i) => i % 2 === 1);
    assert.deepEqual(
      await names(s, "manifest"),
      left.filter((o) => o.h.kind === "manifest").map((o) => o.h.name).sort(),
    );
  } finally {
    faults.stop();
    await store?.close?.();
    await server.stop();
  }
  assert.ok(faults.stats.injected > 0, "no fault was injected");
  assert.ok(events.length > 0, "nothing was retried");
  assert.ok(events.every((e) => e.delayMs <= 50));
  console.log(
    `workload: ${faults.stats.requests} requests, ${faults.stats.injected} faults injected ` +
      `${JSON.stringify(faults.stats.byKind)}, ${events.length} retries`,
  );
});

Deno.test("backup into withRetry(S3Store) under 10% faults restores a byte-identical tree", async () => {
  const server = await startS3Server();
  await server.bucket("e2e");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bendsave-s3-e2e-"));
  const faults = injectS3Faults({ endpoint: server.endpoint, rate: 0.1, seed: 9 });
  const events: RetryEvent[] = [];
  let store: BlobStore | null = null;
  try {
    const src = makeTree(path.join(tmp, "src"));
    store = withRetry(await openS3(server, "e2e", { partSize: 5 * MiB }), retryOptions(events, 5));
    // Small packs: many pack, index and manifest objects, some of them multipart.
    const init = { packSize: 2 * MiB };
    const first = await backup(store, dirSource(src), { workers: 0, init });
    assert.equal(first.manifest.incomplete, false);
    const restoredFirst = describeTree(src);
    fs.writeFileSync(path.join(src, "data/new.bin"), randomBytes(6 * MiB, 77));
    fs.writeFileSync(path.join(src, "docs/readme.md"), "rewritten\n");
    const second = await backup(store, dirSource(src), { workers: 0, init });
    assert.equal(second.parent, first.name);
    const target = path.join(tmp, "restored");
    await restore(store, target, { workers: 0 });
    assert.deepEqual(describeTree(target), describeTree(src));
    const older = path.join(tmp, "restored-first");
    await restore(store, older, { workers: 0, manifest: first.name });
    assert.deepEqual(describeTree(older), restoredFirst);
    assert.deepEqual(await names(store, "manifest"), [first.name, second.name].sort());
    assert.deepEqual(await names(store, "lock"), []);
  } finally {
    faults.stop();
    await store?.close?.();
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  assert.ok(faults.stats.injected > 0, "no fault was injected");
  assert.ok(events.length > 0, "nothing was retried");
  console.log(
    `backup+restore: ${faults.stats.requests} requests ${JSON.stringify(faults.stats.byMethod)}, ` +
      `${faults.stats.injected} faults injected ${JSON.stringify(faults.stats.byKind)}, ` +
      `${events.length} retries`,
  );
});

Deno.test("backup into S3 with a permanent 403 on every PUT fails with one AccessDenied and writes no manifest", async () => {
  const server = await startS3Server();
  await server.bucket("denied");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bendsave-s3-403-"));
  const events: RetryEvent[] = [];
  let store: BlobStore | null = null;
  const faults = injectS3Faults({ endpoint: server.endpoint, rate: 0 });
  try {
    const src = makeTree(path.join(tmp, "src"), { largeSize: 1024 });
    store = withRetry(await openS3(server, "denied"), retryOptions(events, 1));
    const first = await backup(store, dirSource(src), { workers: 0 });
    fs.writeFileSync(path.join(src, "new.txt"), "changed");
    faults.configure({
      respond: (r) =>
        r.method === "PUT"
          ? new Response(s3ErrorXml("AccessDenied", "Access Denied"), {
            status: 403,
            headers: { "content-type": "application/xml" },
          })
          : undefined,
    });
    const e = await backup(store, dirSource(src), { workers: 0 }).then(() => null, (err) => err);
    assert.ok(e instanceof AccessDenied, String(e));
    assert.ok(!e.message.includes("\n"), "one line");
    assert.match(e.message, /S3 bucket "denied".*check the credentials and the bucket policy$/);
    assert.equal(events.length, 0, "a permanent error was retried");
    assert.ok(faults.stats.answered >= 1);
    faults.stop();
    assert.deepEqual(await names(store, "manifest"), [first.name]);
  } finally {
    faults.stop();
    await store?.close?.();
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

Deno.test("backup into an empty bucket with a permanent 403 on every PUT leaves no manifest", async () => {
  const server = await startS3Server();
  await server.bucket("denied-empty");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bendsave-s3-403-"));
  let store: BlobStore | null = null;
  const faults = injectS3Faults({
    endpoint: server.endpoint,
    rate: 0,
    respond: (r) =>
      r.method === "PUT" && !new URL(r.url).pathname.includes("/.tmp-")
        ? new Response(s3ErrorXml("AccessDenied", "Access Denied"), { status: 403 })
        : undefined,
  });
  try {
    const src = makeTree(path.join(tmp, "src"), { largeSize: 1024 });
    store = withRetry(await openS3(server, "denied-empty"), retryOptions([], 1));
    await assert.rejects(backup(store, dirSource(src), { workers: 0 }), AccessDenied);
    faults.stop();
    assert.deepEqual(await names(store, "manifest"), []);
    assert.deepEqual(await names(store, "config"), []);
  } finally {
    faults.stop();
    await store?.close?.();
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
