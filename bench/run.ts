/**
 * The benchmark harness behind `deno task bench`: generates (or takes) a
 * corpus, then times bendsave, restic and borg on it, each as a child
 * process: first backup, unchanged backup, backup after a ~1% change,
 * restore into an empty directory (checked byte for byte against the source)
 * and verification reading all data; then prints a markdown table.
 *
 * ```sh
 * deno task bench -- --size-mb 700 --out bench/RESULTS.md
 * deno task bench -- --only restic,borg --size-mb 100
 * ```
 *
 * @module
 */

import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  type CorpusSummary,
  generateCorpus,
  mutateCorpus,
  type MutationSummary,
} from "./corpus.ts";
import { cpuDelta, type CpuTimes, readCpuTimes, waitForQuiet } from "./cpu.ts";
import {
  formatCount,
  formatMB,
  renderChecks,
  renderContention,
  renderCpuTable,
  renderFailures,
  renderMemoryTable,
  renderTable,
  rssMB,
  type StepId,
  type StepResult,
  STEPS,
  type ToolResult,
} from "./report.ts";
import {
  BendsaveTool,
  type CommandSpec,
  createTool,
  runTimed,
  type Tool,
  TOOL_NAMES,
  type ToolName,
} from "./tools.ts";
import {
  compareManifests,
  manifestTree,
  summarizeTree,
  treeBytes,
  type TreeEntry,
  type TreeSummary,
  warmTree,
} from "./tree.ts";

/** Parsed command-line options of the harness. */
export interface BenchOptions {
  /** Approximate size of the generated corpus in MB (10^6 bytes). */
  sizeMb: number;
  /** PRNG seed of the generated corpus and its change. */
  seed: number;
  /** A real directory to back up instead of a generated corpus (never modified). */
  corpus?: string;
  /** Tools to run, in column order. */
  only: ToolName[];
  /** Keep the work dir after the run. */
  keep: boolean;
  /** A results file to append the report to. */
  out?: string;
  /** The work dir (default bench/out/run-<time>). */
  workdir?: string;
  /** Time limit of one step in seconds. */
  timeoutS: number;
  /** Longest wait for a quiet machine before a step, in seconds (0: no wait). */
  waitQuietS: number;
  /** How many times to run everything; the report shows medians. */
  rounds: number;
}

const USAGE = `Usage: deno task bench -- [options]

  --size-mb N        approximate size of the generated corpus in MB (default 700)
  --seed N           seed of the generated corpus and of its ~1% change (default 1)
  --corpus DIR       back up this real directory instead (read only: no change step)
  --only LIST        comma-separated tools among bendsave,bendsave-enc,restic,borg (default all)
  --out FILE         append the report, with a header, to FILE
  --rounds N         run everything N times (fresh corpus and repositories, tool
                     order rotated) and report medians (default 1)
  --keep             keep the work dir (corpus, repositories) after the run
  --workdir DIR      work dir (default bench/out/run-<time>)
  --timeout-s N      time limit of one step in seconds (default 1800)
  --wait-quiet-s N   before each step, wait up to N s for other processes to go
                     quiet (default 120; 0: do not wait)
  -h, --help         show this help

Environment: BENDSAVE_BIN runs that executable instead of deno run cli/main.ts.`;

