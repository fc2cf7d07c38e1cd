import assert from "node:assert/strict";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { InvalidInput } from "../../store/errors.ts";
import { describeQueryConfig, loadQueryConfig, parseQueryConfig } from "./query_config.ts";

const SAMPLE_DIR = fileURLToPath(new URL("../../testdata/sample-cluster/", import.meta.url));
const SAMPLE = path.join(SAMPLE_DIR, "query-node.toml");

const S3_SECRET = "fake/secret/access/key/for/tests/only/0000";
const S3_KEY_ID = "FAKEACCESSKEYID00SAMPLE";
const META_PASSWORD = "sample-meta-password";
const SECRETS = [S3_SECRET, S3_KEY_ID, META_PASSWORD, "tok-SECRET-token", "urlpass"];

const BASE = `
[query]
tenant_id = "t1"
cluster_id = "c1"

[meta]
endpoints = ["10.0.0.1:9191", "10.0.0.2:9191"]
username = "root"
password = "${META_PASSWORD}"
`;

const S3 = `${BASE}
[storage]
type = "s3"

[storage.s3]
bucket = "data-bucket"
root = "/cluster/"
endpoint_url = "http://admin:urlpass@127.0.0.1:9000"
region = "us-east-1"
access_key_id = "${S3_KEY_ID}"
secret_access_key = "${S3_SECRET}"
security_token = "tok-SECRET-token"
enable_virtual_host_style = false
`;

function assertNoSecret(text: string): void {
  for (const s of SECRETS) assert.ok(!text.includes(s), `secret leaked: ${text}`);
}

/** Asserts `fn` throws InvalidInput matching `re`, with no secret in the message. */
function assertInvalid(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidInput, `expected InvalidInput, got ${String(e)}`);
    assert.match(e.message, re);
    assertNoSecret(e.message);
    return true;
  });
}

Deno.test("the sample config: identity, fs storage resolved against the file, meta", async () => {
  const c = await loadQueryConfig(SAMPLE);
  assert.equal(c.tenantId, "sample_tenant");
  assert.equal(c.clusterId, "sample_cluster");
  assert.deepEqual(c.storage, { type: "fs", dataPath: path.join(SAMPLE_DIR, "storage") });
  assert.deepEqual(c.meta, {
    endpoints: ["127.0.0.1:9191"],
    username: "root",
    password: META_PASSWORD,
  });
  const d = describeQueryConfig(c);
  assert.equal(d.type, "databend");
  assert.equal(d.key, "databend:sample_tenant:sample_cluster");
  assert.deepEqual(d.settings, {
    tenant: "sample_tenant",
    cluster: "sample_cluster",
    storage_type: "fs",
    meta_endpoints: "127.0.0.1:9191",
    data_path: path.join(SAMPLE_DIR, "storage"),
  });
  assertNoSecret(JSON.stringify(d));
});

Deno.test("a relative config path still gives an absolute data_path", () => {
  const c = parseQueryConfig(
    `${BASE}\n[storage]\ntype = "fs"\n[storage.fs]\ndata_path = "../data"\n`,
    "conf/q.toml",
  );
  assert.equal(c.storage.type, "fs");
  if (c.storage.type === "fs") {
    assert.ok(path.isAbsolute(c.storage.dataPath));
    assert.equal(c.storage.dataPath, path.resolve("data"));
  }
  const abs = parseQueryConfig(
    `${BASE}\n[storage]\ntype = "fs"\n[storage.fs]\ndata_path = "/srv/db"\n`,
    "/etc/q.toml",
  );
  assert.deepEqual(abs.storage, { type: "fs", dataPath: "/srv/db" });
});

Deno.test("an s3 config keeps its keys but the description never shows them", () => {
  const c = parseQueryConfig(S3, "/etc/databend/query.toml");
  assert.deepEqual(c.storage, {
    type: "s3",
    bucket: "data-bucket",
    root: "/cluster/",
    endpointUrl: "http://admin:urlpass@127.0.0.1:9000",
    region: "us-east-1",
    accessKeyId: S3_KEY_ID,
    secretAccessKey: S3_SECRET,
    securityToken: "tok-SECRET-token",
    enableVirtualHostStyle: false,
  });
  const d = describeQueryConfig(c);
  assert.equal(d.key, "databend:t1:c1");
  assert.deepEqual(d.settings, {
    tenant: "t1",
    cluster: "c1",
    storage_type: "s3",
    meta_endpoints: "10.0.0.1:9191,10.0.0.2:9191",
    bucket: "data-bucket",
    root: "/cluster/",
    endpoint_url: "http://127.0.0.1:9000",
    region: "us-east-1",
  });
  assert.match(d.description, /storage s3:\/\/data-bucket\/cluster$/);
  assertNoSecret(JSON.stringify(d));
  assert.ok(!JSON.stringify(d).includes('root":"root')); // no meta user either
});

Deno.test("a minimal s3 config leaves optional fields out", () => {
  const c = parseQueryConfig(`${BASE}\n[storage]\ntype = "S3"\n[storage.s3]\nbucket = "b"\n`, "q");
  assert.deepEqual(c.storage, { type: "s3", bucket: "b", root: "" });
});

