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
