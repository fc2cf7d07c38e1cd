/**
 * End to end through the CLI: a Databend cluster backed up from fs or S3
 * storage, with its meta export from a file or from a meta service over
 * gRPC, and restored into fs or S3 storage with the export imported.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {
  assertRefusedWithoutPassphrase,
  cli,
  describeTree,
  filesUnder,
  lastOfType,
  randomBytes,
  tempDir,
} from "../testing/mod.ts";
import { type S3Server, startS3Server } from "../testing/s3_server.ts";
import { startMetaService } from "../testing/meta_service.ts";
import { openClusterStorage } from "../sources/databend/cluster_storage.ts";
import { parseQueryConfig } from "../sources/databend/query_config.ts";

const SAMPLE = path.resolve(import.meta.dirname!, "../testdata/sample-cluster");
const SAMPLE_CONFIG = path.join(SAMPLE, "query-node.toml");
const SAMPLE_EXPORT = path.join(SAMPLE, "meta-export.jsonl");
const SAMPLE_STORAGE = path.join(SAMPLE, "storage");
const META_PASSWORD = "meta-Pa55word-never-stored";

type Storage =
  | { type: "fs"; dataPath: string }
  | { type: "s3"; s3: S3Server; bucket: string; root: string };

/** Writes a databend-query config for the sample tenant and cluster. */
function writeConfig(file: string, storage: Storage, endpoints = ["127.0.0.1:9191"]): string {
  const storageToml = storage.type === "fs"
    ? `[storage]\ntype = "fs"\n[storage.fs]\ndata_path = ${JSON.stringify(storage.dataPath)}\n`
    : `[storage]\ntype = "s3"\n[storage.s3]\nbucket = "${storage.bucket}"\nroot = "${storage.root}"\n` +
      `endpoint_url = "${storage.s3.endpoint}"\nregion = "${storage.s3.region}"\n` +
      `access_key_id = "${storage.s3.credentials.accessKeyId}"\n` +
      `secret_access_key = "${storage.s3.credentials.secretAccessKey}"\n`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(
    file,
    `[query]\ntenant_id = "sample_tenant"\ncluster_id = "sample_cluster"\n` +
      `[meta]\nendpoints = ${
        JSON.stringify(endpoints)
      }\nusername = "root"\npassword = "${META_PASSWORD}"\n` +
      storageToml,
  );
  return file;
}

/** Every object of the storage a config describes: name -> bytes. */
async function objectsOf(configFile: string): Promise<Map<string, Uint8Array>> {
  const c = parseQueryConfig(fs.readFileSync(configFile, "utf8"), configFile);
  const store = await openClusterStorage(c.storage);
  try {
    const out = new Map<string, Uint8Array>();
    for await (const f of store.list("raw")) {
      out.set(f.name, await store.load({ kind: "raw", name: f.name }));
    }
    return out;
  } finally {
    await store.close?.();
  }
}

function assertSameObjects(a: Map<string, Uint8Array>, b: Map<string, Uint8Array>): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, v] of a) assert.deepEqual(b.get(k), v, k);
}

