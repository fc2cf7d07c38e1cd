/**
 * Measures Databend cluster backup and restore: a synthetic cluster storage
 * (Databend's layout: `<db>/<table>/_b/*.parquet` blocks of 1 MiB, small
 * `_sg/` segments and `_ss/` snapshots) backed up from fs storage and from
 * S3 storage (s3rver on loopback), re-backed up unchanged, and restored into
 * fs and into S3. References in the same run: restic backing up the same
 * directory (when installed: bash bench/install_peers.sh), and a plain read
 * of every object through the S3 driver (what any tool must at least spend
 * on s3rver).
 *
 * Run: deno run --allow-all bench/cluster_measure.ts [--mib 256]
 *
 * @module
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { execFileSync } from "node:child_process";
import { backup } from "../store/backup/backup.ts";
import { FsStore } from "../store/drivers/fs.ts";
import { clusterSource } from "../sources/databend/cluster_source.ts";
import { restoreCluster } from "../sources/databend/cluster_target.ts";
import { openClusterStorage } from "../sources/databend/cluster_storage.ts";
import { parseQueryConfig } from "../sources/databend/query_config.ts";
import { startS3Server } from "../testing/s3_server.ts";
import { prng } from "../testing/mod.ts";

const { values } = parseArgs({ options: { mib: { type: "string" } } });
const MIB = Number(values.mib ?? 256);
const SAMPLE_EXPORT = path.resolve(
  import.meta.dirname!,
  "../testdata/sample-cluster/meta-export.jsonl",
);

/** Parquet-like bytes: runs of random bytes and of repeated values (about 2:1 with zstd). */
function blockBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const r = prng(seed);
  for (let i = 0; i < n; i += 4096) {
    const end = Math.min(n, i + 4096);
    if (r() < 0.5) { for (let j = i; j < end; j++) out[j] = (r() * 256) | 0; }
    else out.fill((r() * 16) | 0, i, end);
  }
  return out;
}

function makeStorage(root: string, mib: number): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const put = (rel: string, data: Uint8Array) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
    files++;
    bytes += data.length;
  };
  let seed = 1;
  for (let b = 0; bytes < mib * 1024 * 1024; b++) {
    const db = 1 + (b % 3);
    const table = 10 + (b % 12);
    const id = b.toString(16).padStart(32, "0");
    put(`${db}/${table}/_b/${id}_v2.parquet`, blockBytes(1024 * 1024, seed++));
    put(`${db}/${table}/_sg/${id}_v4.mpk`, blockBytes(4096, seed++));
  }
  for (let t = 0; t < 12; t++) {
    put(`${1 + (t % 3)}/${10 + t}/_ss/snapshot_v4.mpk`, blockBytes(2048, t));
  }
  return { files, bytes };
}

function writeConfig(file: string, storage: string): string {
  fs.writeFileSync(
    file,
    `[query]\ntenant_id = "bench"\ncluster_id = "bench"\n[meta]\nendpoints = ["127.0.0.1:1"]\n${storage}`,
  );
  return file;
}

async function time<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await f();
  return [(performance.now() - t0) / 1000, r];
}

