/**
 * `deno task compile`: builds `dist/bendsave`, one executable that needs no
 * runtime, no package and no network on the machine it runs on (issue "One
 * executable for air-gapped DR sites"). See scripts/README-compile.md.
 *
 * 1. Snapshots the module graph of cli/main.ts and of the engine's one
 *    worker entry module (store/worker_entry.ts, which the worker pool in
 *    store/worker_pool.ts starts) into a scratch directory, with deno.json
 *    and deno.lock: edits made in the work tree during the build cannot
 *    produce a mixed binary, and no tracked file is ever written.
 * 2. Writes a small entry module there that stamps `BUILD_INFO.how` (what
 *    `bendsave --version` prints after "built:") and runs the CLI.
 * 3. Builds with `deno compile` when it can work offline (DENORT_BIN names a
 *    denort binary, or the download of denort works), else with
 *    `bun build --compile`, which needs nothing from the network.
 * 4. Runs the result once (`--version` and a tiny backup that starts the
 *    reader workers); a binary that fails is not kept, and `auto` moves on to
 *    the next builder.
 * 5. Writes dist/bendsave and dist/bendsave.sha256 (`sha256sum -c` format) and
 *    prints the builder, the size and the SHA-256.
 *
 * Options: `--builder auto|deno|bun` (or BENDSAVE_BUILDER; default auto),
 * `--output <path>` (default dist/bendsave), `--keep-build-dir`.
 * Environment: DENORT_BIN, BUN_BIN (default toolchain/node_modules/.bin/bun,
 * then bun on PATH), BENDSAVE_DENO_COMPILE_TIMEOUT (seconds allowed for a
 * deno compile that has to download denort; default 30), SOURCE_DATE_EPOCH
 * (the date stamped into the binary).
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MAIN = "cli/main.ts";
const VERSION_MODULE = "cli/commands/version.ts";
const ENTRY = "_bendsave_compile_entry.ts";
const SHIM = "_bendsave_compile_deno_shim.ts";
const DENO = Deno.execPath();

type Builder = "deno" | "bun";

interface BuildDir {
  /** Scratch directory holding the snapshot (same relative paths as the repo). */
  readonly dir: string;
  /** Repo-relative paths of the files in the snapshot. */
  readonly files: string[];
  /** Repo-relative paths of the worker modules, each with the name it is started by at run time. */
  readonly workers: { file: string; runtimePath: string }[];
}

class BuildError extends Error {}

function log(msg: string): void {
  console.error(`compile: ${msg}`);
}

// ---------------------------------------------------------------- processes

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number; clearEnv?: boolean } = {},
): Promise<RunResult> {
  const signal = opts.timeoutMs ? AbortSignal.timeout(opts.timeoutMs) : undefined;
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, {
      args,
      cwd: opts.cwd ?? REPO,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.clearEnv ? { clearEnv: true } : {}),
      ...(signal ? { signal } : {}),
    }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { code: 127, stdout: "", stderr: `${cmd}: not found`, timedOut: false };
    }
    throw e;
  }
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    timedOut: signal?.aborted ?? false,
  };
}

/** The last `n` lines of a command's output, indented, without colour codes. */
function tail(text: string, n = 15): string {
  // deno-lint-ignore no-control-regex
  const lines = text.replace(/\x1b\[[0-9;]*m/g, "").trimEnd().split("\n");
  return lines.slice(-n).map((l) => `    ${l}`).join("\n");
}

// ------------------------------------------------------------ the snapshot

/** Local modules (repo-relative) in the graph of `roots`, from `deno info --json`. */
async function localGraph(roots: string[]): Promise<string[]> {
  const files = new Set<string>();
  for (const root of roots) {
    const r = await run(DENO, ["info", "--json", root]);
    if (r.code !== 0) throw new BuildError(`deno info ${root} failed:\n${tail(r.stderr)}`);
    const info = JSON.parse(r.stdout) as { modules: { specifier: string; error?: string }[] };
    for (const m of info.modules) {
      if (m.error) throw new BuildError(`${root}: ${m.specifier}: ${m.error}`);
      if (!m.specifier.startsWith("file:")) continue;
      const rel = path.relative(REPO, fileURLToPath(m.specifier));
      if (rel.startsWith("..") || path.isAbsolute(rel)) {
        throw new BuildError(`${m.specifier} is outside the repository: cannot snapshot it`);
      }
      files.add(rel.split(path.sep).join("/"));
    }
  }
  return [...files].sort();
}

/** Strips comments well enough for the scans below (it may drop code after a "//" in a string). */
function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:\\])\/\/.*$/gm, "$1");
}

