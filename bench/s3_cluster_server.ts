/**
 * Serves a Databend cluster's storage on S3 for the archiver measurements:
 * starts s3rver on loopback (testing/s3_server.ts), uploads the first COUNT
 * objects of an fs storage (bench/large_objects.ts) into bucket `cluster`
 * under root `c`, writes a query-node config for it, prints `ready`, and
 * serves until it is stopped (Ctrl-C or kill).
 *
 * Run: deno run --allow-all bench/s3_cluster_server.ts <storage dir> <config out> [COUNT=8]
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { startS3Server } from "../testing/s3_server.ts";
import { openClusterStorage } from "../sources/databend/cluster_storage.ts";
import { parseQueryConfig } from "../sources/databend/query_config.ts";

const [data, configFile, countArg] = Deno.args;
if (!data || !configFile) {
  console.error(
    "usage: deno run --allow-all bench/s3_cluster_server.ts <storage dir> <config out> [count]",
  );
  Deno.exit(2);
}
const count = Number(countArg ?? 8);
const s3 = await startS3Server();
await s3.bucket("cluster");
const toml =
  `[query]\ntenant_id = "bench"\ncluster_id = "bench"\n[meta]\nendpoints = ["127.0.0.1:1"]\n` +
  `[storage]\ntype = "s3"\n[storage.s3]\nbucket = "cluster"\nroot = "c"\nendpoint_url = "${s3.endpoint}"\n` +
  `region = "${s3.region}"\naccess_key_id = "${s3.credentials.accessKeyId}"\n` +
  `secret_access_key = "${s3.credentials.secretAccessKey}"\n`;
fs.writeFileSync(configFile, toml);
const store = await openClusterStorage(parseQueryConfig(toml, configFile).storage);
const files = fs.readdirSync(data, { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile()).slice(0, count);
for (const e of files) {
  const abs = path.join(e.parentPath, e.name);
  await store.save({ kind: "raw", name: path.relative(data, abs) }, fs.readFileSync(abs));
}
console.log(`ready: ${files.length} objects, config ${configFile}`);
await new Promise(() => {});
