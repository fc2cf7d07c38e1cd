/**
 * The many-small-files benchmark (issue 14): is the memory of a backup and
 * of a restore flat in the number of files? It generates a synthetic tree of
 * N small files (directories of about 1000 entries), then, for each tool in
 * the same run (bendsave, restic), backs it up into a fresh repository and
 * restores it into an empty directory, each step under `/usr/bin/time -v`
 * for its peak resident set size, and reports wall time and peak RSS side by
 * side for every N.
 *
 * `deno run --allow-all bench/many_files.ts [--counts 100000,1000000] [--out FILE]`
 * (also `deno task bench:many-files -- ...`); see bench/README.md.
 *
 * @module
 */
import { mkdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Prng } from "./prng.ts";
import { BendsaveTool, type CommandSpec, ResticTool, runTimed, type Tool } from "./tools.ts";
import { waitForQuiet } from "./cpu.ts";
import { formatCount } from "./report.ts";

/** The tools this benchmark runs. */
const MANY_FILES_TOOLS = ["bendsave", "restic"] as const;
type ManyFilesTool = typeof MANY_FILES_TOOLS[number];

/** Options of the benchmark. */
export interface ManyFilesOptions {
  /** File counts to measure, in order. */
  counts: number[];
  /** Entries per directory. */
  perDir: number;
  /** Tools, in the order the first round runs them (later rounds alternate). */
  only: ManyFilesTool[];
  /** Rounds per count (tool order alternates between rounds). */
  rounds: number;
  /** PRNG seed of the file sizes and contents. */
  seed: number;
  /** Work dir (default bench/out/many-<time>). */
  workdir?: string;
  /** Append the report to this file. */
  out?: string;
  /** Keep the work dir. */
  keep: boolean;
  /** Time limit of one step in seconds. */
  timeoutS: number;
  /** Longest wait for a quiet machine before a step, in seconds (0: no wait). */
  waitQuietS: number;
}

const USAGE = `Usage: deno run --allow-all bench/many_files.ts [options]

  --counts LIST      file counts, comma-separated (default 100000,1000000)
  --per-dir N        entries per directory (default 1000)
  --only LIST        tools among bendsave,restic, in the order the first round
                     runs them (default bendsave,restic)
  --rounds N         rounds per count, tool order alternating (default 1)
  --seed N           seed of the file sizes and contents (default 1)
  --workdir DIR      work dir, on a filesystem with room for the tree and two
                     restores (default bench/out/many-<time>)
  --out FILE         append the report to FILE
  --keep             keep the work dir
  --timeout-s N      time limit of one step in seconds (default 3600)
  --wait-quiet-s N   before each step, wait up to N s for other processes to go
                     quiet (default 60; 0: do not wait)
  -h, --help         this help

Environment: BENDSAVE_BIN runs that executable instead of deno run cli/main.ts.`;

/** Parses the arguments; throws TypeError naming the bad one. */
export function parseManyFilesArgs(argv: readonly string[]): ManyFilesOptions | "help" {
  const args = argv[0] === "--" ? argv.slice(1) : [...argv];
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      counts: { type: "string" },
      "per-dir": { type: "string" },
      only: { type: "string" },
      rounds: { type: "string" },
      seed: { type: "string" },
      workdir: { type: "string" },
      out: { type: "string" },
      keep: { type: "boolean" },
      "timeout-s": { type: "string" },
      "wait-quiet-s": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return "help";
  if (positionals.length > 0) {
    throw new TypeError(`unexpected argument "${positionals[0]}": see --help`);
  }
  const int = (name: string, raw: string | undefined, fallback: number, min: number) => {
    if (raw === undefined) return fallback;
    const n = Number(raw.replaceAll("_", ""));
    if (!Number.isInteger(n) || n < min) {
      throw new TypeError(`--${name} must be an integer of at least ${min}, got "${raw}"`);
    }
    return n;
  };
  const counts = values.counts === undefined
    ? [100_000, 1_000_000]
    : values.counts.split(",").map((c) => int("counts", c.trim(), 0, 1));
  const only = values.only === undefined ? [...MANY_FILES_TOOLS] : values.only.split(",").map(
    (t) => {
      const name = t.trim();
      if (!(MANY_FILES_TOOLS as readonly string[]).includes(name)) {
        throw new TypeError(`--only: "${name}" is not one of ${MANY_FILES_TOOLS.join(", ")}`);
      }
      return name as ManyFilesTool;
    },
  );
  const options: ManyFilesOptions = {
    counts,
    perDir: int("per-dir", values["per-dir"], 1000, 1),
    only: [...new Set(only)],
    rounds: int("rounds", values.rounds, 1, 1),
    seed: int("seed", values.seed, 1, 0),
    keep: values.keep === true,
    timeoutS: int("timeout-s", values["timeout-s"], 3600, 1),
    waitQuietS: int("wait-quiet-s", values["wait-quiet-s"], 60, 0),
  };
  if (values.workdir !== undefined) options.workdir = values.workdir;
  if (values.out !== undefined) options.out = values.out;
  return options;
}