/** Parses the harness's arguments; throws a TypeError with a usage hint on bad input. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions | "help" {
  // `deno task bench -- --flag` may pass the separator through.
  const args = argv[0] === "--" ? argv.slice(1) : [...argv];
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      "size-mb": { type: "string" },
      seed: { type: "string" },
      corpus: { type: "string" },
      only: { type: "string" },
      out: { type: "string" },
      keep: { type: "boolean" },
      workdir: { type: "string" },
      "timeout-s": { type: "string" },
      "wait-quiet-s": { type: "string" },
      rounds: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return "help";
  if (positionals.length > 0) {
    throw new TypeError(`Unexpected argument "${positionals[0]}"; see --help.`);
  }
  const number = (name: string, raw: string | undefined, fallback: number, min = 0): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(n) || n < min || (min === 0 && n <= 0)) {
      throw new TypeError(`--${name} must be a positive number, got "${raw}".`);
    }
    return n;
  };
  const only: ToolName[] = [];
  for (const name of (values.only ?? TOOL_NAMES.join(",")).split(",")) {
    const trimmed = name.trim();
    if (trimmed === "") continue;
    if (!(TOOL_NAMES as readonly string[]).includes(trimmed)) {
      throw new TypeError(`--only takes ${TOOL_NAMES.join(",")}, got "${trimmed}".`);
    }
    if (!only.includes(trimmed as ToolName)) only.push(trimmed as ToolName);
  }
  if (only.length === 0) throw new TypeError("--only names no tool.");
  const options: BenchOptions = {
    sizeMb: number("size-mb", values["size-mb"], 700),
    seed: Math.floor(number("seed", values.seed, 1)),
    only: TOOL_NAMES.filter((t) => only.includes(t)),
    keep: values.keep ?? false,
    timeoutS: number("timeout-s", values["timeout-s"], 1800),
    rounds: Math.max(1, Math.floor(number("rounds", values.rounds, 1))),
    waitQuietS: values["wait-quiet-s"] === "0"
      ? 0
      : number("wait-quiet-s", values["wait-quiet-s"], 120),
  };
  if (values.corpus !== undefined) options.corpus = resolve(values.corpus);
  if (values.out !== undefined) options.out = resolve(values.out);
  if (values.workdir !== undefined) options.workdir = resolve(values.workdir);
  return options;
}

const startedAt = performance.now();
/** Aborted on Ctrl-C so the running child process is killed too. */
const interrupt = new AbortController();

function log(message: string): void {
  const t = ((performance.now() - startedAt) / 1000).toFixed(1).padStart(7);
  console.error(`[${t}s] ${message}`);
}

/** The last `lines` lines of a text, with code fences neutralised. */
function tail(text: string, lines = 20): string {
  const all = text.trimEnd().split("\n");
  const kept = all.slice(-lines).join("\n").replaceAll("```", "'''");
  return all.length > lines ? `… (${all.length - lines} earlier lines)\n${kept}` : kept;
}

async function sync(): Promise<void> {
  await runTimed({ cmd: "sync", args: [] }, 300_000);
}

function commandLine(): string {
  try {
    const raw = readFileSync("/proc/self/cmdline", "utf8");
    const parts = raw.split("\0").filter((p) => p !== "");
    return parts.map((p) => (/^[\w@%+=:,./-]+$/.test(p) ? p : `'${p.replaceAll("'", "'\\''")}'`))
      .join(" ");
  } catch {
    return `deno run --allow-all bench/run.ts ${Deno.args.join(" ")}`;
  }
}

async function output(cmd: string, args: string[]): Promise<string> {
  const r = await runTimed({ cmd, args }, 30_000);
  return r.ok ? r.stdout.trim() : `(${cmd} failed)`;
}