/** Where bun's executable keeps its entry points; `import.meta.url` of bundled code is in it. */
const BUNFS_ROOT = "/$bunfs/root/";

/** The engine's one worker entry module: every worker thread runs it. */
const WORKER_ENTRY = "store/worker_entry.ts";
/** The one module that starts workers, from `new URL("./worker_entry.ts", import.meta.url)`. */
const WORKER_POOL = "store/worker_pool.ts";
const WORKER_URL_RE = /new\s+URL\s*\(\s*(["'])\.\/worker_entry\.ts\1\s*,\s*import\.meta\.url\s*\)/;

/**
 * The worker entry, with the path it is started by at run time. A bundle
 * has one `import.meta.url` (the executable's own, at the root of bun's
 * embedded file system), so the runtime path is the relative URL resolved
 * against the root, not against store/worker_pool.ts. Fails when another
 * module starts a Worker, or when the pool no longer names the entry the
 * way this script expects.
 */
function findWorkers(files: string[]): { file: string; runtimePath: string }[] {
  for (const f of files) {
    if (f === WORKER_POOL) continue;
    const src = stripComments(fs.readFileSync(path.join(REPO, f), "utf8"));
    if (/new\s+Worker\s*\(/.test(src)) {
      throw new BuildError(
        `${f} starts a Worker itself: run jobs on the pool of ${WORKER_POOL} (registered in ` +
          `store/worker_jobs.ts), whose one entry module ${WORKER_ENTRY} is embedded`,
      );
    }
  }
  if (!files.includes(WORKER_POOL)) {
    throw new BuildError(`${WORKER_POOL} is not in the graph of ${MAIN}: no worker would start`);
  }
  const pool = stripComments(fs.readFileSync(path.join(REPO, WORKER_POOL), "utf8"));
  if (!WORKER_URL_RE.test(pool)) {
    throw new BuildError(
      `${WORKER_POOL} no longer names its entry as new URL("./worker_entry.ts", import.meta.url): ` +
        `update WORKER_ENTRY in scripts/compile.ts`,
    );
  }
  const at = new URL("./worker_entry.ts", `file://${BUNFS_ROOT}bendsave`).pathname;
  return [{ file: WORKER_ENTRY, runtimePath: at.slice(BUNFS_ROOT.length) }];
}

async function snapshot(): Promise<BuildDir> {
  const files = await localGraph([MAIN, WORKER_ENTRY]);
  const workers = findWorkers(files);
  const dir = await Deno.makeTempDir({ prefix: "bendsave-build-" });
  for (
    const f of [
      ...files,
      "deno.json",
      ...(fs.existsSync(path.join(REPO, "deno.lock")) ? ["deno.lock"] : []),
    ]
  ) {
    fs.mkdirSync(path.join(dir, path.dirname(f)), { recursive: true });
    fs.copyFileSync(path.join(REPO, f), path.join(dir, f));
  }
  log(
    `snapshot of ${files.length} modules (workers: ${
      workers.map((w) => w.file).join(", ") || "none"
    })`,
  );
  return { dir, files, workers };
}

// ------------------------------------------------- the Deno shim (for bun)

/** `Deno.*` members the shim provides (bun has no Deno namespace). */
const SHIMMED = new Set([
  "args",
  "pid",
  "ppid",
  "exit",
  "env.get",
  "env.set",
  "env.has",
  "env.delete",
  "env.toObject",
  "stdout.writeSync",
  "stdout.isTerminal",
  "stderr.writeSync",
  "stderr.isTerminal",
  "stdin.isTerminal",
  "consoleSize",
  "kill",
  "errors.NotFound",
  "errors.AlreadyExists",
  "errors.PermissionDenied",
  "unrefTimer",
  "refTimer",
  "cwd",
  "build.os",
  "build.arch",
  "noColor",
  // Left undefined on purpose: cli/commands/version.ts tests it to name the runtime.
  "version",
]);

/** Fails when the snapshot uses a Deno API the shim lacks (the binary would fail at run time). */
function checkDenoApis(b: BuildDir): void {
  const missing = new Map<string, string[]>();
  for (const f of b.files) {
    const src = stripComments(fs.readFileSync(path.join(b.dir, f), "utf8"));
    for (const m of src.matchAll(/\bDeno\.([A-Za-z_$][\w$]*)(?:\.([A-Za-z_$][\w$]*))?/g)) {
      const one = m[1]!;
      const two = m[2] ? `${one}.${m[2]}` : one;
      if (SHIMMED.has(one) || SHIMMED.has(two)) continue;
      missing.set(two, [...(missing.get(two) ?? []), f]);
    }
  }
  if (missing.size > 0) {
    const list = [...missing].map(([api, fsUsing]) =>
      `  Deno.${api} (${[...new Set(fsUsing)].join(", ")})`
    );
    throw new BuildError(
      `the bun build runs the code without a Deno namespace, and these Deno APIs have no ` +
        `equivalent in the shim of scripts/compile.ts:\n${list.join("\n")}\n` +
        `Use node: APIs in library code, or add them to the shim.`,
    );
  }
}

/** Source of the shim: a Deno namespace on node: APIs, installed only where there is none. */
const SHIM_SOURCE =
  `// Generated by scripts/compile.ts for the bun build: not part of the source tree.
// A minimal Deno namespace on node: APIs; under Deno it does nothing.
import fs from "node:fs";
import os from "node:os";
import process from "node:process";
import tty from "node:tty";

if (!("Deno" in globalThis)) {
  class NotFound extends Error {
    override name = "NotFound";
  }
  class AlreadyExists extends Error {
    override name = "AlreadyExists";
  }
  class PermissionDenied extends Error {
    override name = "PermissionDenied";
  }
  const writer = (fd: number) => ({
    writeSync(p: Uint8Array): number {
      let off = 0;
      while (off < p.length) off += fs.writeSync(fd, p, off, p.length - off);
      return p.length;
    },
    isTerminal: (): boolean => tty.isatty(fd),
  });
  const env = process.env as Record<string, string | undefined>;
  (globalThis as unknown as Record<string, unknown>).Deno = {
    args: process.argv.slice(2),
    pid: process.pid,
    ppid: process.ppid,
    exit: (code?: number): never => process.exit(code),
    env: {
      get: (k: string): string | undefined => env[k],
      set: (k: string, v: string): void => {
        env[k] = v;
      },
      has: (k: string): boolean => env[k] !== undefined,
      delete: (k: string): void => {
        delete env[k];
      },
      toObject: (): Record<string, string> =>
        Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)),
    },
    stdout: writer(1),
    stderr: writer(2),
    stdin: { isTerminal: (): boolean => tty.isatty(0) },
    consoleSize(): { columns: number; rows: number } {
      for (const s of [process.stdout, process.stderr] as { columns?: number; rows?: number }[]) {
        if (s.columns) return { columns: s.columns, rows: s.rows ?? 24 };
      }
      throw new Error("consoleSize: not a terminal");
    },
    kill(pid: number, signal: string = "SIGTERM"): void {
      try {
        process.kill(pid, signal);
      } catch (e) {
        if ((e as { code?: string }).code === "ESRCH") throw new NotFound(\`kill \${pid}: ESRCH: No such process\`);
        throw e;
      }
    },
    errors: { NotFound, AlreadyExists, PermissionDenied },
    unrefTimer: (t: unknown): void => (t as { unref?: () => void } | null)?.unref?.(),
    refTimer: (t: unknown): void => (t as { ref?: () => void } | null)?.ref?.(),
    cwd: (): string => process.cwd(),
    build: { os: os.platform(), arch: os.arch() === "x64" ? "x86_64" : os.arch() === "arm64" ? "aarch64" : os.arch() },
    noColor: env.NO_COLOR !== undefined,
  };
}
`;

// ------------------------------------------------------------ the builders

function stampDate(): string {
  const epoch = Deno.env.get("SOURCE_DATE_EPOCH");
  const d = epoch && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000) : new Date();
  return d.toISOString().slice(0, 10);
}

/** Writes the entry module (and for bun, the worker entries) into the snapshot. */
function writeEntries(b: BuildDir, how: string, builder: Builder): string[] {
  fs.writeFileSync(path.join(b.dir, SHIM), SHIM_SOURCE);
  fs.writeFileSync(
    path.join(b.dir, ENTRY),
    `// Generated by scripts/compile.ts: not part of the source tree.
import "./${SHIM}";
import { BUILD_INFO } from "./${VERSION_MODULE}";
import { main } from "./${MAIN}";

BUILD_INFO.how = ${JSON.stringify(how)};
Deno.exit(await main(Deno.args));
`,
  );
  if (builder === "deno") return [ENTRY];
  // bun: the worker entry is an entry point of its own, at the path the running
  // code asks for (relative to the executable's root in bun's file system).
  const entries = [ENTRY];
  for (const w of b.workers) {
    if (w.runtimePath === w.file) {
      entries.push(w.file); // already where it is looked for
      continue;
    }
    if (b.files.includes(w.runtimePath) || fs.existsSync(path.join(b.dir, w.runtimePath))) {
      throw new BuildError(
        `worker ${w.file} is started as ${w.runtimePath}, a path the snapshot already uses: rename one of them`,
      );
    }
    const rel = path.posix.relative(path.posix.dirname(w.runtimePath), w.file);
    const relShim = path.posix.relative(path.posix.dirname(w.runtimePath), SHIM);
    fs.mkdirSync(path.join(b.dir, path.dirname(w.runtimePath)), { recursive: true });
    fs.writeFileSync(
      path.join(b.dir, w.runtimePath),
      `// Generated by scripts/compile.ts: the worker entry point of the bun build.
import "${relShim.startsWith(".") ? relShim : `./${relShim}`}";
import "${rel.startsWith(".") ? rel : `./${rel}`}";
`,
    );
    entries.push(w.runtimePath);
  }
  return entries;
}

interface Built {
  builder: Builder;
  file: string;
  how: string;
}

async function buildWithDeno(b: BuildDir, outDir: string): Promise<Built> {
  const denort = Deno.env.get("DENORT_BIN");
  const how = `deno compile ${Deno.version.deno} on ${stampDate()}`;
  const entries = writeEntries(b, how, "deno");
  const out = path.join(outDir, "bendsave-deno");
  const args = [
    "compile",
    "--allow-all",
    "--config",
    "deno.json",
    ...b.workers.flatMap((w) => ["--include", w.file]),
    "--output",
    out,
    ...entries,
  ];
  const timeoutS = denort ? 900 : Number(Deno.env.get("BENDSAVE_DENO_COMPILE_TIMEOUT") ?? 30);
  log(
    `deno compile ${
      denort
        ? `with DENORT_BIN=${denort}`
        : `(no DENORT_BIN: denort must be downloaded; ${timeoutS} s allowed)`
    }`,
  );
  log(`  deno ${args.join(" ")}`);
  const r = await run(DENO, args, { cwd: b.dir, timeoutMs: timeoutS * 1000 });
  if (r.timedOut) {
    throw new BuildError(`deno compile did not finish in ${timeoutS} s (no network?)`);
  }
  if (r.code !== 0) {
    throw new BuildError(`deno compile failed (exit ${r.code}):\n${tail(r.stderr, 12)}`);
  }
  return { builder: "deno", file: out, how };
}

function findBun(): string {
  const env = Deno.env.get("BUN_BIN");
  if (env) return env;
  const local = path.join(REPO, "toolchain/node_modules/.bin/bun");
  if (fs.existsSync(local)) return local;
  return "bun";
}

/** npm packages for bun: the versions deno.lock pins, from Deno's cache (or npm). */
async function installNodeModules(b: BuildDir): Promise<void> {
  const roots = [MAIN, ...b.workers.map((w) => w.file)];
  const lock = fs.existsSync(path.join(b.dir, "deno.lock")) ? ["--frozen"] : [];
  const r = await run(DENO, [
    "install",
    "--node-modules-dir=auto",
    ...lock,
    "--entrypoint",
    ...roots,
  ], {
    cwd: b.dir,
  });
  if (r.code === 0) {
    log(
      `npm packages: node_modules from deno install${
        lock.length ? " --frozen (versions of deno.lock)" : ""
      }`,
    );
    return;
  }
  if (/lockfile is out of date|--frozen/i.test(r.stderr)) {
    throw new BuildError(
      `deno.lock does not match deno.json: run \`deno install\` (or any deno task) and commit deno.lock:\n` +
        tail(r.stderr, 8),
    );
  }
  // Fallback: npm, with the exact versions deno.json names (transitive ones may differ from deno.lock).
  log(
    `deno install failed (${
      tail(r.stderr, 3).trim()
    }); trying npm install with deno.json's versions`,
  );
  const pkgs = new Set<string>();
  for (const spec of Object.values(importMap(b))) {
    const m = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)@([^/]+)/.exec(spec);
    if (m) pkgs.add(`${m[1]}@${m[2]}`);
  }
  fs.writeFileSync(path.join(b.dir, "package.json"), JSON.stringify({ private: true }) + "\n");
  const n = await run("npm", [
    "install",
    "--no-save",
    "--ignore-scripts",
    "--no-audit",
    "--no-fund",
    "--loglevel=error",
    ...pkgs,
  ], { cwd: b.dir });
  if (n.code !== 0) throw new BuildError(`npm install failed:\n${tail(n.stderr)}`);
  log(`npm packages: npm install ${[...pkgs].join(" ")}`);
}

function importMap(b: BuildDir): Record<string, string> {
  const cfg = JSON.parse(fs.readFileSync(path.join(b.dir, "deno.json"), "utf8")) as {
    imports?: Record<string, string>;
  };
  return cfg.imports ?? {};
}

/**
 * bun does not read deno.json: a tsconfig.json in the snapshot maps the
 * import map's npm: entries to the installed packages (bun reads `paths`).
 */
function writeTsconfig(b: BuildDir): void {
  const paths: Record<string, string[]> = {};
  for (const [key, spec] of Object.entries(importMap(b))) {
    const m = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)(?:@[^/]+)?(\/.*)?$/.exec(spec);
    if (!m) {
      if (/^(jsr|https?):/.test(spec)) {
        log(`note: import map entry "${key}": "${spec}" is not an npm package`);
      }
      continue;
    }
    const [, name, sub] = m;
    const target = `./node_modules/${name}${sub ?? ""}`;
    if (key.endsWith("/")) paths[`${key}*`] = [`${target.replace(/\/?$/, "/")}*`];
    else if (key !== name || sub) paths[key] = [target];
  }
  fs.writeFileSync(
    path.join(b.dir, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { baseUrl: ".", paths } }, null, 2) + "\n",
  );
}