/** Every file under `dir` (not a repository) holding `secret`, as relative paths. */
function filesContaining(dir: string, secret: string): string[] {
  const needle = new TextEncoder().encode(secret);
  return filesUnder(dir).filter((f) => {
    const data = fs.readFileSync(path.join(dir, f));
    outer: for (let i = 0; i + needle.length <= data.length; i++) {
      for (let j = 0; j < needle.length; j++) if (data[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  });
}

/**
 * Checks a fresh fs node restored from a backup of the sample cluster: `node/data` holds the
 * sample's storage (modes and mtimes included) and the one export written beside the config is
 * the sample's meta export.
 */
function assertRestoredSampleNode(node: string): void {
  assert.deepEqual(describeTree(path.join(node, "data")), describeTree(SAMPLE_STORAGE));
  const written = fs.readdirSync(node).filter((n) => n.endsWith(".jsonl"));
  assert.equal(written.length, 1);
  assert.deepEqual(fs.readFileSync(path.join(node, written[0]!)), fs.readFileSync(SAMPLE_EXPORT));
}

function s3Env(t: { dir: string }, s3: S3Server): Record<string, string> {
  return {
    AWS_REGION: s3.region,
    AWS_CONFIG_FILE: path.join(t.dir, "no-aws-config"),
    AWS_SHARED_CREDENTIALS_FILE: path.join(t.dir, "no-aws-credentials"),
  };
}

Deno.test("cluster backup from fs storage restores into S3 storage and into fresh fs storage, identical", async () => {
  await using t = await tempDir();
  const s3 = await startS3Server();
  try {
    await s3.bucket("restored-data");
    const env = s3Env(t, s3);
    const repo = path.join(t.dir, "repo");
    const b = await cli([
      "backup",
      "--from",
      SAMPLE_CONFIG,
      "--to",
      repo,
      "--meta-export-file",
      SAMPLE_EXPORT,
      "--json",
    ]);
    assert.equal(b.code, 0, b.stderr);
    const summary = lastOfType(b.stdout, "summary");
    assert.equal(summary.catalog_databases, 3);
    assert.deepEqual(
      (summary.parts as { name: string }[]).map((p) => p.name),
      ["meta", "storage"],
    );

    // Into an S3-backed cluster config: dry run first, then the restore.
    const s3Config = writeConfig(path.join(t.dir, "s3-node", "query-node.toml"), {
      type: "s3",
      s3,
      bucket: "restored-data",
      root: "cluster-x/",
    });
    const dry = await cli(["restore", "--from", repo, "--to", s3Config], { env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /dry run: nothing was written/);
    assert.match(dry.stdout, /storage \(s3\).*s3:\/\/restored-data\/cluster-x/);
    assert.match(dry.stdout, /databend-metactl import --raft-dir '<raft_dir>' --db /);
    assert.deepEqual(await s3.keys("restored-data"), []);
    const exportFile = path.join(t.dir, "restored-meta.jsonl");
    const r = await cli([
      "restore",
      "--from",
      repo,
      "--to",
      s3Config,
      "--meta-export-to",
      exportFile,
      "--confirm",
    ], { env });
    assert.equal(r.code, 0, r.stderr);
    assertSameObjects(await objectsOf(SAMPLE_CONFIG), await objectsOf(s3Config));
    assert.deepEqual(fs.readFileSync(exportFile), fs.readFileSync(SAMPLE_EXPORT));
    assert.match(r.stdout, /export written; import it with the command above/);

    // A second restore into the same storage is refused without --overwrite, and
    // with it rewrites nothing (every object is equal).
    const again = await cli(["restore", "--from", repo, "--to", s3Config, "--confirm"], { env });
    assert.equal(again.code, 2, again.stdout);
    assert.match(again.stderr, /storage s3:\/\/restored-data\/cluster-x is not empty.*--overwrite/);
    const over = await cli([
      "restore",
      "--from",
      repo,
      "--to",
      s3Config,
      "--meta-export-to",
      exportFile,
      "--overwrite",
      "--confirm",
      "--json",
    ], { env });
    assert.equal(over.code, 0, over.stderr);
    const done = lastOfType(over.stdout, "summary") as {
      storage_result: { files_written: number; files_unchanged: number };
    };
    assert.equal(done.storage_result.files_written, 0);
    assert.equal(done.storage_result.files_unchanged, 45);

    // Into a fresh fs cluster config: the same tree, modes and mtimes included.
    const fsConfig = writeConfig(path.join(t.dir, "fs-node", "query-node.toml"), {
      type: "fs",
      dataPath: "./data",
    });
    const f = await cli(["restore", "--from", repo, "--to", fsConfig, "--confirm"]);
    assert.equal(f.code, 0, f.stderr);
    assertRestoredSampleNode(path.join(t.dir, "fs-node"));

    // No secret of either config in the repository or in any output.
    assert.deepEqual(filesContaining(repo, "sample-meta-password"), []);
    for (const run of [b, dry, r, again, over, f]) {
      assert.ok(!(run.stdout + run.stderr).includes(s3.credentials.secretAccessKey));
      assert.ok(!(run.stdout + run.stderr).includes(META_PASSWORD));
    }
  } finally {
    await s3.stop();
  }
});

Deno.test("cluster backup from S3 storage: the meta export over gRPC, unchanged objects not read again", async () => {
  await using t = await tempDir();
  const s3 = await startS3Server();
  const lines = fs.readFileSync(SAMPLE_EXPORT, "utf8").split("\n").filter((l) => l !== "");
  const meta = await startMetaService({ lines, chunkSize: 7 });
  try {
    await s3.bucket("cluster-data");
    const env = s3Env(t, s3);
    // The cluster's storage: the sample's objects, uploaded to S3.
    const config = writeConfig(path.join(t.dir, "node", "query-node.toml"), {
      type: "s3",
      s3,
      bucket: "cluster-data",
      root: "prod",
    }, ["127.0.0.1:1", meta.endpoint]); // the first endpoint is dead
    const c = parseQueryConfig(fs.readFileSync(config, "utf8"), config);
    const store = await openClusterStorage(c.storage);
    const sample = await objectsOf(SAMPLE_CONFIG);
    // A large object (a stage file) is read in ranges and checked with a HEAD afterwards.
    sample.set("stage/internal/big.csv", randomBytes(20 * 1024 * 1024 + 7, 42));
    for (const [name, data] of sample) await store.save({ kind: "raw", name }, data);
    await store.close?.();

    const repo = path.join(t.dir, "repo");
    const first = await cli(["backup", "--from", config, "--to", repo, "--json"], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(meta.calls, 1);
    const s1 = lastOfType(first.stdout, "summary");
    assert.equal(s1.files, 47); // 46 objects and the meta export
    assert.equal(s1.catalog_databases, 3);

    const second = await cli(["backup", "--from", config, "--to", repo, "--json"], { env });
    assert.equal(second.code, 0, second.stderr);
    const s2 = lastOfType(second.stdout, "summary");
    assert.equal(s2.files_unchanged, 46);
    // Only the export is read again.
    assert.equal(s2.bytes_read, fs.statSync(SAMPLE_EXPORT).size);
    // Nothing new but the meta part's one-file tree (its mtime is the time of the export).
    assert.equal(s2.new_blocks, 1);

    // Restore into fs storage: identical objects and export.
    const fsConfig = writeConfig(path.join(t.dir, "dr", "query-node.toml"), {
      type: "fs",
      dataPath: path.join(t.dir, "dr", "data"),
    });
    const exportFile = path.join(t.dir, "dr", "meta.jsonl");
    const r = await cli([
      "restore",
      "--from",
      repo,
      "--to",
      fsConfig,
      "--meta-export-to",
      exportFile,
      "--confirm",
    ], { env });
    assert.equal(r.code, 0, r.stderr);
    assertSameObjects(sample, await objectsOf(fsConfig));
    assert.deepEqual(fs.readFileSync(exportFile), fs.readFileSync(SAMPLE_EXPORT));
    assert.deepEqual(filesContaining(repo, s3.credentials.secretAccessKey), []);
    assert.deepEqual(filesContaining(repo, META_PASSWORD), []);
  } finally {
    await meta.close();
    await s3.stop();
  }
});

Deno.test("cluster backup --encrypt with the export over gRPC restores identical; no or a wrong passphrase: exit 4, nothing written", async () => {
  await using t = await tempDir();
  const lines = fs.readFileSync(SAMPLE_EXPORT, "utf8").split("\n").filter((l) => l !== "");
  const meta = await startMetaService({ lines });
  try {
    const config = writeConfig(path.join(t.dir, "src", "query-node.toml"), {
      type: "fs",
      dataPath: SAMPLE_STORAGE,
    }, [meta.endpoint]);
    const passFile = path.join(t.dir, "pass");
    fs.writeFileSync(passFile, "cluster passphrase\n", { mode: 0o600 });
    const repo = path.join(t.dir, "repo");
    const b = await cli([
      "backup",
      "--from",
      config,
      "--to",
      repo,
      "--encrypt",
      "--password-file",
      passFile,
      "--json",
    ], { env: { BENDSAVE_PASSWORD: "" } });
    assert.equal(b.code, 0, b.stderr);
    assert.equal(meta.calls, 1);
    const summary = lastOfType(b.stdout, "summary");
    assert.equal(summary.catalog_databases, 3);
    assert.deepEqual((summary.parts as { name: string }[]).map((p) => p.name), ["meta", "storage"]);
    assert.equal(JSON.parse(fs.readFileSync(path.join(repo, "config"), "utf8")).version, 2);
    assert.deepEqual(filesContaining(repo, META_PASSWORD), []);

    const node = path.join(t.dir, "fs-node");
    const fsConfig = writeConfig(path.join(node, "query-node.toml"), {
      type: "fs",
      dataPath: "./data",
    });
    const before = filesUnder(repo);
    await assertRefusedWithoutPassphrase(
      ["restore", "--from", repo, "--to", fsConfig, "--confirm"],
      () => assert.deepEqual(fs.readdirSync(node), ["query-node.toml"]),
    );
    assert.deepEqual(filesUnder(repo), before);
    const r = await cli(["restore", "--from", repo, "--to", fsConfig, "--confirm"], {
      env: { BENDSAVE_PASSWORD: "cluster passphrase" },
    });
    assert.equal(r.code, 0, r.stderr);
    assertRestoredSampleNode(node);
  } finally {
    await meta.close();
  }
});

Deno.test("cluster backup fails cleanly when no meta service answers, writing no manifest", async () => {
  await using t = await tempDir();
  const config = writeConfig(path.join(t.dir, "node", "query-node.toml"), {
    type: "fs",
    dataPath: SAMPLE_STORAGE,
  }, ["127.0.0.1:1"]);
  const repo = path.join(t.dir, "repo");
  const b = await cli(["backup", "--from", config, "--to", repo]);
  assert.equal(b.code, 1, b.stdout + b.stderr);
  assert.equal(b.stderr.trim().split("\n").length, 1, b.stderr);
  assert.match(b.stderr, /127\.0\.0\.1:1/);
  assert.match(b.stderr, /--meta-export-file/);
  assert.ok(!b.stderr.includes(META_PASSWORD));
  // The repository this backup created is removed again: no empty repository is left behind.
  assert.equal(fs.existsSync(repo), false);
  const list = await cli(["list", repo, "--json"]);
  assert.equal(list.code, 2, list.stderr);
});

Deno.test("cluster restore imports with databend-metactl, and refuses a non-empty raft_dir before writing", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  const b = await cli([
    "backup",
    "--from",
    SAMPLE_CONFIG,
    "--to",
    repo,
    "--meta-export-file",
    SAMPLE_EXPORT,
  ]);
  assert.equal(b.code, 0, b.stderr);
  const node = path.join(t.dir, "node");
  const config = writeConfig(path.join(node, "query-node.toml"), {
    type: "fs",
    dataPath: "./data",
  });
  fs.writeFileSync(
    path.join(node, "databend-meta.toml"),
    `[raft_config]\nid = 3\nraft_dir = "./raft"\n`,
  );
  // A stand-in for databend-metactl that records its arguments and the file it was given.
  const metactl = path.join(t.dir, "metactl");
  fs.writeFileSync(
    metactl,
    `#!/bin/sh\nprintf '%s\\n' "$@" > "${t.dir}/args"\nwhile [ $# -gt 0 ]; do [ "$1" = --db ] && cp "$2" "${t.dir}/imported"; shift; done\n`,
    { mode: 0o755 },
  );
  const args = [
    "restore",
    "--from",
    repo,
    "--to",
    config,
    "--meta-config",
    path.join(node, "databend-meta.toml"),
    "--metactl",
    metactl,
    "--confirm",
  ];
  // A raft_dir with data is never imported over: refused before anything is written.
  fs.mkdirSync(path.join(node, "raft"));
  fs.writeFileSync(path.join(node, "raft", "old"), "x");
  const refused = await cli(args);
  assert.equal(refused.code, 2, refused.stdout);
  assert.match(refused.stderr, /raft_dir ".*raft" of the meta node is not empty/);
  assert.equal(fs.existsSync(path.join(node, "data")), false);
  assert.equal(fs.existsSync(path.join(t.dir, "args")), false);
  fs.rmSync(path.join(node, "raft"), { recursive: true });

  const r = await cli(args);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /imported by databend-metactl/);
  const argv = fs.readFileSync(path.join(t.dir, "args"), "utf8").trim().split("\n");
  const exportPath = argv[argv.indexOf("--db") + 1]!;
  assert.deepEqual(argv, [
    "import",
    "--raft-dir",
    path.join(node, "raft"),
    "--db",
    exportPath,
    "--id=3",
  ]);
  assert.deepEqual(fs.readFileSync(path.join(t.dir, "imported")), fs.readFileSync(SAMPLE_EXPORT));
  assert.deepEqual(describeTree(path.join(node, "data")), describeTree(SAMPLE_STORAGE));

  // A fresh node with the same meta config, restored with `program` as databend-metactl.
  const restoreNewNode = (name: string, program: string) => {
    const dir = path.join(t.dir, name);
    const conf = writeConfig(path.join(dir, "query-node.toml"), { type: "fs", dataPath: "./data" });
    fs.copyFileSync(path.join(node, "databend-meta.toml"), path.join(dir, "databend-meta.toml"));
    return cli([
      "restore",
      "--from",
      repo,
      "--to",
      conf,
      "--meta-config",
      path.join(dir, "databend-meta.toml"),
      "--metactl",
      program,
      "--confirm",
    ]);
  };

  // A failing metactl: exit 1, its error and the command to run by hand in one line.
  fs.writeFileSync(metactl, `#!/bin/sh\necho "raft dir locked" >&2\nexit 4\n`, { mode: 0o755 });
  const failed = await restoreNewNode("node2", metactl);
  assert.equal(failed.code, 1, failed.stdout);
  assert.equal(failed.stderr.trim().split("\n").length, 1, failed.stderr);
  assert.match(
    failed.stderr,
    /exited with status 4 \(raft dir locked\).*run: .*metactl import --raft-dir/,
  );

  // A missing metactl says what to install and what to run.
  const missing = await restoreNewNode("node3", path.join(t.dir, "no-such-metactl"));
  assert.equal(missing.code, 1, missing.stdout);
  assert.match(missing.stderr, /was not found: install databend-metactl/);
});

Deno.test("cluster restore refuses a directory backup, and directory flags with a cluster", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  fs.mkdirSync(path.join(t.dir, "src"));
  fs.writeFileSync(path.join(t.dir, "src", "a"), "a");
  assert.equal((await cli(["backup", "--from", path.join(t.dir, "src"), "--to", repo])).code, 0);
  const config = writeConfig(path.join(t.dir, "node", "query-node.toml"), {
    type: "fs",
    dataPath: "./data",
  });
  const r = await cli(["restore", "--from", repo, "--to", config, "--confirm"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /holds no Databend cluster backup/);
  const p = await cli(["restore", "--from", repo, "--to", config, "--part", "storage"]);
  assert.equal(p.code, 2);
  assert.match(p.stderr, /a cluster is restored whole/);
  const m = await cli(["backup", "--from", t.dir, "--to", repo, "--meta-export-file", "x"]);
  assert.equal(m.code, 2);
  assert.match(m.stderr, /are for a cluster/);
});

Deno.test("cluster restore refuses a backup whose meta export packs are missing before writing the storage", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  const backupWith = (exportFile: string) =>
    cli(["backup", "--from", SAMPLE_CONFIG, "--to", repo, "--meta-export-file", exportFile]);
  assert.equal((await backupWith(SAMPLE_EXPORT)).code, 0);
  const packsBefore = new Set(filesUnder(path.join(repo, "packs")));
  // A second backup with a changed export: its new packs hold only the meta part.
  const changed = path.join(t.dir, "changed.jsonl");
  fs.writeFileSync(
    changed,
    fs.readFileSync(SAMPLE_EXPORT, "utf8") +
      `["state_machine/0",{"GenericKV":{"key":"extra","value":{"seq":999,"meta":null,"data":[49]}}}]\n`,
  );
  assert.equal((await backupWith(changed)).code, 0);
  const added = filesUnder(path.join(repo, "packs")).filter((p) => !packsBefore.has(p));
  assert.ok(added.length > 0);
  for (const p of added) fs.rmSync(path.join(repo, "packs", p));

  const node = path.join(t.dir, "node");
  const config = writeConfig(path.join(node, "query-node.toml"), {
    type: "fs",
    dataPath: "./data",
  });
  const r = await cli(["restore", "--from", repo, "--to", config, "--confirm"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /missing from the repository/);
  // Nothing was written: no storage, no export, no scratch directory.
  assert.deepEqual(fs.readdirSync(node), ["query-node.toml"]);
});

Deno.test("cluster backup and restore refuse bad input in one line with exit 2, writing nothing", async () => {
  await using t = await tempDir();
  const repo = path.join(t.dir, "repo");
  const b = await cli([
    "backup",
    "--from",
    SAMPLE_CONFIG,
    "--to",
    repo,
    "--meta-export-file",
    SAMPLE_EXPORT,
  ]);
  assert.equal(b.code, 0, b.stderr);
  const node = path.join(t.dir, "node");
  const config = writeConfig(path.join(node, "query-node.toml"), {
    type: "fs",
    dataPath: "./data",
  });
  const restoreArgs = ["restore", "--from", repo, "--to", config, "--confirm"];
  const refused = async (args: string[], pattern: RegExp) => {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  };

  // The export file is already there.
  const existing = path.join(t.dir, "existing.jsonl");
  fs.writeFileSync(existing, "keep me");
  await refused(
    [...restoreArgs, "--meta-export-to", existing],
    /existing\.jsonl exists: choose another file with --meta-export-to, or pass --overwrite/,
  );
  assert.equal(fs.readFileSync(existing, "utf8"), "keep me");

  // The meta config's raft_dir is a file.
  fs.writeFileSync(path.join(t.dir, "raftfile"), "");
  fs.writeFileSync(
    path.join(t.dir, "meta.toml"),
    `[raft_config]\nid = 1\nraft_dir = "${path.join(t.dir, "raftfile")}"\n`,
  );
  await refused(
    [...restoreArgs, "--meta-config", path.join(t.dir, "meta.toml")],
    /raft_dir ".*raftfile" of the meta config is not a directory: fix \[raft_config\] raft_dir/,
  );

  // The export cannot be written where asked (its directory would be below a file).
  await refused(
    [...restoreArgs, "--meta-export-to", path.join(t.dir, "raftfile", "meta.jsonl")],
    /cannot write the meta export into .*: choose a writable place with --meta-export-to/,
  );
  assert.deepEqual(fs.readdirSync(node), ["query-node.toml"]);

  // Cluster flags with a directory target.
  await refused(
    ["restore", "--from", repo, "--to", path.join(t.dir, "dir"), "--meta-config", "x.toml"],
    /are for a cluster: give its query-node \.toml to --to/,
  );

  // A data_path that is a file.
  const fileConfig = writeConfig(path.join(t.dir, "f", "query-node.toml"), {
    type: "fs",
    dataPath: path.join(t.dir, "raftfile"),
  });
  await refused(
    ["backup", "--from", fileConfig, "--to", repo, "--meta-export-file", SAMPLE_EXPORT],
    /storage data_path ".*raftfile" is not a directory: fix \[storage\.fs\] data_path/,
  );
});
