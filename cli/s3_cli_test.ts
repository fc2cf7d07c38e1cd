import assert from "node:assert/strict";
import path from "node:path";
import { cli, describeTree, lastOfType, makeTree, tempDir } from "../testing/mod.ts";
import { startS3Server } from "../testing/s3_server.ts";

Deno.test("backup to s3://, verify --read-data, restore and copy back to disk, through the CLI", async () => {
  await using t = await tempDir();
  const s3 = await startS3Server();
  try {
    await s3.bucket("dr-backups");
    const env = {
      AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
      AWS_REGION: s3.region,
      // No shared AWS files of the machine (HOME stays: Deno's cache lives there).
      AWS_CONFIG_FILE: path.join(t.dir, "no-aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: path.join(t.dir, "no-aws-credentials"),
    };
    const repo = `s3://dr-backups/cluster-a?endpoint=${s3.endpoint}`;
    const src = makeTree(path.join(t.dir, "src"), { largeSize: 10 * 1024 * 1024 });
    const b = await cli(["backup", "--from", src, "--to", repo, "--json"], { env });
    assert.equal(b.code, 0, b.stderr);
    assert.equal(lastOfType(b.stdout, "summary").files, 48);
    const again = await cli(["backup", "--from", src, "--to", repo, "--json"], { env });
    assert.equal(lastOfType(again.stdout, "summary").added_bytes, 0);
    assert.ok((await s3.keys("dr-backups")).some((k) => k.startsWith("cluster-a/packs/")));

    const v = await cli(["verify", repo, "--read-data"], { env });
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /verdict: OK/);

    const dest = path.join(t.dir, "dest");
    const r = await cli(["restore", "--from", repo, "--to", dest, "--confirm"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(describeTree(dest), describeTree(src));

    // S3 to a local disk that goes to tape.
    const local = path.join(t.dir, "for-tape");
    const c = await cli(["copy", "--from", repo, "--to", local], { env });
    assert.equal(c.code, 0, c.stderr);
    assert.equal((await cli(["verify", local, "--read-data"])).code, 0);
    const list = JSON.parse((await cli(["list", local, "--json"])).stdout);
    assert.equal(list.length, 2);

    // The secret never shows, even in an error.
    const bad = await cli(["list", "s3://no-such-bucket/x?endpoint=" + s3.endpoint], { env });
    assert.notEqual(bad.code, 0);
    assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    assert.ok(!bad.stderr.includes(s3.credentials.secretAccessKey));
  } finally {
    await s3.stop();
  }
});

/** A loopback TCP server that accepts connections and never answers a byte. */
function blackHole(): { endpoint: string; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    try {
      for await (const conn of listener) conns.push(conn);
    } catch {
      // closed
    }
  })();
  return {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close: () => {
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      listener.close();
    },
  };
}

function awsEnv(dir: string): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: "AKIAEXAMPLEBLACKHOLE",
    AWS_SECRET_ACCESS_KEY: "black-hole-secret",
    AWS_REGION: "us-east-1",
    AWS_CONFIG_FILE: path.join(dir, "no-aws-config"),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, "no-aws-credentials"),
  };
}

Deno.test("list of an S3 endpoint that never answers fails fast with one line, exit 1, retries warned", async () => {
  await using t = await tempDir();
  const hole = blackHole();
  try {
    const repo = `s3://bucket/p?endpoint=${hole.endpoint}&timeout=0.3`;
    const started = Date.now();
    const r = await cli(["list", repo], { env: awsEnv(t.dir) });
    const seconds = (Date.now() - started) / 1000;
    assert.equal(r.code, 1, r.stderr);
    assert.ok(seconds < 20, `took ${seconds} s`);
    const lines = r.stderr.trim().split("\n");
    const last = lines[lines.length - 1]!;
    assert.match(
      last,
      new RegExp(
        `^bendsave: S3 endpoint ${hole.endpoint} did not answer open of bucket "bucket" in s3://bucket/p within 0.3 s: .*\\?timeout=`,
      ),
    );
    assert.ok(!r.stderr.includes("internal error"), r.stderr);
    assert.ok(!r.stderr.includes("    at "), r.stderr);
    const warnings = lines.slice(0, -1);
    assert.ok(warnings.length >= 1, r.stderr);
    for (const w of warnings) assert.match(w, /open of bucket "bucket" failed .*; retry \d+ in/);

    // --json: the retries are warning events, the error one object.
    const j = await cli(["list", repo, "--json"], { env: awsEnv(t.dir) });
    assert.equal(j.code, 1, j.stderr);
    const objs = j.stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
    assert.ok(objs.some((o) => o.type === "warning"), j.stdout);
    assert.equal(lastOfType(j.stdout, "error").error, "transient");
  } finally {
    hole.close();
  }
});

Deno.test("list and copy of a refused S3 endpoint name no flag that was not given", async () => {
  await using t = await tempDir();
  const hole = blackHole();
  const endpoint = hole.endpoint;
  hole.close(); // nothing listens there now: connections are refused
  const repo = `s3://bucket/p?endpoint=${endpoint}`;
  const l = await cli(["list", repo], { env: awsEnv(t.dir) });
  const c = await cli(["copy", "--from", repo, "--to", path.join(t.dir, "copy")], {
    env: awsEnv(t.dir),
  });
  for (const r of [l, c]) {
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /cannot reach S3 endpoint .* \(ECONNREFUSED\): check the endpoint= /);
    assert.ok(!r.stderr.includes("--to"), r.stderr);
  }
});
