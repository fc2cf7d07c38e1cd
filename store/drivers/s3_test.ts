import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { Buffer } from "node:buffer";
import {
  AccessDenied,
  AlreadyExists,
  InvalidInput,
  StoreUnreachable,
  TransientError,
} from "../errors.ts";
import { parseRepoUri } from "../../formats/uri.ts";
import { randomBytes } from "../../testing/mod.ts";
import { type S3Server, startS3Server } from "../../testing/s3_server.ts";
import { runConformanceSuite } from "./conformance.ts";
import { S3Store, type S3StoreOptions, type S3Uri } from "./s3.ts";

const MiB = 1024 * 1024;
const CANARY_KEY_ID = "AKIACANARYKEYID0BENDSAVE";
const CANARY_SECRET = "canary-secret-Zq8vX3nB7yT1-must-never-be-printed";

function s3Uri(server: S3Server, bucket: string, prefix: string, extra = ""): S3Uri {
  const uri = parseRepoUri(
    `s3://${bucket}/${prefix}?endpoint=${server.endpoint}&region=${server.region}${extra}`,
  );
  if (uri.scheme !== "s3") throw new Error("not an s3 URI");
  return uri;
}

async function openStore(
  server: S3Server,
  bucket: string,
  prefix: string,
  options: S3StoreOptions = {},
): Promise<S3Store> {
  return await S3Store.open(s3Uri(server, bucket, prefix), {
    credentials: server.credentials,
    ...options,
  });
}

/** Every string an error could be printed with. */
function printed(e: unknown): string {
  const err = e as Error & { cause?: unknown };
  return [String(e), err.message, err.stack ?? "", JSON.stringify(e), String(err.cause)].join("\n");
}

function assertNoSecrets(e: unknown): void {
  const text = printed(e);
  assert.ok(!text.includes(CANARY_SECRET), `the secret leaked: ${text}`);
  assert.ok(!text.includes(CANARY_KEY_ID), `the access key id leaked: ${text}`);
}