/** Runs one timed step and turns the outcome into a {@linkcode StepResult}. */
async function step(
  tool: Tool,
  id: StepId,
  spec: CommandSpec | null,
  options: Pick<BenchOptions, "timeoutS" | "waitQuietS">,
): Promise<StepResult> {
  const { timeoutS, waitQuietS } = options;
  const label = STEPS.find((s) => s.id === id)?.label ?? id;
  if (spec === null) {
    log(`${tool.name}: ${label}: n/a`);
    return { status: "n/a", detail: "the tool has no such command" };
  }
  await sync();
  let quiet = true;
  if (waitQuietS > 0) {
    const q = await waitForQuiet({ maxBusyCores: QUIET_CORES, maxWaitS: waitQuietS });
    quiet = q.quiet;
    if (q.waitedS > 2) {
      log(
        q.quiet
          ? `waited ${q.waitedS.toFixed(0)} s for other processes to go quiet`
          : `other processes still use ${q.busyCores.toFixed(1)} cores after ` +
            `${q.waitedS.toFixed(0)} s; measuring anyway`,
      );
    }
  }
  log(`${tool.name}: ${label} …`);
  const before = readCpuTimes();
  const r = await runTimed(spec, timeoutS * 1000, { signal: interrupt.signal, measureCpu: true });
  const after = readCpuTimes();
  const contended = contention(r, before, after, quiet);
  if (r.ok) {
    const cpu = (r.cpuSeconds === undefined ? "" : `, ${r.cpuSeconds.toFixed(2)} CPU-s`) +
      (r.peakRssKb === undefined ? "" : `, ${rssMB(r.peakRssKb).toFixed(0)} MB peak RSS`);
    log(
      `${tool.name}: ${label}: ${r.seconds.toFixed(2)} s${cpu}${
        contended ? ` (* ${contended})` : ""
      }`,
    );
    const result: StepResult = { status: "ok", seconds: r.seconds };
    if (r.cpuSeconds !== undefined) result.cpuSeconds = r.cpuSeconds;
    if (r.peakRssKb !== undefined) result.peakRssKb = r.peakRssKb;
    if (contended) result.contended = contended;
    return result;
  }
  if (tool.unsupported(r)) {
    log(`${tool.name}: ${label}: n/a (command not available)`);
    return { status: "n/a", detail: tail(r.stderr || r.stdout, 3) };
  }
  const how = r.error ?? (r.code === null ? "killed" : `exit code ${r.code}`);
  const command = [spec.cmd, ...spec.args].join(" ");
  log(`${tool.name}: ${label}: FAILED (${how}) after ${r.seconds.toFixed(2)} s`);
  const stderr = tail(r.stderr);
  const stdout = tail(r.stdout, 5);
  return {
    status: "failed",
    seconds: r.seconds,
    detail: [
      `$ ${spec.cwd ? `(cd ${spec.cwd} && ${command})` : command}`,
      `${how} after ${r.seconds.toFixed(2)} s`,
      stderr ? `stderr:\n${stderr}` : "stderr: (empty)",
      ...(stdout ? [`stdout:\n${stdout}`] : []),
    ].join("\n"),
  };
}

/** Other processes may use at most this many cores for the machine to count as quiet. */
const QUIET_CORES = 0.2;

/**
 * Says why a step was contended, or returns "" when it was not: other
 * processes (machine busy time less the tool's own CPU) or hypervisor steal
 * used more than 0.2 cores on average, or the machine was not quiet before.
 */
function contention(
  r: { seconds: number; cpuSeconds?: number },
  before: CpuTimes | null,
  after: CpuTimes | null,
  quiet: boolean,
): string {
  const reasons: string[] = [];
  if (!quiet) reasons.push("the machine was busy when the step started");
  if (before !== null && after !== null && r.cpuSeconds !== undefined) {
    const d = cpuDelta(before, after);
    const others = Math.max(0, d.busy - r.cpuSeconds);
    const limit = Math.max(0.1, QUIET_CORES * r.seconds);
    if (others > limit) {
      reasons.push(
        `other processes used ${others.toFixed(2)} CPU-s ` +
          `(${(others / r.seconds).toFixed(2)} cores) during its ${r.seconds.toFixed(2)} s`,
      );
    }
    if (d.steal > limit) reasons.push(`hypervisor steal ${d.steal.toFixed(2)} s`);
  }
  return reasons.join("; ");
}

function skipped(reason: string): StepResult {
  return { status: "skipped", detail: reason };
}

/**
 * Finds the restored corpus root: the target itself, or the source's
 * absolute path below it when a tool restores absolute paths.
 */
function restoredRoot(target: string, source: string): string {
  const nested = join(target, source);
  return existsSync(nested) ? nested : target;
}

