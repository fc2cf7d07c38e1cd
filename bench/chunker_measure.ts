/**
 * Measures the chunkers on real files and prints markdown tables (recorded in
 * `bench/CHUNKERS.md`).
 *
 * Run: `deno run --allow-read --allow-sys bench/chunker_measure.ts [--corpus DIR]...
 * [--large DIR]... [--large-count N] [--seed N]`
 * (defaults: `--corpus /usr/share --large /usr/share --large /usr/lib
 * --large-count 20 --seed 20261121`).
 *
 * 1. Dedup: every regular file under the corpus directories (symlinks are
 *    skipped) is chunked on its own with each chunker; blocks are keyed by
 *    SHA-256 over the whole corpus, giving the number of blocks, unique
 *    blocks and unique bytes. Chunking throughput counts only the time spent
 *    in `splitAll` (not reading or hashing).
 * 2. Shifted insertion: `large-count` files over 4 MiB from the `--large`
 *    directories (a seeded pick) each get 100 seeded random bytes inserted at
 *    a seeded random position; for each chunker, the bytes of the edited
 *    file that are in blocks not present in the original file's blocks are
 *    "new" (what a backup after the edit would upload).
 * 3. Block sizes on 256 MiB of xorshift32 pseudo-random bytes: number of
 *    blocks, mean length of all but the last block, and chunking speed.
 *
 * @module
 */

import { createHash } from "node:crypto";
import {
  type ChunkerParams,
  DEFAULT_FASTCDC,
  DEFAULT_FIXED,
  splitAll,
} from "../formats/chunker.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** The chunkers compared, with a short label each. */
const CONFIGS: { label: string; params: ChunkerParams }[] = [
  { label: "fixed 8 MiB (DEFAULT_FIXED)", params: DEFAULT_FIXED },
  {
    label: "fastcdc 256K/1M/4M",
    params: { kind: "fastcdc", min: 256 * KiB, avg: 1 * MiB, max: 4 * MiB },
  },
  { label: "fastcdc 512K/2M/8M (DEFAULT_FASTCDC)", params: DEFAULT_FASTCDC },
  {
    label: "fastcdc 1M/4M/16M",
    params: { kind: "fastcdc", min: 1 * MiB, avg: 4 * MiB, max: 16 * MiB },
  },
];

interface Args {
  corpus: string[];
  large: string[];
  largeCount: number;
  seed: number;
}

function parseArgs(argv: string[]): Args {
  const corpus: string[] = [];
  const large: string[] = [];
  let largeCount = 20;
  let seed = 20261121;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new TypeError(`Missing value after ${String(flag)}.`);
    i++;
    if (flag === "--corpus") corpus.push(value);
    else if (flag === "--large") large.push(value);
    else if (flag === "--large-count") largeCount = Number(value);
    else if (flag === "--seed") seed = Number(value);
    else throw new TypeError(`Unknown flag ${JSON.stringify(flag)}.`);
  }
  return {
    corpus: corpus.length > 0 ? corpus : ["/usr/share"],
    large: large.length > 0 ? large : ["/usr/share", "/usr/lib"],
    largeCount,
    seed,
  };
}

/** Regular files under `dir`, depth first in sorted order; unreadable directories are skipped. */
function* walk(dir: string): Generator<{ path: string; size: number }> {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (e.isSymlink) continue;
    if (e.isDirectory) yield* walk(path);
    else if (e.isFile) {
      try {
        yield { path, size: Deno.statSync(path).size };
      } catch {
        // vanished or unreadable: skip
      }
    }
  }
}

/** xorshift32 stream in [0, 1). */
function rng(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

function sha(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("base64");
}

function blocks(data: Uint8Array, lengths: number[]): { key: string; length: number }[] {
  const out: { key: string; length: number }[] = [];
  let offset = 0;
  for (const length of lengths) {
    out.push({ key: sha(data.subarray(offset, offset + length)), length });
    offset += length;
  }
  return out;
}

const mib = (n: number) => (n / MiB).toFixed(n < 10 * MiB ? 2 : 1);
const pct = (a: number, b: number) => (b === 0 ? "-" : `${(100 * a / b).toFixed(1)}%`);

function dedupTable(dirs: string[]): string {
  const stats = CONFIGS.map(() => ({
    blocks: 0,
    unique: new Map<string, number>(),
    uniqueBytes: 0,
    ms: 0,
  }));
  let files = 0;
  let bytes = 0;
  let unreadable = 0;
  let largest = 0;
  for (const dir of dirs) {
    for (const f of walk(dir)) {
      let data: Uint8Array;
      try {
        data = Deno.readFileSync(f.path);
      } catch {
        unreadable++;
        continue;
      }
      files++;
      bytes += data.length;
      largest = Math.max(largest, data.length);
      CONFIGS.forEach((c, i) => {
        const s = stats[i]!;
        const t0 = performance.now();
        const lengths = splitAll(c.params, data);
        s.ms += performance.now() - t0;
        for (const b of blocks(data, lengths)) {
          s.blocks++;
          if (!s.unique.has(b.key)) {
            s.unique.set(b.key, b.length);
            s.uniqueBytes += b.length;
          }
        }
      });
    }
  }
  const lines = [
    `Corpus ${dirs.join(", ")}: ${files} files, ${bytes} bytes (${mib(bytes)} MiB), largest file ${
      mib(largest)
    } MiB, ${unreadable} unreadable files skipped.`,
    "",
    "| chunker | blocks | mean block (KiB) | unique blocks | unique bytes (MiB) | unique / total | chunking MiB/s |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  CONFIGS.forEach((c, i) => {
    const s = stats[i]!;
    const speed = s.ms > 0 ? (bytes / MiB / (s.ms / 1000)).toFixed(0) : "-";
    lines.push(
      `| ${c.label} | ${s.blocks} | ${
        (bytes / Math.max(1, s.blocks) / KiB).toFixed(0)
      } | ${s.unique.size} | ${mib(s.uniqueBytes)} | ${pct(s.uniqueBytes, bytes)} | ${speed} |`,
    );
  });
  return lines.join("\n");
}