/** The relative path of file `i` of a tree with `perDir` entries per directory. */
export function filePath(i: number, perDir: number): string {
  const dir = Math.floor(i / perDir);
  return `d${String(dir).padStart(4, "0")}/f${String(i % perDir).padStart(4, "0")}.txt`;
}

const WORDS = [
  "alpha",
  "bravo",
  "delta",
  "echo",
  "kilo",
  "lima",
  "oscar",
  "romeo",
  "tango",
  "zulu",
];

/**
 * The bytes of file `i`: a line naming it (so no two files are equal and
 * deduplication does not shrink the tree) and 20-2000 bytes of words.
 */
export function fileContent(i: number, rng: Prng): Uint8Array {
  const target = rng.int(20, 2000);
  let s = `file ${i}\n`;
  while (s.length < target) {
    s += WORDS[rng.int(0, WORDS.length - 1)] + (rng.chance(0.1) ? "\n" : " ");
  }
  return new TextEncoder().encode(s);
}

/** Writes the tree of `n` files under `root`; returns its bytes. */
export function generateTree(root: string, n: number, perDir: number, seed: number): number {
  const rng = new Prng(seed, `many-files-${n}`);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    if (i % perDir === 0) mkdirSync(join(root, filePath(i, perDir), ".."), { recursive: true });
    const data = fileContent(i, rng);
    writeFileSync(join(root, filePath(i, perDir)), data);
    bytes += data.length;
  }
  return bytes;
}

/** What `/usr/bin/time -v` reports. */
export interface TimeV {
  /** Peak resident set size in kB. */
  readonly maxRssKb: number;
  /** User + system CPU seconds. */
  readonly cpuSeconds: number;
}

/** Parses the report `/usr/bin/time -v` appends to stderr, or null when there is none. */
export function parseTimeV(stderr: string): TimeV | null {
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  const user = /User time \(seconds\): ([\d.]+)/.exec(stderr);
  const sys = /System time \(seconds\): ([\d.]+)/.exec(stderr);
  if (!rss || !user || !sys) return null;
  return { maxRssKb: Number(rss[1]), cpuSeconds: Number(user[1]) + Number(sys[1]) };
}

/** One timed step of one tool. */
export interface StepMeasure {
  readonly seconds: number;
  readonly maxRssKb: number;
  readonly cpuSeconds: number;
}

