/**
 * The backup tools under benchmark (bendsave, restic, borg): how to probe
 * each one and the command lines of its steps, plus a child-process runner
 * that times a command with `performance.now()` and never throws.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Names of the tools the harness knows. */
export const TOOL_NAMES = ["bendsave", "bendsave-enc", "restic", "borg"] as const;

/** One of {@linkcode TOOL_NAMES}. */
export type ToolName = typeof TOOL_NAMES[number];

/** A command to run: executable, arguments, working directory, extra environment. */
export interface CommandSpec {
  /** Executable name or path. */
  cmd: string;
  /** Arguments. */
  args: string[];
  /** Working directory (default: the harness's). */
  cwd?: string;
  /** Variables added to the inherited environment. */
  env?: Record<string, string>;
}

/** The outcome of {@linkcode runTimed}. */
export interface RunResult {
  /** True when the process exited with code 0 in time. */
  ok: boolean;
  /** Exit code, or null when it could not start or was killed. */
  code: number | null;
  /** Wall-clock seconds from spawn to exit. */
  seconds: number;
  /** Captured standard output. */
  stdout: string;
  /** Captured standard error. */
  stderr: string;
  /** True when the time limit killed it. */
  timedOut: boolean;
  /** Why it could not start, if it could not. */
  error?: string;
  /** CPU seconds (user + system) of the command and its descendants, when measured. */
  cpuSeconds?: number;
  /**
   * Peak resident set size of the command in KiB (GNU time's `%M`, its
   * largest process), when measured and /usr/bin/time is installed.
   */
  peakRssKb?: number;
}

/** Options of {@linkcode runTimed}. */
export interface RunOptions {
  /** Kills the command when aborted (for example on Ctrl-C). */
  signal?: AbortSignal;
  /**
   * Runs the command under `bash` to learn the CPU time (user + system) of
   * the command and all its descendants, from bash's `times` builtin, and
   * its peak resident set size from GNU time (when /usr/bin/time exists).
   */
  measureCpu?: boolean;
}

/**
 * Runs "$@" in the background so a TERM (time-out, Ctrl-C) reaches it, then
 * prints `times` (shell, then children: user and system) to stderr. With
 * /usr/bin/time installed the command runs under it, writing its peak RSS
 * to the file `$BENCH_RSS_FILE`; a TERM then goes to the command too (GNU
 * time would leave it running).
 */
const CPU_WRAPPER = [
  `trap 'kill -TERM $(cat /proc/"$pid"/task/*/children 2>/dev/null) "$pid" 2>/dev/null; wait "$pid"; exit 143' TERM INT`,
  `if [ -x /usr/bin/time ] && [ -n "$BENCH_RSS_FILE" ]; then`,
  `  /usr/bin/time -f %M -o "$BENCH_RSS_FILE" "$@" &`,
  `else`,
  `  "$@" &`,
  `fi`,
  `pid=$!`,
  `wait "$pid"`,
  `rc=$?`,
  `times >&2`,
  `exit "$rc"`,
].join("\n");

const TIMES = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\n(\d+)m([\d.]+)s (\d+)m([\d.]+)s\n?$/;

/** Splits bash's `times` output off the end of stderr; returns children's CPU seconds. */
function splitTimes(stderr: string): { stderr: string; cpu?: number } {
  const m = TIMES.exec(stderr);
  if (m === null) return { stderr };
  const n = (i: number) => Number(m[i]);
  const cpu = n(5) * 60 + n(6) + n(7) * 60 + n(8);
  return { stderr: stderr.slice(0, m.index), cpu };
}

/**
 * The peak RSS (KiB) GNU time wrote to `file` (its last line: after a
 * killed command it writes a status line first), or undefined; removes it.
 */
export function readPeakRss(file: string): number | undefined {
  let text = "";
  try {
    text = Deno.readTextFileSync(file);
  } catch {
    return undefined;
  } finally {
    try {
      Deno.removeSync(file);
    } catch { /* already gone */ }
  }
  const last = text.trim().split("\n").at(-1) ?? "";
  return /^\d+$/.test(last) ? Number(last) : undefined;
}

