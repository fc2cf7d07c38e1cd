import assert from "node:assert/strict";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { InvalidInput } from "../../store/errors.ts";
import { tempDir } from "../../testing/mod.ts";
import { loadMetaConfig, parseMetaConfig } from "./meta_config.ts";

const SAMPLE_DIR = fileURLToPath(new URL("../../testdata/sample-cluster/", import.meta.url));
const SAMPLE = path.join(SAMPLE_DIR, "databend-meta.toml");
const FILE = "/etc/databend/databend-meta.toml";

/** Asserts `fn` throws InvalidInput whose message matches every pattern. */
function assertInvalid(fn: () => unknown, ...res: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidInput, `expected InvalidInput, got ${String(e)}`);
    for (const re of res) assert.match(e.message, re);
    return true;
  });
}

Deno.test("loadMetaConfig resolves the sample's relative raft_dir against the file's directory", async () => {
  const c = await loadMetaConfig(SAMPLE);
  assert.deepEqual(c, { raftDir: path.join(SAMPLE_DIR, "meta-raft"), id: 1 });
  assert.ok(path.isAbsolute(c.raftDir));
});

Deno.test("loadMetaConfig resolves a relative config path against the working directory", async () => {
  const rel = path.relative(Deno.cwd(), SAMPLE);
  const c = await loadMetaConfig(rel);
  assert.equal(c.raftDir, path.join(SAMPLE_DIR, "meta-raft"));
});

Deno.test("parseMetaConfig keeps an absolute raft_dir", () => {
  const c = parseMetaConfig(`[raft_config]\nid = 3\nraft_dir = "/var/lib/databend/raft"\n`, FILE);
  assert.deepEqual(c, { raftDir: "/var/lib/databend/raft", id: 3 });
});

Deno.test("parseMetaConfig resolves ../ in raft_dir and defaults id to 0", () => {
  const c = parseMetaConfig(`[raft_config]\nraft_dir = "../data/raft"\n`, FILE);
  assert.deepEqual(c, { raftDir: "/etc/data/raft", id: 0 });
});

Deno.test("parseMetaConfig rejects a config without [raft_config], naming the file", () => {
  assertInvalid(
    () => parseMetaConfig(`grpc_api_address = "127.0.0.1:9191"\n[log]\n`, FILE),
    /\/etc\/databend\/databend-meta\.toml/,
    /no \[raft_config\] section/,
  );
  assertInvalid(() => parseMetaConfig(`raft_config = 5\n`, FILE), /no \[raft_config\] section/);
});

Deno.test("parseMetaConfig rejects a missing or empty raft_dir", () => {
  for (const body of ["id = 1\n", `id = 1\nraft_dir = ""\n`]) {
    assertInvalid(
      () => parseMetaConfig(`[raft_config]\n${body}`, FILE),
      /raft_config\.raft_dir is missing/,
      /databend-meta\.toml/,
    );
  }
  assertInvalid(
    () => parseMetaConfig(`[raft_config]\nraft_dir = 7\n`, FILE),
    /raft_config\.raft_dir .* must be a string/,
  );
});

Deno.test("parseMetaConfig rejects an id that is not a non-negative integer", () => {
  for (const id of [`"1"`, "-1", "1.5", "-0.5", "inf", "nan", "true", "[1]"]) {
    assertInvalid(
      () => parseMetaConfig(`[raft_config]\nid = ${id}\nraft_dir = "r"\n`, FILE),
      /raft_config\.id in \/etc\/databend\/databend-meta\.toml must be a non-negative integer/,
    );
  }
});

Deno.test("parseMetaConfig names the line and column of malformed TOML", () => {
  const text = `[raft_config]\nid = 1\nraft_dir = "unterminated\n`;
  assertInvalid(
    () => parseMetaConfig(text, FILE),
    /databend-meta\.toml is not valid TOML/,
    /line 3, column \d+/,
  );
  assertInvalid(() => parseMetaConfig(`[raft_config\n`, FILE), /line 1, column \d+/);
});

Deno.test("loadMetaConfig rejects a missing file with InvalidInput", async () => {
  await using t = await tempDir();
  const missing = path.join(t.dir, "nope.toml");
  await assert.rejects(loadMetaConfig(missing), (e: unknown) => {
    assert.ok(e instanceof InvalidInput, String(e));
    assert.match(e.message, /does not exist/);
    assert.ok(e.message.includes(missing), e.message);
    return true;
  });
});

Deno.test("loadMetaConfig reads a written file and anchors raft_dir at its directory", async () => {
  await using t = await tempDir();
  const file = path.join(t.dir, "conf", "meta.toml");
  await Deno.mkdir(path.dirname(file));
  await Deno.writeTextFile(file, `[raft_config]\nid = 42\nraft_dir = "raft"\n`);
  assert.deepEqual(await loadMetaConfig(file), {
    raftDir: path.join(t.dir, "conf", "raft"),
    id: 42,
  });
});

Deno.test("parseMetaConfig refuses a float id even when it is whole", () => {
  for (const id of ["1.0", "2e0"]) {
    assert.throws(
      () => parseMetaConfig(`[raft_config]\nraft_dir = "/r"\nid = ${id}\n`, "m.toml"),
      (e: unknown) => e instanceof InvalidInput && /raft_config\.id/.test((e as Error).message),
    );
  }
});