function corpusLine(summary: TreeSummary, generated: CorpusSummary | undefined): string {
  const base = `${formatCount(summary.files)} files, ${formatMB(summary.bytes)} ` +
    `(${formatCount(summary.bytes)} bytes), ${formatCount(summary.dirs)} directories, ` +
    `${formatCount(summary.symlinks)} symlinks`;
  if (generated === undefined) return base;
  return `${base}; ${formatCount(generated.smallFiles)} small files (100 B–64 KiB, ` +
    `${formatMB(generated.smallBytes)}: text, CSV-like records, ` +
    `${formatCount(generated.randomFiles)} random, ${formatCount(generated.duplicateFiles)} ` +
    `exact duplicates), ${generated.largeFiles} large files (${formatMB(generated.largeBytes)}: ` +
    `text, records, zero and random segments; ${formatMB(generated.largeDuplicateBytes)} ` +
    `repeated from another large file, partly shifted), ${generated.emptyDirs} empty directories`;
}

function mutationLine(m: MutationSummary): string {
  return `${m.edited} files edited in place, ${m.appended} appended to, ${m.rewritten} rewritten, ` +
    `${m.deleted} deleted, ${m.added} added, ${m.largeEdited} large file with 8 rewritten ` +
    `4 KiB pages; ${formatMB(m.bytesWritten)} written`;
}

/** Everything one round measured. */
interface RoundOutcome {
  results: ToolResult[];
  tools: Tool[];
  summary: TreeSummary;
  generated?: CorpusSummary;
  generationSeconds: number;
  mutation?: MutationSummary;
}

/**
 * Moves `dir` out of the way, to be removed with the work directory at the
 * end of the run. Nothing is deleted while the run lasts: on an ext4 file
 * system without a journal (this development VM's), every file created
 * within 60 s of many deletions (300 s while the inode table is dirty)
 * makes the kernel skip each recently deleted inode (`recently_deleted` in
 * fs/ext4/ialloc.c), so a restore right after the previous tool's restored
 * tree was removed paid several seconds of system time (perf: 22% of a
 * restore's samples in it) and whoever restored first was favoured.
 */
function setAside(dir: string): void {
  const trash = join(dirname(dir), ".set-aside");
  mkdirSync(trash, { recursive: true });
  renameSync(
    dir,
    join(trash, `${basename(dir)}-${Date.now()}-${Math.random().toString(36).slice(2)}`),
  );
}