/**
 * Runs a command with stdin closed and output captured, timing it with
 * `performance.now()`. Never throws: a missing executable or a time-out is
 * reported in the result.
 *
 * @example
 * ```ts
 * const r = await runTimed({ cmd: "restic", args: ["version"] }, 10_000);
 * if (r.ok) console.log(r.stdout.trim(), r.seconds);
 * ```
 */
export async function runTimed(
  spec: CommandSpec,
  timeoutMs: number,
  options: RunOptions = {},
): Promise<RunResult> {
  const decoder = new TextDecoder();
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  const cmd = options.measureCpu ? "bash" : spec.cmd;
  const args = options.measureCpu
    ? ["-c", CPU_WRAPPER, "bench", spec.cmd, ...spec.args]
    : spec.args;
  const rssFile = options.measureCpu ? await Deno.makeTempFile({ prefix: "bench-rss-" }) : null;
  const start = performance.now();
  try {
    const commandOptions: Deno.CommandOptions = {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...spec.env, ...(rssFile ? { BENCH_RSS_FILE: rssFile } : {}) },
      signal,
    };
    if (spec.cwd !== undefined) commandOptions.cwd = spec.cwd;
    const out = await new Deno.Command(cmd, commandOptions).output();
    const seconds = (performance.now() - start) / 1000;
    const timedOut = timeout.aborted;
    const split = options.measureCpu
      ? splitTimes(decoder.decode(out.stderr))
      : { stderr: decoder.decode(out.stderr) };
    const result: RunResult = {
      ok: out.success && !timedOut,
      code: out.signal === null ? out.code : null,
      seconds,
      stdout: decoder.decode(out.stdout),
      stderr: split.stderr +
        (timedOut ? `\n(timed out after ${(timeoutMs / 1000).toFixed(0)} s)` : "") +
        (out.signal ? `\n(killed by ${out.signal})` : ""),
      timedOut,
    };
    if (split.cpu !== undefined) result.cpuSeconds = split.cpu;
    const rss = rssFile ? readPeakRss(rssFile) : undefined;
    if (rss !== undefined) result.peakRssKb = rss;
    return result;
  } catch (error) {
    if (rssFile) readPeakRss(rssFile);
    const seconds = (performance.now() - start) / 1000;
    const timedOut = timeout.aborted;
    return {
      ok: false,
      code: null,
      seconds,
      stdout: "",
      stderr: "",
      timedOut,
      error: timedOut
        ? `timed out after ${(timeoutMs / 1000).toFixed(0)} s`
        : `could not run "${spec.cmd}": ${error instanceof Error ? error.message : String(error)}`,
    };
  }
}

/** Where a tool keeps its state, and its probing time limit. */
export interface ToolContext {
  /** A directory for the tool's caches and config (inside the bench work dir). */
  stateDir: string;
  /** Time limit of a probe command in milliseconds. */
  probeTimeoutMs: number;
}

/** A backup tool: probing and the command of each benchmark step. */
export interface Tool {
  /** The tool's name. */
  readonly name: ToolName;
  /**
   * Checks that the tool can run and learns its options; returns a version
   * line, or null when it is not installed.
   */
  probe(): Promise<string | null>;
  /** The repository creation command, or null when backup creates it. */
  init(repo: string): CommandSpec | null;
  /** Backs up `source` (run with `source` as working directory for peers). */
  backup(repo: string, source: string, label: string): CommandSpec;
  /** Restores the backup made as `label` into the empty directory `target`. */
  restore(repo: string, target: string, label: string): CommandSpec;
  /** The read-all-data verification command, or null when there is none. */
  verify(repo: string): CommandSpec | null;
  /** True when a failed step's output says the command does not exist. */
  unsupported(result: RunResult): boolean;
  /** A note for the report (how it was run, flags chosen). */
  readonly note: string;
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0]?.trim() ?? "";
}

/** The passphrase of bendsave-enc's repositories (a benchmark's, not a secret). */
export const ENCRYPTED_BENCH_PASSPHRASE = "bendsave benchmark passphrase";