/** Runs `fn` with environment variables set, then restores them. */
async function withEnv(vars: Record<string, string>, fn: () => Promise<void>): Promise<void> {
  const saved = new Map(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    await fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

runConformanceSuite("S3Store", async () => {
  const server = await startS3Server();
  try {
    await server.bucket("conformance");
    const store = await openStore(server, "conformance", "repo/one");
    return {
      store,
      cleanup: async () => {
        await store.close();
        await server.stop();
      },
    };
  } catch (e) {
    await server.stop();
    throw e;
  }
});

Deno.test("S3Store declares exclusiveCreate when the server honours If-None-Match", async () => {
  const server = await startS3Server();
  try {
    await server.bucket("cond-yes");
    const store = await openStore(server, "cond-yes", "p");
    try {
      assert.equal(store.capabilities.exclusiveCreate, true);
      assert.equal(store.capabilities.name, "s3");
      assert.equal(store.location, "s3://cond-yes/p");
      assert.deepEqual(await server.keys("cond-yes"), [], "the probe object was not removed");
      // an exclusive save of the same bytes over an existing object is done, other bytes fail
      const h = { kind: "lock", name: "l1" } as const;
      await store.save(h, new Uint8Array([1, 2]), { exclusive: true });
      await store.save(h, new Uint8Array([1, 2]), { exclusive: true });
      await assert.rejects(store.save(h, new Uint8Array([3]), { exclusive: true }), AlreadyExists);
      assert.deepEqual(await server.keys("cond-yes"), ["p/locks/l1"]);
    } finally {
      await store.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("S3Store emulates exclusive saves when the server ignores If-None-Match", async () => {
  const server = await startS3Server({ conditionalWrites: false });
  try {
    await server.bucket("cond-no");
    const store = await openStore(server, "cond-no", "p");
    try {
      assert.equal(store.capabilities.exclusiveCreate, false);
      const h = { kind: "lock", name: "taken" } as const;
      await store.save(h, new Uint8Array([1]), { exclusive: true });
      await assert.rejects(store.save(h, new Uint8Array([2]), { exclusive: true }), AlreadyExists);
      assert.deepEqual([...await store.load(h)], [1]);
      assert.deepEqual(
        await server.keys("cond-no"),
        ["p/locks/taken"],
        "the probe was not removed",
      );
    } finally {
      await store.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("S3Store multipart upload of an object larger than the part size round-trips", async () => {
  const server = await startS3Server();
  try {
    await server.bucket("multipart");
    const store = await openStore(server, "multipart", "repo", { partSize: 5 * MiB });
    try {
      const data = randomBytes(12 * MiB + 3, 11);
      const h = { kind: "pack", name: "ab".padEnd(64, "c") } as const;
      const before = server.requests;
      await store.save(h, data);
      // create, 3 parts, complete
      assert.equal(server.requests - before, 5);
      assert.equal((await store.stat(h)).size, data.length);
      assert.equal(Buffer.compare(await store.load(h), data), 0);
      // a range across the first part boundary
      const got = await store.load(h, { offset: 5 * MiB - 10, length: 20 });
      assert.equal(Buffer.compare(got, data.subarray(5 * MiB - 10, 5 * MiB + 10)), 0);
      // exclusive multipart: the completion is conditional
      const other = randomBytes(12 * MiB + 3, 12);
      await assert.rejects(store.save(h, other, { exclusive: true }), AlreadyExists);
      assert.equal(Buffer.compare(await store.load(h), data), 0);
      // the same bytes again: the object is already there, the save is done
      await store.save(h, data, { exclusive: true });
    } finally {
      await store.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("S3Store ranged reads return exactly the range, and what exists past the end", async () => {
  const server = await startS3Server();
  try {
    await server.bucket("ranges");
    const store = await openStore(server, "ranges", "");
    try {
      const data = randomBytes(3 * MiB, 5);
      const h = { kind: "pack", name: "0".repeat(64) } as const;
      await store.save(h, data);
      const cases: [number, number][] = [
        [0, 1],
        [1, MiB],
        [3 * MiB - 1, 1],
        [3 * MiB - 100, 1000],
        [3 * MiB, 1],
        [10 * MiB, 5],
      ];
      for (const [offset, length] of cases) {
        const got = await store.load(h, { offset, length });
        const want = data.subarray(Math.min(offset, data.length), offset + length);
        assert.equal(Buffer.compare(got, want), 0, `range ${offset}+${length}`);
      }
      await assert.rejects(store.load(h, { offset: -1, length: 1 }), RangeError);
    } finally {
      await store.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("S3Store list paginates past 1000 objects", async () => {
  const server = await startS3Server();
  try {
    await server.bucket("many");
    const store = await openStore(server, "many", "deep/prefix", { listPageSize: 50 });
    try {
      const names = Array.from({ length: 1010 }, (_, i) => `m${String(i).padStart(5, "0")}`);
      for (let i = 0; i < names.length; i += 50) {
        await Promise.all(
          names.slice(i, i + 50).map((n) =>
            store.save({ kind: "manifest", name: n }, new Uint8Array([1]))
          ),
        );
      }
      await store.save({ kind: "index", name: "other-kind" }, new Uint8Array([2]));
      const before = server.requests;
      const listed: string[] = [];
      for await (const info of store.list("manifest")) listed.push(info.name);
      assert.deepEqual(listed, names);
      assert.equal(server.requests - before, Math.ceil(1010 / 50));
      const after: string[] = [];
      for await (const info of store.listAfter("manifest", "m01000")) after.push(info.name);
      assert.deepEqual(after, names.slice(1001));
      let raw = 0;
      for await (const _ of store.list("raw")) raw++;
      assert.equal(raw, 1011);
    } finally {
      await store.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("S3Store open of a missing bucket gives one clear InvalidInput line", async () => {
  const server = await startS3Server();
  try {
    const e = await S3Store.open(s3Uri(server, "no-such-bucket", "p"), {
      credentials: server.credentials,
    }).then(() => null, (err) => err);
    assert.ok(e instanceof InvalidInput, String(e));
    assert.equal(
      e.message,
      'S3 bucket "no-such-bucket" does not exist: create it or fix the URI',
    );
  } finally {
    await server.stop();
  }
});

Deno.test("S3Store open of a dead endpoint gives one clear StoreUnreachable line", async () => {
  const port = await freePort();
  const uri = parseRepoUri(
    `s3://bucket/p?endpoint=http://127.0.0.1:${port}&region=us-east-1`,
  ) as S3Uri;
  const e = await S3Store.open(uri, {
    credentials: { accessKeyId: CANARY_KEY_ID, secretAccessKey: CANARY_SECRET },
  }).then(() => null, (err) => err);
  assert.ok(e instanceof StoreUnreachable, String(e));
  assert.equal(
    e.message,
    `cannot reach S3 endpoint http://127.0.0.1:${port} (ECONNREFUSED): check the endpoint= option of the repository URI and the network`,
  );
  assert.ok(!e.message.includes("\n"));
  assertNoSecrets(e);
});

Deno.test("S3Store errors never contain the credentials", async () => {
  const server = await startS3Server();
  try {
    await server.bucket("secret");
    // Static credentials.
    const e1 = await S3Store.open(s3Uri(server, "secret", "p"), {
      credentials: { accessKeyId: CANARY_KEY_ID, secretAccessKey: CANARY_SECRET },
    }).then(() => null, (err) => err);
    assert.ok(e1 instanceof AccessDenied, String(e1));
    assert.match(e1.message, /"secret".*check the credentials/);
    assertNoSecrets(e1);
    // The same credentials from the environment (the SDK's default chain).
    await withEnv({
      AWS_ACCESS_KEY_ID: CANARY_KEY_ID,
      AWS_SECRET_ACCESS_KEY: CANARY_SECRET,
      AWS_EC2_METADATA_DISABLED: "true",
    }, async () => {
      const e2 = await S3Store.open(s3Uri(server, "secret", "p")).then(() => null, (err) => err);
      assert.ok(e2 instanceof AccessDenied, String(e2));
      assertNoSecrets(e2);
    });
    // Object requests with good credentials, then a denied one on the same store.
    const good = await openStore(server, "secret", "p");
    await good.close();
  } finally {
    await server.stop();
  }
});

Deno.test("S3Store reads credentials from a shared credentials file with the profile option", async () => {
  const server = await startS3Server();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bendsave-aws-"));
  try {
    await server.bucket("profiles");
    const file = path.join(dir, "credentials");
    fs.writeFileSync(
      file,
      `[default]\naws_access_key_id = ${CANARY_KEY_ID}\naws_secret_access_key = ${CANARY_SECRET}\n` +
        `[bendsave-test]\naws_access_key_id = ${server.credentials.accessKeyId}\n` +
        `aws_secret_access_key = ${server.credentials.secretAccessKey}\n`,
    );
    await withEnv({
      AWS_SHARED_CREDENTIALS_FILE: file,
      AWS_CONFIG_FILE: path.join(dir, "config"),
      AWS_EC2_METADATA_DISABLED: "true",
    }, async () => {
      const saved = [process.env.AWS_ACCESS_KEY_ID, process.env.AWS_SECRET_ACCESS_KEY];
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
      try {
        const store = await S3Store.open(
          s3Uri(server, "profiles", "p", "&profile=bendsave-test"),
        );
        try {
          await store.save({ kind: "manifest", name: "m" }, new Uint8Array([7]));
          assert.deepEqual([...await store.load({ kind: "manifest", name: "m" })], [7]);
        } finally {
          await store.close();
        }
        const e = await S3Store.open(s3Uri(server, "profiles", "p")).then(
          () => null,
          (err) => err,
        );
        assert.ok(e instanceof AccessDenied, `the default profile is refused: ${String(e)}`);
        assertNoSecrets(e);
      } finally {
        if (saved[0] !== undefined) process.env.AWS_ACCESS_KEY_ID = saved[0];
        if (saved[1] !== undefined) process.env.AWS_SECRET_ACCESS_KEY = saved[1];
      }
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
});

Deno.test("S3Store without any credentials gives one clear AccessDenied line", async () => {
  const server = await startS3Server();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bendsave-aws-"));
  try {
    await server.bucket("nocreds");
    fs.writeFileSync(path.join(dir, "credentials"), "");
    await withEnv({
      AWS_SHARED_CREDENTIALS_FILE: path.join(dir, "credentials"),
      AWS_CONFIG_FILE: path.join(dir, "config"),
      AWS_EC2_METADATA_DISABLED: "true",
    }, async () => {
      const saved = [process.env.AWS_ACCESS_KEY_ID, process.env.AWS_SECRET_ACCESS_KEY];
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
      try {
        const e = await S3Store.open(s3Uri(server, "nocreds", "p", "&profile=missing")).then(
          () => null,
          (err) => err,
        );
        assert.ok(e instanceof AccessDenied, String(e));
        assert.match(e.message, /no usable AWS credentials.*s3:\/\/nocreds\/p.*profile/);
      } finally {
        if (saved[0] !== undefined) process.env.AWS_ACCESS_KEY_ID = saved[0];
        if (saved[1] !== undefined) process.env.AWS_SECRET_ACCESS_KEY = saved[1];
      }
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
});

Deno.test("S3Store open rejects bad options with one clear line", async () => {
  const bad: [string, RegExp][] = [
    ["s3://b-1/p?endpoint=ftp://x", /not an http or https URL/],
    ["s3://b-1/p?endpoint=http://user:pw@127.0.0.1:1", /user name or password: remove them/],
    ["s3://b-1/p?endpoint=http://127.0.0.1:1&force_path_style=maybe", /not a boolean/],
    ["s3://b-1/p?endpoint=http://127.0.0.1:1&storage_class=COLD", /storage_class="COLD"/],
  ];
  for (const [location, pattern] of bad) {
    const e = await S3Store.open(parseRepoUri(location) as S3Uri, {
      credentials: { accessKeyId: CANARY_KEY_ID, secretAccessKey: CANARY_SECRET },
    }).then(() => null, (err) => err);
    assert.ok(e instanceof InvalidInput, `${location}: ${String(e)}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("pw@"), "the endpoint password leaked");
  }
});

Deno.test("S3Store open of an endpoint that never answers times out, retries through options.retry", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const c of listener) conns.push(c);
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    const uri = parseRepoUri(
      `s3://bucket/p?endpoint=http://127.0.0.1:${port}&region=us-east-1&timeout=0.2`,
    ) as S3Uri;
    const retries: string[] = [];
    const started = Date.now();
    const e = await S3Store.open(uri, {
      credentials: { accessKeyId: CANARY_KEY_ID, secretAccessKey: CANARY_SECRET },
      retry: { attempts: 3, baseDelayMs: 1, onRetry: (r) => retries.push(r.operation) },
    }).then(() => null, (err) => err);
    assert.ok(e instanceof TransientError, String(e));
    assert.equal(
      e.message,
      `S3 endpoint http://127.0.0.1:${port} did not answer open of bucket "bucket" in s3://bucket/p within 0.2 s: check the endpoint= option and the network, or allow more time with ?timeout=<seconds>`,
    );
    assert.deepEqual(retries, ['open of bucket "bucket"', 'open of bucket "bucket"']);
    assert.ok(Date.now() - started < 5000);
    assertNoSecrets(e);
  } finally {
    for (const c of conns) c.close();
    listener.close();
  }
});

Deno.test("S3Store open rejects a timeout option that is not a number of seconds", async () => {
  for (const value of ["0", "-1", "abc", "30s"]) {
    const uri = parseRepoUri(`s3://bucket/p?endpoint=http://127.0.0.1:1&timeout=${value}`) as S3Uri;
    const e = await S3Store.open(uri).then(() => null, (err) => err);
    assert.ok(e instanceof InvalidInput, String(e));
    assert.equal(
      e.message,
      `S3 option timeout="${value}" of s3://bucket/p is not a number of seconds: use for example timeout=30`,
    );
  }
});
