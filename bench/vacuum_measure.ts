/**
 * Measures the repack threshold of vacuum: for each threshold, ten
 * generations of a tree in which 10% of the files change each time, a
 * `vacuum --keep-last 3` after each; reports the bytes vacuum rewrote
 * (repack cost) and how much larger the repository stays than the data the
 * kept backups need (space overhead).
 *
 * Run: deno run --allow-all bench/vacuum_measure.ts [--files 200] [--file-kib 256]
 *
 * @module
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { FsStore } from "../store/drivers/fs.ts";
import { backup } from "../store/backup/backup.ts";
import { vacuum } from "../store/vacuum.ts";
import { verify } from "../store/verify.ts";
import { dirSource } from "../sources/dir/dir_source.ts";
import { randomBytes } from "../testing/mod.ts";

const { values } = parseArgs({
  options: {
    files: { type: "string" },
    "file-kib": { type: "string" },
    generations: { type: "string" },
  },
});
const FILES = Number(values.files ?? 200);
const FILE_BYTES = Number(values["file-kib"] ?? 256) * 1024;
const GENERATIONS = Number(values.generations ?? 10);
const THRESHOLDS = (Deno.env.get("THRESHOLDS") ?? "0,0.25,0.5,0.75,0.9").split(",").map(Number);

function dirSize(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += fs.statSync(path.join(e.parentPath, e.name)).size;
  }
  return total;
}

async function run(threshold: number): Promise<string> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "bendsave-vacuum-measure-"));
  try {
    const src = path.join(work, "src");
    fs.mkdirSync(src);
    for (let i = 0; i < FILES; i++) {
      fs.writeFileSync(path.join(src, `f${i}`), randomBytes(FILE_BYTES, i + 1));
    }
    const store = await FsStore.open(path.join(work, "repo"), { create: true });
    let rewritten = 0;
    let seconds = 0;
    let seed = 10_000;
    for (let g = 0; g < GENERATIONS; g++) {
      if (g > 0) {
        for (let k = 0; k < FILES / 10; k++) {
          const i = (g * 37 + k * 11) % FILES;
          fs.writeFileSync(path.join(src, `f${i}`), randomBytes(FILE_BYTES, seed++));
        }
      }
      await backup(store, dirSource(src), { workers: 0, init: { packSize: 4 * 1024 * 1024 } });
      const t = performance.now();
      const r = await vacuum(store, { keepLast: 3, repackBelow: threshold });
      seconds += (performance.now() - t) / 1000;
      rewritten += r.repackBytes;
    }
    const report = await verify(store);
    if (!report.ok) {
      throw new Error(
        `verify failed at threshold ${threshold}: ${JSON.stringify(report.problems.slice(0, 3))}`,
      );
    }
    const packs = dirSize(path.join(work, "repo", "packs"));
    // Live data: the distinct file contents of the 3 kept generations, roughly FILES + 2 * FILES/10 files.
    const live = (FILES + 2 * (FILES / 10)) * FILE_BYTES;
    return `| ${threshold} | ${(rewritten / 2 ** 20).toFixed(1)} | ${
      (packs / 2 ** 20).toFixed(1)
    } | ${((packs / live - 1) * 100).toFixed(1)}% | ${seconds.toFixed(2)} |`;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

console.log(
  `${FILES} files of ${
    FILE_BYTES / 1024
  } KiB (incompressible), ${GENERATIONS} generations, 10% of files changed each, vacuum --keep-last 3 after each; 4 MiB packs\n`,
);
console.log(
  "| repack below | MiB rewritten by repack (all vacuums) | packs at the end (MiB) | over live data | vacuum seconds (all) |",
);
console.log("|---|---|---|---|---|");
for (const t of THRESHOLDS) console.log(await run(t));