function restic(args: string[], env: Record<string, string>): void {
  execFileSync("restic", args, { env: { ...process.env, ...env }, stdio: "ignore" });
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bendsave-cluster-bench-"));
const s3 = await startS3Server();
try {
  const data = path.join(tmp, "storage");
  const { files, bytes } = makeStorage(data, MIB);
  const mb = bytes / 1e6;
  const rows: [string, number][] = [];
  const fsConfig = writeConfig(
    path.join(tmp, "fs.toml"),
    `[storage]\ntype = "fs"\n[storage.fs]\ndata_path = "${data}"\n`,
  );
  const s3Storage = (bucket: string) =>
    `[storage]\ntype = "s3"\n[storage.s3]\nbucket = "${bucket}"\nroot = "c"\nendpoint_url = "${s3.endpoint}"\n` +
    `region = "${s3.region}"\naccess_key_id = "${s3.credentials.accessKeyId}"\n` +
    `secret_access_key = "${s3.credentials.secretAccessKey}"\n`;
  await s3.bucket("cluster");
  await s3.bucket("restored");
  const s3Config = writeConfig(path.join(tmp, "s3.toml"), s3Storage("cluster"));
  const restoreS3Config = writeConfig(path.join(tmp, "s3r.toml"), s3Storage("restored"));
  const cfg = parseQueryConfig(fs.readFileSync(s3Config, "utf8"), s3Config);
  const upload = await openClusterStorage(cfg.storage);
  for (const e of fs.readdirSync(data, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const abs = path.join(e.parentPath, e.name);
    await upload.save({ kind: "raw", name: path.relative(data, abs) }, fs.readFileSync(abs));
  }
  const [readAll] = await time(async () => {
    for await (const f of upload.list("raw")) await upload.load({ kind: "raw", name: f.name });
  });
  await upload.close?.();
  const opts = { metaExportFile: SAMPLE_EXPORT };

  const fsRepo = await FsStore.open(path.join(tmp, "repo-fs"), { create: true });
  rows.push([
    "cluster backup, fs storage",
    (await time(async () => backup(fsRepo, await clusterSource(fsConfig, opts))))[0],
  ]);
  rows.push([
    "cluster re-backup, fs storage, unchanged",
    (await time(async () => backup(fsRepo, await clusterSource(fsConfig, opts))))[0],
  ]);
  let resticFirst: number | null = null;
  let resticAgain: number | null = null;
  try {
    const env = { RESTIC_PASSWORD: "bench", RESTIC_REPOSITORY: path.join(tmp, "restic") };
    restic(["init"], env);
    resticFirst = (await time(() => Promise.resolve(restic(["backup", data], env))))[0];
    resticAgain = (await time(() => Promise.resolve(restic(["backup", data], env))))[0];
  } catch (e) {
    console.error(`restic not measured: ${(e as Error).message.split("\n")[0]}`);
  }
  const s3Repo = await FsStore.open(path.join(tmp, "repo-s3"), { create: true });
  rows.push(["read every object through the S3 driver (reference)", readAll]);
  rows.push([
    "cluster backup, S3 storage",
    (await time(async () => backup(s3Repo, await clusterSource(s3Config, opts))))[0],
  ]);
  rows.push([
    "cluster re-backup, S3 storage, unchanged",
    (await time(async () => backup(s3Repo, await clusterSource(s3Config, opts))))[0],
  ]);
  const fsNode = writeConfig(
    path.join(tmp, "node.toml"),
    `[storage]\ntype = "fs"\n[storage.fs]\ndata_path = "${path.join(tmp, "restored")}"\n`,
  );
  rows.push([
    "cluster restore into fs storage",
    (await time(() =>
      restoreCluster(fsRepo, fsNode, { metaExportTo: path.join(tmp, "m1.jsonl") })
    ))[0],
  ]);
  rows.push([
    "cluster restore into S3 storage",
    (await time(() =>
      restoreCluster(fsRepo, restoreS3Config, { metaExportTo: path.join(tmp, "m2.jsonl") })
    ))[0],
  ]);
  if (resticFirst !== null) rows.push(["restic backup of the fs storage directory", resticFirst]);
  if (resticAgain !== null) rows.push(["restic re-backup, unchanged", resticAgain]);

  console.log(`\n## Databend cluster backup and restore, ${new Date().toISOString()}\n`);
  console.log(
    `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), ${
      Math.round(os.totalmem() / 2 ** 30)
    } GiB; ` +
      `storage: ${files} objects, ${
        (bytes / 2 ** 20).toFixed(0)
      } MiB; S3 is s3rver on loopback.\n` +
      `Command: deno run --allow-all bench/cluster_measure.ts --mib ${MIB}\n`,
  );
  console.log("| step | seconds | MB/s |\n| --- | ---: | ---: |");
  for (const [name, s] of rows) {
    console.log(`| ${name} | ${s.toFixed(2)} | ${(mb / s).toFixed(0)} |`);
  }
  if (resticFirst !== null) {
    const ours = rows[0]![1];
    const again = rows[1]![1];
    console.log(
      `\nratio to restic (fs storage): first backup ${
        (ours / resticFirst).toFixed(2)
      }, unchanged re-backup ${(again / resticAgain!).toFixed(2)}`,
    );
  }
} finally {
  await s3.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}