/** The default bendsave entry point, relative to this file. */
export function bendsaveMain(): string {
  return fileURLToPath(new URL("../cli/main.ts", import.meta.url));
}

const UNKNOWN_COMMAND =
  /unknown (sub)?command|unrecognized (sub)?command|not (yet )?implemented|invalid (sub)?command|no such (sub)?command/i;

/**
 * bendsave, run as `deno run --allow-all cli/main.ts` (located from this file)
 * or as the executable in env `BENDSAVE_BIN`.
 */
export class BendsaveTool implements Tool {
  readonly name: "bendsave" | "bendsave-enc";
  #cmd: string;
  #prefix: string[];
  #ctx: ToolContext;
  #verify: "yes" | "no" | "unknown" = "unknown";
  #encrypted: boolean;
  note = "";

  /**
   * Creates the adapter; `bin` overrides the `deno run cli/main.ts` default.
   * `encrypted` makes it "bendsave-enc": each new repository is created with
   * `backup --encrypt` (Argon2id at its defaults), the passphrase in
   * BENDSAVE_PASSWORD of every command.
   */
  constructor(
    ctx: ToolContext,
    bin: string | undefined = Deno.env.get("BENDSAVE_BIN"),
    encrypted = false,
  ) {
    this.#ctx = ctx;
    this.#encrypted = encrypted;
    this.name = encrypted ? "bendsave-enc" : "bendsave";
    if (bin !== undefined && bin !== "") {
      this.#cmd = bin;
      this.#prefix = [];
      this.note = `bendsave: \`${bin}\` (BENDSAVE_BIN)`;
    } else {
      this.#cmd = Deno.execPath();
      this.#prefix = ["run", "--allow-all", bendsaveMain()];
      this.note =
        "bendsave: `deno run --allow-all cli/main.ts` (times include Deno start-up and module loading)";
    }
    if (encrypted) {
      this.note = this.note.replace(/^bendsave:/, "bendsave-enc:") +
        "; an encrypted repository (`backup --encrypt`, passphrase in BENDSAVE_PASSWORD)";
    }
  }