function insertionTable(dirs: string[], count: number, seed: number): string {
  const seen = new Set<string>();
  const candidates: { path: string; size: number }[] = [];
  for (const dir of dirs) {
    for (const f of walk(dir)) {
      if (f.size > 4 * MiB && !seen.has(f.path)) {
        seen.add(f.path);
        candidates.push(f);
      }
    }
  }
  const random = rng(seed);
  // Seeded Fisher-Yates shuffle, then the first `count`.
  for (let i = candidates.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [candidates[i], candidates[j]] = [candidates[j]!, candidates[i]!];
  }
  const picked = candidates.slice(0, count);
  const totals = CONFIGS.map(() => ({ newBytes: 0, newBlocks: 0, fractions: [] as number[] }));
  let editedBytes = 0;
  const fileLines: string[] = [];
  for (const f of picked) {
    const original = Deno.readFileSync(f.path);
    const at = Math.floor(random() * (original.length + 1));
    const insert = new Uint8Array(100).map(() => Math.floor(random() * 256));
    const edited = new Uint8Array(original.length + insert.length);
    edited.set(original.subarray(0, at));
    edited.set(insert, at);
    edited.set(original.subarray(at), at + insert.length);
    editedBytes += edited.length;
    const perFile: string[] = [];
    CONFIGS.forEach((c, i) => {
      const before = new Set(blocks(original, splitAll(c.params, original)).map((b) => b.key));
      let newBytes = 0;
      let newBlocks = 0;
      for (const b of blocks(edited, splitAll(c.params, edited))) {
        if (!before.has(b.key)) {
          newBytes += b.length;
          newBlocks++;
        }
      }
      const t = totals[i]!;
      t.newBytes += newBytes;
      t.newBlocks += newBlocks;
      t.fractions.push(newBytes / edited.length);
      perFile.push(pct(newBytes, edited.length));
    });
    fileLines.push(
      `| ${f.path} | ${mib(original.length)} | ${pct(at, original.length)} | ${
        perFile.join(" | ")
      } |`,
    );
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length === 0 ? 0 : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  };
  const lines = [
    `Shifted insertion: ${picked.length} of ${candidates.length} files over 4 MiB under ${
      dirs.join(", ")
    } (seed ${seed}), ${mib(editedBytes)} MiB after edits; 100 random bytes inserted per file.`,
    "",
    "| chunker | new bytes (MiB) | new / total bytes | median per-file new fraction | new blocks per edit | new MiB per edit |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  CONFIGS.forEach((c, i) => {
    const t = totals[i]!;
    const n = Math.max(1, picked.length);
    lines.push(
      `| ${c.label} | ${mib(t.newBytes)} | ${pct(t.newBytes, editedBytes)} | ${
        (100 * median(t.fractions)).toFixed(1)
      }% | ${(t.newBlocks / n).toFixed(2)} | ${mib(t.newBytes / n)} |`,
    );
  });
  lines.push(
    "",
    "Per file (new fraction of the edited file):",
    "",
    `| file | MiB | insert at | ${CONFIGS.map((c) => c.label).join(" | ")} |`,
    `| --- | ---: | ---: | ${CONFIGS.map(() => "---:").join(" | ")} |`,
    ...fileLines,
  );
  return lines.join("\n");
}

function randomTable(): string {
  const data = new Uint8Array(256 * MiB);
  const words = new Uint32Array(data.buffer);
  let s = 0x5eed;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    words[i] = s >>> 0;
  }
  const lines = [
    "Block sizes on 256 MiB of pseudo-random bytes (xorshift32, seed 0x5eed):",
    "",
    "| chunker | blocks | mean block without the last (MiB) | chunking MiB/s |",
    "| --- | ---: | ---: | ---: |",
  ];
  for (const c of CONFIGS) {
    const t0 = performance.now();
    const lengths = splitAll(c.params, data);
    const ms = performance.now() - t0;
    const full = lengths.slice(0, -1);
    const mean = full.reduce((a, b) => a + b, 0) / Math.max(1, full.length);
    lines.push(
      `| ${c.label} | ${lengths.length} | ${mib(mean)} | ${
        ms > 0 ? (data.length / MiB / (ms / 1000)).toFixed(0) : "-"
      } |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const args = parseArgs(Deno.args);
  console.log(`## Chunker measurements (${new Date().toISOString()})\n`);
  console.log(
    `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} logical CPUs, ${Deno.build.target}, kernel ${Deno.osRelease()}.\n`,
  );
  console.log(dedupTable(args.corpus));
  console.log("");
  console.log(insertionTable(args.large, args.largeCount, args.seed));
  console.log("");
  console.log(randomTable());
}