Deno.test("the older meta.address form is accepted", () => {
  const c = parseQueryConfig(
    `[query]\ntenant_id="t"\ncluster_id="c"\n[meta]\naddress="m:9191"\n` +
      `[storage]\ntype="fs"\n[storage.fs]\ndata_path="/d"\n`,
    "q",
  );
  assert.deepEqual(c.meta, { endpoints: ["m:9191"] });
});

Deno.test("unsupported storage types are refused with the supported ones named", () => {
  assertInvalid(
    () => parseQueryConfig(`${BASE}\n[storage]\ntype = "gcs"\n`, "/etc/q.toml"),
    /^storage type "gcs" in \/etc\/q.toml is not supported yet: use fs or s3$/,
  );
  assertInvalid(
    () => parseQueryConfig(`${BASE}\n[storage]\ntype = "${S3_SECRET}"\n`, "/etc/q.toml"),
    /storage type "\(unrecognised value\)"/,
  );
});

Deno.test("missing sections and keys are named", () => {
  const storage = `\n[storage]\ntype = "fs"\n[storage.fs]\ndata_path = "/d"\n`;
  assertInvalid(() => parseQueryConfig(BASE, "q.toml"), /q.toml has no \[storage\] section/);
  assertInvalid(
    () => parseQueryConfig(`[meta]\nendpoints=["m:1"]\n${storage}`, "q.toml"),
    /has no \[query\] section/,
  );
  assertInvalid(
    () => parseQueryConfig(`[query]\ntenant_id="t"\ncluster_id="c"\n${storage}`, "q.toml"),
    /has no \[meta\] section/,
  );
  assertInvalid(
    () => parseQueryConfig(`[query]\ncluster_id="c"\n[meta]\nendpoints=["m:1"]\n${storage}`, "q"),
    /query.tenant_id is missing in q/,
  );
  assertInvalid(
    () => parseQueryConfig(`${BASE}\n[storage]\ntype = "fs"\n`, "q"),
    /has no \[storage.fs\] section/,
  );
  assertInvalid(
    () => parseQueryConfig(`${BASE}\n[storage]\ntype = "s3"\n[storage.s3]\nroot="x"\n`, "q"),
    /storage.s3.bucket is missing/,
  );
  assertInvalid(
    () =>
      parseQueryConfig(
        `[query]\ntenant_id="t"\ncluster_id="c"\n[meta]\nendpoints=[]\n${storage}`,
        "q",
      ),
    /meta.endpoints is missing or empty/,
  );
});

Deno.test("wrong value types are refused without echoing the value", () => {
  const storage = `\n[storage]\ntype = "fs"\n[storage.fs]\ndata_path = "/d"\n`;
  assertInvalid(
    () =>
      parseQueryConfig(
        `[query]\ntenant_id=5\ncluster_id="c"\n[meta]\nendpoints=["m"]${storage}`,
        "q",
      ),
    /query.tenant_id in q must be a string/,
  );
  assertInvalid(
    () =>
      parseQueryConfig(
        `[query]\ntenant_id="t"\ncluster_id="c"\n[meta]\nendpoints="m:1"\n${storage}`,
        "q",
      ),
    /meta.endpoints in q must be an array/,
  );
  assertInvalid(
    () =>
      parseQueryConfig(
        `[query]\ntenant_id="t"\ncluster_id="c"\n[meta]\nendpoints=["m"]\npassword=123\n${storage}`,
        "q",
      ),
    /meta.password in q must be a string/,
  );
  assertInvalid(() => parseQueryConfig(`query = 3\n`, "q"), /query in q must be a table/);
  assertInvalid(
    () =>
      parseQueryConfig(
        S3.replace("enable_virtual_host_style = false", "enable_virtual_host_style = 1"),
        "q",
      ),
    /storage.s3.enable_virtual_host_style in q must be true or false/,
  );
  assertInvalid(
    () =>
      parseQueryConfig(
        S3.replace(`secret_access_key = "${S3_SECRET}"`, "secret_access_key = 7"),
        "q",
      ),
    /storage.s3.secret_access_key in q must be a string/,
  );
});

Deno.test("malformed TOML names the file and line, without quoting the source", () => {
  const text = `[meta]\npassword = "${META_PASSWORD}\nendpoints = ["m"]\n`;
  assertInvalid(
    () => parseQueryConfig(text, "/etc/q.toml"),
    /^\/etc\/q.toml is not valid TOML \(line 2, column \d+: .+\): fix the syntax$/,
  );
  assertInvalid(() => parseQueryConfig(`[query\n`, "x.toml"), /x.toml is not valid TOML \(line 1,/);
});

Deno.test("loadQueryConfig reports a missing file", async () => {
  await assert.rejects(
    loadQueryConfig(path.join(SAMPLE_DIR, "no-such.toml")),
    (e: unknown) => e instanceof InvalidInput && /does not exist/.test(e.message),
  );
});
