/**
 * Writes a synthetic Databend fs storage of large objects for the archiver
 * measurements (bench/archiver_ab.sh): COUNT parquet-like objects of MIB
 * MiB each (runs of random bytes and of repeated values, about 2:1 with
 * zstd) under `<dir>/storage/<db>/<table>/_b/`, and `<dir>/fs.toml`, a
 * query-node config whose fs storage is that directory.
 *
 * Run: deno run --allow-all bench/large_objects.ts <dir> [COUNT=16] [MIB=64]
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { prng } from "../testing/mod.ts";

const [dir, countArg, mibArg] = Deno.args;
if (!dir) {
  console.error("usage: deno run --allow-all bench/large_objects.ts <dir> [count] [mib]");
  Deno.exit(2);
}
const count = Number(countArg ?? 16);
const mib = Number(mibArg ?? 64);
const data = path.join(dir, "storage");
// xorshift32 from 12345 (the objects of the RESULTS.md section of 2026-12-01 were made with it).
const next = prng(12345);
for (let i = 0; i < count; i++) {
  const out = new Uint8Array(mib * 1024 * 1024);
  for (let p = 0; p < out.length; p += 4096) {
    const end = Math.min(out.length, p + 4096);
    if (next() % 2) {
      for (let j = p; j < end; j += 4) new DataView(out.buffer).setUint32(j, next());
    } else out.fill(next() % 16, p, end);
  }
  const rel = `1/${10 + (i % 4)}/_b/${i.toString(16).padStart(32, "0")}_v2.parquet`;
  fs.mkdirSync(path.dirname(path.join(data, rel)), { recursive: true });
  fs.writeFileSync(path.join(data, rel), out);
}
fs.writeFileSync(
  path.join(dir, "fs.toml"),
  `[query]\ntenant_id = "bench"\ncluster_id = "bench"\n[meta]\nendpoints = ["127.0.0.1:1"]\n` +
    `[storage]\ntype = "fs"\n[storage.fs]\ndata_path = "${data}"\n`,
);
console.log(`${count} objects of ${mib} MiB in ${data}; config ${path.join(dir, "fs.toml")}`);