/** Runs the benchmark and returns the markdown report. */
export async function runBench(options: BenchOptions): Promise<string> {
  const benchDir = fileURLToPath(new URL(".", import.meta.url));
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const work = options.workdir ?? join(benchDir, "out", `run-${stamp}`);
  mkdirSync(work, { recursive: true });
  if (readdirSync(work).length > 0) {
    throw new TypeError(`Work dir "${work}" is not empty; remove it or pass another --workdir.`);
  }
  const cleanup = () => {
    if (!options.keep) rmSync(work, { recursive: true, force: true });
  };
  const onInterrupt = () => {
    interrupt.abort();
    log(options.keep ? `interrupted; work dir kept at ${work}` : "interrupted; removing work dir");
    cleanup();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    const rounds: RoundOutcome[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      const dir = options.rounds === 1 ? work : join(work, `round-${round}`);
      if (options.rounds > 1) log(`round ${round} of ${options.rounds}`);
      rounds.push(await runRound(dir, options, round));
      if (options.rounds > 1 && !options.keep) setAside(dir);
    }
    const first = rounds[0] as RoundOutcome;
    const merged = mergeRounds(rounds.map((r) => r.results));
    return await render(options, { ...first, results: merged });
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
    if (options.keep) log(`work dir kept at ${work}`);
    cleanup();
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[mid] as number
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Merges the rounds' results per tool and step: medians of the times, CPU and
 * repository sizes when every round succeeded, otherwise the first failure;
 * the worst restore check; contention notes prefixed with their round.
 */
export function mergeRounds(rounds: readonly ToolResult[][]): ToolResult[] {
  const first = rounds[0];
  if (first === undefined) return [];
  if (rounds.length === 1) return first;
  return first.map((base, i) => {
    const per = rounds.map((r) => r[i] as ToolResult);
    const merged: ToolResult = { name: base.name, version: base.version, steps: {}, notes: [] };
    for (const { id } of STEPS) {
      const list = per.map((r) => r.steps[id]);
      const defined = list.filter((x): x is StepResult => x !== undefined);
      if (defined.length === 0) continue;
      if (defined.length === list.length && defined.every((x) => x.status === "ok")) {
        const seconds = defined.map((x) => x.seconds ?? 0);
        const result: StepResult = { status: "ok", seconds: median(seconds), samples: seconds };
        const cpu = defined.map((x) => x.cpuSeconds).filter((x) => x !== undefined);
        if (cpu.length === defined.length) result.cpuSeconds = median(cpu);
        const rss = defined.map((x) => x.peakRssKb).filter((x) => x !== undefined);
        if (rss.length === defined.length) result.peakRssKb = median(rss);
        const contended = defined
          .map((x, k) => (x.contended ? `round ${k + 1}: ${x.contended}` : ""))
          .filter((x) => x !== "");
        if (contended.length > 0) result.contended = contended.join("; ");
        merged.steps[id] = result;
        continue;
      }
      const failedAt = list.findIndex((x) => x?.status === "failed");
      const pick = failedAt >= 0 ? list[failedAt] as StepResult : defined[0] as StepResult;
      merged.steps[id] = failedAt >= 0
        ? { ...pick, detail: `round ${failedAt + 1} of ${rounds.length}: ${pick.detail ?? ""}` }
        : pick;
    }
    const sizes = per.map((r) => r.repoBytes).filter((x) => x !== undefined);
    if (sizes.length > 0) merged.repoBytes = median(sizes);
    const checked = per.filter((r) => r.check !== undefined);
    const bad = checked.find((r) => !r.check?.identical);
    const shown = bad ?? checked[0];
    if (shown?.check !== undefined) {
      merged.check = shown.check;
      const rounds = `${checked.length - (bad ? 1 : 0)} of ${per.length} rounds identical`;
      merged.checkAgainst = shown.checkAgainst ? `${shown.checkAgainst}; ${rounds}` : rounds;
    }
    merged.notes = [...new Set(per.flatMap((r) => r.notes))];
    return merged;
  });
}

async function runRound(work: string, options: BenchOptions, round: number): Promise<RoundOutcome> {
  mkdirSync(work, { recursive: true });
  const ctx = { stateDir: join(work, "state"), probeTimeoutMs: 120_000 };
  mkdirSync(ctx.stateDir);
  const tools = options.only.map((name) => createTool(name, ctx));
  const results: ToolResult[] = [];
  const available: Tool[] = [];
  for (const tool of tools) {
    const version = await tool.probe();
    if (round === 1) log(`${tool.name}: ${version ?? "not installed"}`);
    results.push({ name: tool.name, version, steps: {}, notes: [] });
    if (version !== null) available.push(tool);
  }
  // Rotate the order each round so no tool always goes first.
  const shift = (round - 1) % Math.max(1, available.length);
  const ordered = [...available.slice(shift), ...available.slice(0, shift)];
  const resultOf = (name: ToolName) => results.find((r) => r.name === name) as ToolResult;
  for (const r of results) {
    if (r.version === null) {
      for (const s of STEPS) r.steps[s.id] = { status: "not installed" };
    }
  }

  // The corpus.
  let source: string;
  let generated: CorpusSummary | undefined;
  let generationSeconds = 0;
  if (options.corpus !== undefined) {
    source = options.corpus;
    if (!existsSync(source)) throw new TypeError(`--corpus "${source}" does not exist.`);
    log(`corpus: ${source} (read only)`);
  } else {
    source = join(work, "corpus");
    log(`corpus: generating about ${options.sizeMb} MB with seed ${options.seed} …`);
    const t = performance.now();
    generated = generateCorpus(source, { seed: options.seed, totalBytes: options.sizeMb * 1e6 });
    generationSeconds = (performance.now() - t) / 1000;
  }
  const summary = summarizeTree(source);
  log(`corpus: ${formatCount(summary.files)} files, ${formatMB(summary.bytes)}`);

  const repoOf = (name: ToolName) => join(work, `repo-${name}`);
  const labelOf = new Map<ToolName, string>();

  // Phase 1: first and unchanged backups, each tool on a warm corpus.
  for (const tool of ordered) {
    const r = resultOf(tool.name);
    warmTree(source);
    const repo = repoOf(tool.name);
    const init = tool.init(repo);
    if (init === null) r.steps.init = { status: "n/a", detail: "backup creates the repository" };
    else r.steps.init = await step(tool, "init", init, options);
    if (r.steps.init.status === "failed") {
      r.steps.first = skipped("init failed");
    } else {
      r.steps.first = await step(tool, "first", tool.backup(repo, source, "first"), options);
    }
    if (r.steps.first.status !== "ok") {
      for (const id of ["unchanged", "changed", "restore", "verify"] as const) {
        r.steps[id] = skipped("the first backup did not succeed");
      }
      continue;
    }
    labelOf.set(tool.name, "first");
    r.steps.unchanged = await step(
      tool,
      "unchanged",
      tool.backup(repo, source, "unchanged"),
      options,
    );
    if (r.steps.unchanged.status === "ok") labelOf.set(tool.name, "unchanged");
  }
  const ready = ordered.filter((t) => labelOf.has(t.name));

  // Phase 2: change ~1% of the files, then the incremental backup.
  let before: Map<string, TreeEntry> | undefined;
  let mutation: MutationSummary | undefined;
  if (generated !== undefined && ready.length > 0) {
    log("hashing the corpus before the change …");
    before = manifestTree(source);
    mutation = mutateCorpus(source, options.seed);
    log(`changed the corpus: ${mutationLine(mutation)}`);
  }
  for (const tool of ready) {
    const r = resultOf(tool.name);
    if (mutation === undefined) {
      r.steps.changed = { status: "n/a", detail: "read-only corpus: no change step" };
      continue;
    }
    warmTree(source);
    r.steps.changed = await step(
      tool,
      "changed",
      tool.backup(repoOf(tool.name), source, "changed"),
      options,
    );
    if (r.steps.changed.status === "ok") labelOf.set(tool.name, "changed");
  }

  // Phase 3: restore (checked against the source), verify, repository size.
  log("hashing the corpus …");
  const after = manifestTree(source);
  for (const tool of ready) {
    const r = resultOf(tool.name);
    const repo = repoOf(tool.name);
    const label = labelOf.get(tool.name) as string;
    if (tool instanceof BendsaveTool) r.notes.push(await listNote(tool, repo, r, options));
    const target = join(work, `restore-${tool.name}`);
    mkdirSync(target);
    r.steps.restore = await step(tool, "restore", tool.restore(repo, target, label), options);
    if (r.steps.restore.status === "ok") {
      log(`${tool.name}: comparing the restored tree with the source …`);
      const expected = label === "changed" || before === undefined ? after : before;
      if (mutation !== undefined) {
        r.checkAgainst = label === "changed"
          ? "after the change"
          : "before the change: the latest successful backup predates it";
      }
      r.check = compareManifests(expected, manifestTree(restoredRoot(target, source)));
      log(`${tool.name}: restored tree ${r.check.identical ? "identical" : "DIFFERS"}`);
    }
    setAside(target);
    r.steps.verify = await step(tool, "verify", tool.verify(repo), options);
    if (existsSync(repo)) r.repoBytes = treeBytes(repo);
  }

  const outcome: RoundOutcome = { results, tools, summary, generationSeconds };
  if (generated !== undefined) outcome.generated = generated;
  if (mutation !== undefined) outcome.mutation = mutation;
  return outcome;
}

/** Runs `list REPO --json` (untimed) and describes what it returned. */
async function listNote(
  tool: BendsaveTool,
  repo: string,
  r: ToolResult,
  options: BenchOptions,
): Promise<string> {
  const list = await runTimed(tool.list(repo), options.timeoutS * 1000);
  if (!list.ok) {
    return `- bendsave: \`list --json\` failed: ${tail(list.stderr || list.error || "", 1)}`;
  }
  try {
    const parsed: unknown = JSON.parse(list.stdout);
    const backups = (["first", "unchanged", "changed"] as const)
      .filter((id) => r.steps[id]?.status === "ok").length;
    const count = Array.isArray(parsed) ? `${parsed.length} entries` : "an object";
    return `- bendsave: \`list --json\` returned ${count}; ${backups} backups succeeded`;
  } catch {
    return "- bendsave: `list --json` printed something that is not one JSON value";
  }
}

function contentionLines(results: readonly ToolResult[]): string[] {
  const lines = renderContention(results);
  if (lines.length === 0) return [];
  return [
    "Steps marked * ran while other processes or the hypervisor used the CPU, so their " +
    "times are not reliable; rerun on a quiet machine:",
    "",
    ...lines,
    "",
  ];
}

async function render(options: BenchOptions, outcome: RoundOutcome): Promise<string> {
  const { results, tools, summary, generated, generationSeconds, mutation } = outcome;
  const versions = results.map((r) => `${r.name}: ${r.version ?? "not installed"}`);
  const corpusName = generated === undefined
    ? `\`${options.corpus}\` (real directory, read only)`
    : `generated, seed ${options.seed}, --size-mb ${options.sizeMb}, in ${
      generationSeconds.toFixed(1)
    } s`;
  const lines = [
    `## bendsave benchmark, ${new Date().toISOString()}`,
    "",
    `- command: \`${commandLine()}\``,
    `- machine: \`${await output("uname", ["-a"])}\`, nproc ${await output("nproc", [])}`,
    `- deno ${Deno.version.deno} (V8 ${Deno.version.v8}); ${versions.join("; ")}`,
    `- corpus: ${corpusName}: ${corpusLine(summary, generated)}`,
    mutation === undefined
      ? "- change step: none (read-only corpus)"
      : `- change step (~1% of files): ${mutationLine(mutation)}`,
    "- page cache: not dropped (not possible here); each tool's steps run on a warm corpus, " +
    "read in full (walk + read of every file) right before the tool's backups; `sync` runs " +
    "before every timed step, and restore times exclude the later write-back",
    ...tools.filter((t) => t.note !== "").map((t) => `- ${t.note}`),
    "- times are wall-clock seconds of the child process (performance.now); ratios are " +
    "bendsave÷peer (below 1: bendsave faster or smaller); repository size is the apparent " +
    "size of the repository's files",
    options.rounds > 1
      ? `- ${options.rounds} rounds, each on a freshly generated corpus with fresh repositories ` +
        "and the tools' order rotated; cells show the median (min–max)"
      : "- one round; the VM's file-creation cost varies between runs, so use --rounds 3 " +
        "for figures that count",
    "",
    renderTable(results),
    "",
    ...contentionLines(results),
    "CPU seconds (user + system, all threads and child processes) and average cores used:",
    "",
    renderCpuTable(results),
    "",
    "Peak memory (maximum resident set size from `/usr/bin/time`, MB = 10^6 bytes; the " +
    "median of the rounds) and bendsave÷peer:",
    "",
    renderMemoryTable(results),
    "",
    "Restore checks (file list and SHA-256 of every file against the source):",
    "",
    ...renderChecks(results),
    ...results.flatMap((r) => r.notes),
    "",
  ];
  const failures = renderFailures(results);
  if (failures.length > 0) lines.push("### Failures", "", ...failures);
  return lines.join("\n");
}

if (import.meta.main) {
  let options: BenchOptions | "help";
  try {
    options = parseBenchArgs(Deno.args);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    console.error(USAGE);
    Deno.exit(2);
  }
  if (options === "help") {
    console.log(USAGE);
    Deno.exit(0);
  }
  const report = await runBench(options);
  console.log(report);
  if (options.out !== undefined) {
    appendFileSync(options.out, `${report}\n`);
    log(`appended the report to ${options.out}`);
  }
}