  #spec(args: string[], cwd?: string): CommandSpec {
    const spec: CommandSpec = { cmd: this.#cmd, args: [...this.#prefix, ...args] };
    if (cwd !== undefined) spec.cwd = cwd;
    if (this.#encrypted) spec.env = { BENDSAVE_PASSWORD: ENCRYPTED_BENCH_PASSPHRASE };
    return spec;
  }

  /** Always attempted; the version line is best effort. */
  async probe(): Promise<string> {
    if (this.#prefix.length > 0 && !existsSync(this.#prefix[2] as string)) {
      return `not found at ${this.#prefix[2]} (steps will fail)`;
    }
    const help = await runTimed(this.#spec(["--help"]), this.#ctx.probeTimeoutMs);
    const helpText = help.stdout + help.stderr;
    if (help.ok) this.#verify = /\bverify\b/.test(helpText) ? "yes" : "no";
    const version = await runTimed(this.#spec(["--version"]), this.#ctx.probeTimeoutMs);
    const line = version.ok ? firstLine(version.stdout || version.stderr) : "";
    return line === "" ? "version unknown (`--version` failed)" : line;
  }

  init(): null {
    return null;
  }

  backup(repo: string, source: string): CommandSpec {
    const create = this.#encrypted && !existsSync(join(repo, "config"));
    return this.#spec(["backup", "--from", source, "--to", repo, ...(create ? ["--encrypt"] : [])]);
  }

  restore(repo: string, target: string): CommandSpec {
    return this.#spec(["restore", "--from", repo, "--to", target, "--confirm"]);
  }

  verify(repo: string): CommandSpec | null {
    return this.#verify === "no" ? null : this.#spec(["verify", repo, "--read-data"]);
  }

  unsupported(result: RunResult): boolean {
    return !result.ok && UNKNOWN_COMMAND.test(result.stderr + result.stdout);
  }

  /** The snapshot listing command (`list <repo> --json`). */
  list(repo: string): CommandSpec {
    return this.#spec(["list", repo, "--json"]);
  }
}

/** restic from PATH, with a fixed password and its cache in the work dir. */
export class ResticTool implements Tool {
  readonly name = "restic" as const;
  #ctx: ToolContext;
  #compression = false;
  note = "";

  /** Creates the adapter. */
  constructor(ctx: ToolContext) {
    this.#ctx = ctx;
  }

  #env(): Record<string, string> {
    return {
      RESTIC_PASSWORD: "bendsave-bench",
      RESTIC_CACHE_DIR: join(this.#ctx.stateDir, "restic-cache"),
    };
  }

  async probe(): Promise<string | null> {
    const version = await runTimed({ cmd: "restic", args: ["version"] }, this.#ctx.probeTimeoutMs);
    if (!version.ok) return null;
    const help = await runTimed({ cmd: "restic", args: ["--help"] }, this.#ctx.probeTimeoutMs);
    this.#compression = /--compression\b/.test(help.stdout);
    this.note = this.#compression
      ? "restic: repository format 2, `--compression auto`, cache in the work dir"
      : "restic: no compression support in this version, cache in the work dir";
    return firstLine(version.stdout);
  }

  init(repo: string): CommandSpec {
    const args = ["init", "--repo", repo];
    if (this.#compression) args.push("--repository-version", "2");
    return { cmd: "restic", args, env: this.#env() };
  }

  backup(repo: string, source: string): CommandSpec {
    const args = ["--repo", repo, "backup"];
    if (this.#compression) args.push("--compression", "auto");
    args.push(".");
    return { cmd: "restic", args, cwd: source, env: this.#env() };
  }

  restore(repo: string, target: string): CommandSpec {
    return {
      cmd: "restic",
      args: ["--repo", repo, "restore", "latest", "--target", target],
      env: this.#env(),
    };
  }

  verify(repo: string): CommandSpec {
    return { cmd: "restic", args: ["--repo", repo, "check", "--read-data"], env: this.#env() };
  }

  unsupported(): boolean {
    return false;
  }
}

/** borg from PATH, unencrypted, zstd level 3, its state in the work dir. */
export class BorgTool implements Tool {
  readonly name = "borg" as const;
  #ctx: ToolContext;
  note = "borg: `init -e none`, `create --compression zstd,3`, BORG_BASE_DIR in the work dir";

  /** Creates the adapter. */
  constructor(ctx: ToolContext) {
    this.#ctx = ctx;
  }

  #env(): Record<string, string> {
    return {
      BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: "yes",
      BORG_RELOCATED_REPO_ACCESS_IS_OK: "yes",
      BORG_BASE_DIR: join(this.#ctx.stateDir, "borg-base"),
    };
  }

  async probe(): Promise<string | null> {
    const version = await runTimed({ cmd: "borg", args: ["--version"] }, this.#ctx.probeTimeoutMs);
    return version.ok ? firstLine(version.stdout || version.stderr) : null;
  }

  init(repo: string): CommandSpec {
    return { cmd: "borg", args: ["init", "-e", "none", repo], env: this.#env() };
  }

  backup(repo: string, source: string, label: string): CommandSpec {
    return {
      cmd: "borg",
      args: ["create", "--compression", "zstd,3", `${repo}::${label}`, "."],
      cwd: source,
      env: this.#env(),
    };
  }

  restore(repo: string, target: string, label: string): CommandSpec {
    return { cmd: "borg", args: ["extract", `${repo}::${label}`], cwd: target, env: this.#env() };
  }

  verify(repo: string): CommandSpec {
    return { cmd: "borg", args: ["check", "--verify-data", repo], env: this.#env() };
  }

  unsupported(): boolean {
    return false;
  }
}

/** Creates the adapter for a tool name. */
export function createTool(name: ToolName, ctx: ToolContext): Tool {
  switch (name) {
    case "bendsave":
      return new BendsaveTool(ctx);
    case "bendsave-enc":
      return new BendsaveTool(ctx, undefined, true);
    case "restic":
      return new ResticTool(ctx);
    case "borg":
      return new BorgTool(ctx);
  }
}