/** A tool's measures at one file count (one per round). */
export interface CountResult {
  readonly count: number;
  readonly bytes: number;
  readonly tool: ManyFilesTool;
  readonly backup: StepMeasure[];
  readonly restore: StepMeasure[];
  readonly repoBytes: number[];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** `median (min-max)` of `xs` with `digits` decimals (the median alone for one value). */
export function cell(xs: readonly number[], digits: number): string {
  if (xs.length === 0) return "—";
  const f = (x: number) => x.toFixed(digits);
  if (xs.length === 1) return f(xs[0]!);
  return `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
}

/** The report's tables: wall time and peak RSS per count and tool, with bendsave÷restic ratios. */
export function renderManyFiles(results: readonly CountResult[]): string {
  const lines = [
    "| files | tool | backup (s) | backup peak RSS (MB) | restore (s) | restore peak RSS (MB) | repository (MB) |",
    "| ----: | ---- | ---------: | -------------------: | ----------: | --------------------: | --------------: |",
  ];
  const mb = (kb: number) => kb / 1024;
  for (const r of results) {
    lines.push(
      `| ${formatCount(r.count)} | ${r.tool} | ${cell(r.backup.map((s) => s.seconds), 1)} | ${
        cell(r.backup.map((s) => mb(s.maxRssKb)), 0)
      } | ${cell(r.restore.map((s) => s.seconds), 1)} | ${
        cell(r.restore.map((s) => mb(s.maxRssKb)), 0)
      } | ${cell(r.repoBytes.map((b) => b / 1e6), 1)} |`,
    );
  }
  const ratio = (a: number[], b: number[]) =>
    a.length && b.length ? (median(a) / median(b)).toFixed(2) : "—";
  const counts = [...new Set(results.map((r) => r.count))];
  const rows: string[] = [];
  for (const c of counts) {
    const b = results.find((r) => r.count === c && r.tool === "bendsave");
    const p = results.find((r) => r.count === c && r.tool === "restic");
    if (!b || !p) continue;
    rows.push(
      `| ${formatCount(c)} | ${
        ratio(b.backup.map((s) => s.seconds), p.backup.map((s) => s.seconds))
      } | ${ratio(b.backup.map((s) => s.maxRssKb), p.backup.map((s) => s.maxRssKb))} | ${
        ratio(b.restore.map((s) => s.seconds), p.restore.map((s) => s.seconds))
      } | ${ratio(b.restore.map((s) => s.maxRssKb), p.restore.map((s) => s.maxRssKb))} |`,
    );
  }
  if (rows.length) {
    lines.push(
      "",
      "bendsave÷restic (medians; below 1: bendsave faster or smaller):",
      "",
      "| files | backup time | backup RSS | restore time | restore RSS |",
      "| ----: | ----------: | ---------: | -----------: | ----------: |",
      ...rows,
    );
  }
  return lines.join("\n");
}

function dirBytes(root: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) walk(p);
      else if (e.isFile) total += statSync(p).size;
    }
  };
  walk(root);
  return total;
}

async function timedStep(spec: CommandSpec, options: ManyFilesOptions): Promise<StepMeasure> {
  if (options.waitQuietS > 0) {
    await waitForQuiet({ maxBusyCores: 0.2, maxWaitS: options.waitQuietS });
  }
  await runTimed({ cmd: "sync", args: [] }, 60_000);
  const wrapped: CommandSpec = {
    ...spec,
    cmd: "/usr/bin/time",
    args: ["-v", spec.cmd, ...spec.args],
  };
  const r = await runTimed(wrapped, options.timeoutS * 1000);
  const t = parseTimeV(r.stderr);
  if (!r.ok || !t) {
    throw new Error(
      `${spec.cmd} ${spec.args.join(" ")} failed (exit ${r.code}): ${
        (r.error ?? r.stderr).trim().split("\n").slice(-8).join(" | ")
      }`,
    );
  }
  return { seconds: r.seconds, maxRssKb: t.maxRssKb, cpuSeconds: t.cpuSeconds };
}

async function measureTool(
  tool: Tool,
  tree: string,
  work: string,
  options: ManyFilesOptions,
): Promise<{ backup: StepMeasure; restore: StepMeasure; repoBytes: number }> {
  const repo = join(work, `${tool.name}-repo`);
  const target = join(work, `${tool.name}-restore`);
  rmSync(repo, { recursive: true, force: true });
  rmSync(target, { recursive: true, force: true });
  const init = tool.init(repo);
  if (init) {
    const r = await runTimed(init, options.timeoutS * 1000);
    if (!r.ok) throw new Error(`${tool.name} init failed: ${r.stderr.trim()}`);
  }
  const backup = await timedStep(tool.backup(repo, tree, "many"), options);
  mkdirSync(target, { recursive: true });
  const restore = await timedStep(tool.restore(repo, target, "many"), options);
  const repoBytes = dirBytes(repo);
  // Removing a million files takes minutes here: set them aside, removed at the end.
  const trash = join(work, "trash");
  mkdirSync(trash, { recursive: true });
  const stamp = `${tool.name}-${Date.now()}`;
  renameSync(target, join(trash, `${stamp}-restore`));
  renameSync(repo, join(trash, `${stamp}-repo`));
  return { backup, restore, repoBytes };
}

/**
 * Runs the benchmark; prints the markdown report (and appends it to
 * `options.out`) before removing the work dir, and returns it.
 */
export async function runManyFiles(options: ManyFilesOptions): Promise<string> {
  const work = options.workdir ??
    join(new URL("./out", import.meta.url).pathname, `many-${Date.now()}`);
  mkdirSync(work, { recursive: true });
  const ctx = { stateDir: join(work, "state"), probeTimeoutMs: 60_000 };
  const tools: Tool[] = options.only.map((t) =>
    t === "bendsave" ? new BendsaveTool(ctx) : new ResticTool(ctx)
  );
  const versions: string[] = [];
  for (const t of tools) versions.push(`${t.name}: ${(await t.probe()) ?? "not installed"}`);
  const results: CountResult[] = [];
  const log = (s: string) => console.error(`[many-files] ${s}`);
  try {
    for (const count of options.counts) {
      const tree = join(work, `tree-${count}`);
      rmSync(tree, { recursive: true, force: true });
      const t0 = performance.now();
      const bytes = generateTree(tree, count, options.perDir, options.seed);
      log(
        `${formatCount(count)} files, ${(bytes / 1e6).toFixed(1)} MB generated in ${
          ((performance.now() - t0) / 1000).toFixed(1)
        } s`,
      );
      const byTool = new Map(tools.map((t) => [t.name, {
        count,
        bytes,
        tool: t.name as ManyFilesTool,
        backup: [] as StepMeasure[],
        restore: [] as StepMeasure[],
        repoBytes: [] as number[],
      }]));
      for (let round = 0; round < options.rounds; round++) {
        const order = round % 2 === 0 ? tools : [...tools].reverse();
        for (const tool of order) {
          const m = await measureTool(tool, tree, work, options);
          const r = byTool.get(tool.name)!;
          r.backup.push(m.backup);
          r.restore.push(m.restore);
          r.repoBytes.push(m.repoBytes);
          log(
            `${formatCount(count)} round ${round + 1} ${tool.name}: backup ${
              m.backup.seconds.toFixed(1)
            } s ${(m.backup.maxRssKb / 1024).toFixed(0)} MB, restore ${
              m.restore.seconds.toFixed(1)
            } s ${(m.restore.maxRssKb / 1024).toFixed(0)} MB`,
          );
        }
      }
      results.push(...byTool.values());
      renameSync(tree, join(work, "trash", `tree-${count}`));
    }
  } catch (e) {
    if (!options.keep) removeWork(work, log);
    throw e;
  }
  const uname = await runTimed({ cmd: "uname", args: ["-a"] }, 10_000);
  const nproc = await runTimed({ cmd: "nproc", args: [] }, 10_000);
  const report = [
    `## many small files, ${new Date().toISOString()}`,
    "",
    `- command: \`deno run --allow-all bench/many_files.ts ${Deno.args.join(" ")}\``,
    `- machine: \`${uname.stdout.trim()}\`, nproc ${nproc.stdout.trim()}`,
    `- ${versions.join("; ")}`,
    `- tree: N files of 20–2000 bytes of words (each starts with its own name, so none are equal) in directories of ${options.perDir} files; page cache warm from generating it; each tool backs it up into a fresh repository and restores it into an empty directory`,
    `- time: wall seconds of the child process; peak RSS: \`/usr/bin/time -v\` "Maximum resident set size" (threads included); ${options.rounds} round(s), tool order alternating, medians (min–max)`,
    "",
    renderManyFiles(results),
    "",
  ].join("\n");
  if (options.out) Deno.writeTextFileSync(options.out, `\n${report}`, { append: true });
  console.log(report);
  if (!options.keep) removeWork(work, log);
  return report;
}

function removeWork(work: string, log: (s: string) => void): void {
  log(`removing ${work} (trees, restores and repositories: this can take minutes)`);
  rmSync(work, { recursive: true, force: true });
}

if (import.meta.main) {
  let options: ManyFilesOptions | "help";
  try {
    options = parseManyFilesArgs(Deno.args);
  } catch (e) {
    console.error(`many_files: ${(e as Error).message}`);
    Deno.exit(2);
  }
  if (options === "help") {
    console.log(USAGE);
    Deno.exit(0);
  }
  await runManyFiles(options);
}