async function buildWithBun(b: BuildDir, outDir: string): Promise<Built> {
  const bun = findBun();
  const v = await run(bun, ["--version"]);
  if (v.code !== 0) {
    throw new BuildError(
      `bun not found (${bun}): run \`npm install\` in toolchain/, or set BUN_BIN`,
    );
  }
  const how = `bun build --compile ${v.stdout.trim()} on ${stampDate()}`;
  checkDenoApis(b);
  await installNodeModules(b);
  writeTsconfig(b);
  const entries = writeEntries(b, how, "bun");
  const out = path.join(outDir, "bendsave-bun");
  const args = [
    "build",
    "--compile",
    // Bytecode halves start-up time; it needs ESM for cli/main.ts's top-level await.
    "--bytecode",
    "--format=esm",
    // One chunk per dynamically imported module group, loaded when imported: every
    // start loaded the whole bundle's bytecode before (`--version` 25 ms, 11 ms split;
    // a hello world 5 ms), and archive_command and restore_command start once per WAL file.
    "--splitting",
    // An embedded source map gives internal errors' stacks original file:line.
    "--sourcemap=inline",
    // Never minify: error classes are told apart by name (store/errors.ts), and
    // bun renames classes even with --keep-names.
    // The binary must not pick up configuration from the directory it runs in.
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-bunfig",
    "--no-compile-autoload-tsconfig",
    "--no-compile-autoload-package-json",
    "--outfile",
    out,
    ...entries,
  ];
  log(`  bun ${args.join(" ")}`);
  const r = await run(bun, args, { cwd: b.dir, timeoutMs: 600_000 });
  if (r.code !== 0) {
    throw new BuildError(
      `bun build --compile failed (exit ${r.code}):\n${tail(r.stderr + r.stdout)}`,
    );
  }
  return { builder: "bun", file: out, how };
}

