import assert from "node:assert/strict";
import { describeRepoUri, parseRepoUri, type RepoUri, S3_OPTIONS } from "./uri.ts";

function throwsType(s: string, quoted: string): void {
  assert.throws(() => parseRepoUri(s), (e: unknown) => {
    assert.ok(e instanceof TypeError, `${JSON.stringify(s)}: expected TypeError, got ${String(e)}`);
    assert.ok(e.message.includes(quoted), `message ${JSON.stringify(e.message)} lacks ${quoted}`);
    return true;
  });
}

Deno.test("parseRepoUri reads a plain path as an fs location", () => {
  for (
    const p of ["/backups/repo", "relative/dir", ".", "./repo", "C:\\backups", "name with spaces"]
  ) {
    assert.deepEqual(parseRepoUri(p), { scheme: "fs", path: p });
  }
});

Deno.test("parseRepoUri does not take a single-slash s3:/ for a URI", () => {
  assert.deepEqual(parseRepoUri("s3:/x"), { scheme: "fs", path: "s3:/x" });
});

Deno.test("parseRepoUri reads fs:// and decodes %-escapes", () => {
  assert.deepEqual(parseRepoUri("fs:///backups/repo"), { scheme: "fs", path: "/backups/repo" });
  assert.deepEqual(parseRepoUri("fs://relative"), { scheme: "fs", path: "relative" });
  assert.deepEqual(parseRepoUri("fs:///tmp/a%20b%25"), { scheme: "fs", path: "/tmp/a b%" });
});

Deno.test("parseRepoUri throws TypeError on fs:// with no path", () => {
  throwsType("fs://", `"fs://"`);
});

Deno.test("parseRepoUri throws TypeError, not URIError, on a malformed %-escape", () => {
  throwsType("fs:///tmp/100%", `"fs:///tmp/100%"`);
  throwsType("fs:///tmp/%zz", `"fs:///tmp/%zz"`);
});

Deno.test("parseRepoUri reads s3://bucket/prefix with every S3 option", () => {
  const u = parseRepoUri(
    "s3://my-bucket/backups/prod?region=eu-west-1&endpoint=http%3A%2F%2Fminio%3A9000" +
      "&force_path_style=true&storage_class=GLACIER_IR&profile=ops&timeout=45",
  );
  assert.deepEqual(u, {
    scheme: "s3",
    bucket: "my-bucket",
    prefix: "backups/prod",
    options: {
      region: "eu-west-1",
      endpoint: "http://minio:9000",
      force_path_style: "true",
      storage_class: "GLACIER_IR",
      profile: "ops",
      timeout: "45",
    },
  });
  assert.deepEqual([...S3_OPTIONS].sort(), Object.keys(u.scheme === "s3" ? u.options : {}).sort());
});

Deno.test("parseRepoUri reads s3:// with no prefix and trims slashes from a prefix", () => {
  assert.deepEqual(parseRepoUri("s3://bk"), {
    scheme: "s3",
    bucket: "bk",
    prefix: "",
    options: {},
  });
  assert.deepEqual(parseRepoUri("s3://bk/"), {
    scheme: "s3",
    bucket: "bk",
    prefix: "",
    options: {},
  });
  assert.deepEqual(parseRepoUri("s3://bk?region=us-east-1"), {
    scheme: "s3",
    bucket: "bk",
    prefix: "",
    options: { region: "us-east-1" },
  });
  assert.deepEqual(parseRepoUri("s3://bk//a/b//"), {
    scheme: "s3",
    bucket: "bk",
    prefix: "a/b",
    options: {},
  });
  assert.deepEqual(parseRepoUri("s3://bk.example.com/x?"), {
    scheme: "s3",
    bucket: "bk.example.com",
    prefix: "x",
    options: {},
  });
});

Deno.test("parseRepoUri throws TypeError on a bad bucket name", () => {
  for (
    const [s, bucket] of [["s3://", ""], ["s3:///prefix", ""], ["s3://b/x", "b"], [
      "s3://-bk/x",
      "-bk",
    ]]
  ) {
    throwsType(s!, `"${bucket}"`);
  }
  throwsType(`s3://${"a".repeat(256)}`, "not a valid bucket name");
  throwsType("s3://bad bucket/x", `"bad bucket"`);
});

Deno.test("parseRepoUri throws TypeError naming an unknown S3 option", () => {
  throwsType("s3://bk/p?regoin=eu-west-1", `"regoin"`);
  throwsType("s3://bk/p?region=eu-west-1&access_key=x", `"access_key"`);
});

Deno.test("parseRepoUri never echoes query values in its errors", () => {
  for (const s of ["s3://bk/p?secret_access_key=TOPSECRET", "s3://b/p?region=TOPSECRET"]) {
    assert.throws(() => parseRepoUri(s), (e: unknown) => {
      assert.ok(e instanceof TypeError);
      assert.ok(!e.message.includes("TOPSECRET"), e.message);
      return true;
    });
  }
});

Deno.test("parseRepoUri reads staged: with one or more directories", () => {
  assert.deepEqual(parseRepoUri("staged:/a"), { scheme: "staged", dirs: ["/a"] });
  assert.deepEqual(parseRepoUri("staged:/a,/b"), { scheme: "staged", dirs: ["/a", "/b"] });
  assert.deepEqual(parseRepoUri("staged: /mnt/t1 , ,/mnt/t2,"), {
    scheme: "staged",
    dirs: ["/mnt/t1", "/mnt/t2"],
  });
});

Deno.test("parseRepoUri throws TypeError on an empty staged list", () => {
  for (const s of ["staged:", "staged:,", "staged: , ,"]) throwsType(s, JSON.stringify(s));
});

Deno.test("parseRepoUri throws TypeError on an unknown scheme", () => {
  for (
    const [s, scheme] of [["http://x/y", "http"], ["HTTPS://x", "HTTPS"], ["gs://bk/p", "gs"], [
      "s3a://bk",
      "s3a",
    ]]
  ) {
    throwsType(s!, `"${scheme}"`);
  }
});

Deno.test("parseRepoUri throws TypeError on an empty location", () => {
  assert.throws(() => parseRepoUri(""), TypeError);
});

Deno.test("describeRepoUri never contains query values", () => {
  const s =
    "s3://bk/prod?region=REGIONVALUE&endpoint=https%3A%2F%2FENDPOINTVALUE&profile=PROFILEVALUE" +
    "&storage_class=CLASSVALUE&force_path_style=true";
  const d = describeRepoUri(parseRepoUri(s));
  assert.equal(d, "s3://bk/prod");
  for (
    const v of ["REGIONVALUE", "ENDPOINTVALUE", "PROFILEVALUE", "CLASSVALUE", "true", "?", "="]
  ) {
    assert.ok(!d.includes(v), `${d} contains ${v}`);
  }
});

Deno.test("describeRepoUri gives back a location that parses to the same value", () => {
  const cases: RepoUri[] = [
    { scheme: "fs", path: "/backups/repo" },
    { scheme: "s3", bucket: "bk", prefix: "", options: {} },
    { scheme: "s3", bucket: "bk", prefix: "a/b", options: {} },
    { scheme: "staged", dirs: ["/a", "/b"] },
  ];
  for (const u of cases) assert.deepEqual(parseRepoUri(describeRepoUri(u)), u);
  assert.equal(describeRepoUri({ scheme: "staged", dirs: ["/a", "/b"] }), "staged:/a,/b");
});