// ------------------------------------------------------------ the checks

/**
 * Runs the new binary with an empty environment: `--version` must print the
 * stamp, and a backup of a few files must work (it starts the reader workers:
 * a worker module missing from the binary fails it).
 */
async function selfTest(built: Built): Promise<void> {
  const env = { PATH: "/usr/bin:/bin" };
  const scratch = await Deno.makeTempDir({ prefix: "bendsave-selftest-" });
  try {
    const v = await run(built.file, ["--version"], {
      cwd: scratch,
      env,
      clearEnv: true,
      timeoutMs: 60_000,
    });
    const lines = v.stdout.trim().split("\n");
    if (
      v.code !== 0 || !lines[0]?.startsWith("bendsave ") ||
      !v.stdout.includes(`built: ${built.how}`)
    ) {
      throw new BuildError(
        `the ${built.builder} binary does not run as bendsave (\`--version\` exit ${v.code}):\n` +
          tail(v.stdout + v.stderr, 6),
      );
    }
    if (lines.filter((l) => l.startsWith("bendsave ")).length !== 1) {
      throw new BuildError(`\`--version\` ran the CLI more than once:\n${tail(v.stdout, 8)}`);
    }
    fs.mkdirSync(path.join(scratch, "src/d"), { recursive: true });
    for (let i = 0; i < 8; i++) {
      fs.writeFileSync(path.join(scratch, `src/d/f${i}`), `file ${i}\n`.repeat(1000 * i));
    }
    const bk = await run(
      built.file,
      ["backup", "--from", "src", "--to", "repo", "--json"],
      { cwd: scratch, env, clearEnv: true, timeoutMs: 120_000 },
    );
    if (bk.code !== 0 || !bk.stdout.includes(`"type":"summary"`)) {
      throw new BuildError(
        `the ${built.builder} binary cannot back up (exit ${bk.code}); a reader worker missing?\n` +
          tail(bk.stderr + bk.stdout, 8),
      );
    }
    // A worker entry that is missing or never loads falls back to the main thread: refuse it.
    if (/threads could not start/.test(bk.stderr)) {
      throw new BuildError(
        `the ${built.builder} binary cannot start its worker threads (${WORKER_ENTRY}):\n` +
          tail(bk.stderr, 4),
      );
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function sha256File(file: string): string {
  const h = createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const buf = new Uint8Array(4 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest("hex");
}

function mib(n: number): string {
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

// ------------------------------------------------------------------- main

async function compile(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      builder: { type: "string", default: Deno.env.get("BENDSAVE_BUILDER") ?? "auto" },
      output: { type: "string", default: "dist/bendsave" },
      "keep-build-dir": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno task compile [--builder auto|deno|bun] [--output dist/bendsave] [--keep-build-dir]",
    );
    return 0;
  }
  const builder = values.builder;
  if (builder !== "auto" && builder !== "deno" && builder !== "bun") {
    throw new BuildError(`--builder must be auto, deno or bun, not "${builder}"`);
  }
  const output = path.resolve(REPO, values.output);
  const b = await snapshot();
  const outDir = path.join(b.dir, ".out");
  fs.mkdirSync(outDir);
  try {
    const order: Builder[] = builder === "auto" ? ["deno", "bun"] : [builder];
    let built: Built | null = null;
    const failures: string[] = [];
    for (const which of order) {
      try {
        const attempt = which === "deno"
          ? await buildWithDeno(b, outDir)
          : await buildWithBun(b, outDir);
        await selfTest(attempt);
        built = attempt;
        break;
      } catch (e) {
        if (!(e instanceof BuildError)) throw e;
        failures.push(`${which}: ${e.message}`);
        log(`${which} build not used: ${e.message}`);
        if (which === "deno" && order.includes("bun")) log("falling back to bun build --compile");
      }
    }
    if (!built) {
      throw new BuildError(`no builder produced a working binary:\n${failures.join("\n")}`);
    }

    fs.mkdirSync(path.dirname(output), { recursive: true });
    const tmp = `${output}.tmp-${process.pid}`;
    fs.copyFileSync(built.file, tmp);
    fs.chmodSync(tmp, 0o755);
    fs.renameSync(tmp, output);
    const size = fs.statSync(output).size;
    const sum = sha256File(output);
    fs.writeFileSync(`${output}.sha256`, `${sum}  ${path.basename(output)}\n`);
    const shown = path.relative(process.cwd(), output) || output;
    console.log(`builder: ${built.builder === "deno" ? "deno compile" : "bun build --compile"}`);
    console.log(`stamp:   built: ${built.how}`);
    console.log(`output:  ${shown}`);
    console.log(`size:    ${size} bytes (${mib(size)})`);
    console.log(`sha256:  ${sum}  (${shown}.sha256)`);
    return 0;
  } finally {
    if (values["keep-build-dir"]) log(`build directory kept: ${b.dir}`);
    else fs.rmSync(b.dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await compile(Deno.args));
  } catch (e) {
    if (e instanceof BuildError) {
      console.error(`compile: error: ${e.message}`);
      Deno.exit(1);
    }
    throw e;
  }
}
