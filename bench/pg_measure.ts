/**
 * Measures PostgreSQL backups side by side with pgBackRest (issue 11): one
 * pgbench database (`pgbench -i -s N`; scale 70 is about 1 GB), copied once
 * per tool so that both start from the same data directory, then for each
 * tool, with the server archiving through that tool only:
 *
 * 1. the first full base backup (`bendsave backup --from postgresql://...`;
 *    `pgbackrest backup --type=full`);
 * 2. WAL push as `archive_command` while pgbench writes (segments archived
 *    per second, from `pg_stat_archiver`), then the drain of a backlog of the
 *    same load written with archiving paused (`archive_command = ''`), which
 *    is the archiver's own rate;
 * 3. a base backup after those pgbench runs (bendsave's second backup, which
 *    stores only new content; `pgbackrest backup --type=incr`);
 * 4. a restore to a time noted after it (`bendsave restore --as-of T`;
 *    `pgbackrest restore --type=time --target=T`) and the server started on
 *    it, until it accepts connections out of recovery (promoted at T);
 * 5. the repository's size.
 *
 * Every command runs as the `postgres` user under `/usr/bin/time` (peak
 * memory); before each timed step the harness waits for the machine to go
 * quiet, as bench/run.ts does. Needs PostgreSQL 15 (scripts/install_postgres.sh),
 * pgBackRest and GNU time (bash bench/install_peers.sh), and root.
 *
 * Run: deno run -A bench/pg_measure.ts [--scale 70] [--rounds 1] [--txns 20000]
 *      [--only bendsave,pgbackrest] [--wait-quiet-s 60] [--out bench/RESULTS.md] [--bin]
 *      [--async] [--pgbackrest-async]
 *
 * With `--bin`, bendsave is the single executable `dist/bendsave` (the shipped
 * product; `./dev compile` builds it) instead of `deno run` of cli/main.ts:
 * every command, `archive_command` and the restore's `restore_command` too.
 *
 * With `--async`, bendsave archives with `wal-push --async` (a background
 * pusher) and its restore writes the prefetching `restore_command`
 * (`wal-fetch --prefetch 8`, restore's default); without it, synchronous
 * pushes and `restore --wal-prefetch 0` (one process per WAL file, as before
 * these existed). `--pgbackrest-async` sets pgBackRest's `archive-async=y`
 * (its archive-push and archive-get then queue through its spool path);
 * without it pgBackRest archives synchronously.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  bendsaveCommand,
  PG_BIN,
  pgInstalled,
  prepareBendsaveForPostgres,
  shellQuote,
  startPgCluster,
  startPgFromDataDir,
} from "../testing/pg_cluster.ts";
import type { PgCluster } from "../testing/pg_cluster.ts";
import { waitForQuiet } from "./cpu.ts";
import { FsStore } from "../store/drivers/fs.ts";
import { Repository } from "../store/repository.ts";

const { values } = parseArgs({
  options: {
    scale: { type: "string" },
    rounds: { type: "string" },
    txns: { type: "string" },
    only: { type: "string" },
    "wait-quiet-s": { type: "string" },
    out: { type: "string" },
    keep: { type: "boolean" },
    bin: { type: "boolean" },
    async: { type: "boolean" },
    "pgbackrest-async": { type: "boolean" },
  },
});
/** The compiled single executable, measured instead of `deno run` with --bin. */
const BIN = path.resolve(new URL("..", import.meta.url).pathname, "dist", "bendsave");
if (values.bin && !fs.existsSync(BIN)) {
  console.error(`--bin: ${BIN} does not exist; build it with ./dev compile`);
  Deno.exit(2);
}
/** The shell command that runs bendsave as measured: the executable, or deno run of the source. */
function bendsave(): string {
  return values.bin ? `NO_COLOR=1 ${shellQuote(BIN)}` : bendsaveCommand();
}
const SCALE = Number(values.scale ?? 70);
const ROUNDS = Number(values.rounds ?? 1);
/** pgbench transactions of each load (two clients share them). */
const TXNS = Number(values.txns ?? Math.max(2000, Math.round(SCALE * 300)));
const WAIT_QUIET_S = Number(values["wait-quiet-s"] ?? 60);
const TOOLS = (values.only ?? "bendsave,pgbackrest").split(",") as ToolName[];
type ToolName = "bendsave" | "pgbackrest";
const STANZA = "bench";
const SEGMENT = 16 * 1024 * 1024;

function log(s: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
}

function postgresIds(): { uid: number; gid: number } {
  const line = fs.readFileSync("/etc/passwd", "utf8").split("\n").find((l) =>
    l.startsWith("postgres:")
  )!;
  const f = line.split(":");
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

function mkdirPg(dir: string, mode = 0o755): string {
  const ids = postgresIds();
  fs.mkdirSync(dir, { recursive: true, mode });
  fs.chownSync(dir, ids.uid, ids.gid);
  fs.chmodSync(dir, mode);
  return dir;
}

/** A finished command: wall seconds, peak resident memory (MiB), CPU seconds. */
interface Timed {
  seconds: number;
  peakMiB: number;
  cpuSeconds: number;
  stdout: string;
  stderr: string;
}

/** Runs a shell line as `postgres` under /usr/bin/time; throws when it fails. */
async function timedAsPostgres(line: string, work: string): Promise<Timed> {
  const tf = path.join(work, `time-${crypto.randomUUID()}`);
  const t0 = performance.now();
  const out = await new Deno.Command("runuser", {
    args: [
      "-u",
      "postgres",
      "--",
      "/usr/bin/time",
      "-o",
      tf,
      "-f",
      "%e %M %U %S",
      "sh",
      "-c",
      line,
    ],
    stdout: "piped",
    stderr: "piped",
    cwd: "/",
  }).output();
  const seconds = (performance.now() - t0) / 1000;
  const dec = new TextDecoder();
  const stdout = dec.decode(out.stdout);
  const stderr = dec.decode(out.stderr);
  if (!out.success) throw new Error(`failed (${out.code}): ${line}\n${stderr}\n${stdout}`);
  const f = fs.readFileSync(tf, "utf8").trim().split("\n").at(-1)!.split(" ").map(Number);
  fs.rmSync(tf, { force: true });
  return { seconds, peakMiB: f[1]! / 1024, cpuSeconds: f[2]! + f[3]!, stdout, stderr };
}

/** Steps that started while other processes kept the machine busy, per tool. */
const busySteps: Record<ToolName, string[]> = { bendsave: [], pgbackrest: [] };

async function quiet(name: ToolName, stepName: string): Promise<void> {
  await new Deno.Command("sync").output();
  if (WAIT_QUIET_S <= 0) return;
  const q = await waitForQuiet({ maxBusyCores: 0.2, maxWaitS: WAIT_QUIET_S });
  if (q.waitedS > 2) {
    log(
      q.quiet
        ? `waited ${q.waitedS.toFixed(0)} s for the machine to go quiet`
        : `other processes still use ${q.busyCores.toFixed(1)} cores; measuring anyway`,
    );
  }
  if (!q.quiet) busySteps[name].push(stepName);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One tool's commands. */
interface Tool {
  name: ToolName;
  /** Creates the repository (the server runs, without archiving). */
  init(pg: PgCluster): Promise<void>;
  /** The archive_command (with `%p`, `%f`). */
  archiveCommand(): string;
  fullBackup(pg: PgCluster): string;
  incrBackup(pg: PgCluster): string;
  restore(target: string, dataDir: string): string;
  repo: string;
}

function bendsaveTool(work: string): Tool {
  const repo = path.join(work, "repo-bendsave");
  const bs = bendsave();
  return {
    name: "bendsave",
    repo,
    async init() {
      // The first backup would create it; wal-push needs it first. Default settings, as the CLI's.
      await Repository.init(await FsStore.open(repo, { create: true }));
      await run(["chown", "-R", "postgres:postgres", repo]);
    },
    archiveCommand: () =>
      `${bs} wal-push %p --to ${shellQuote(repo)}${values.async ? " --async" : ""}`,
    fullBackup: (pg) => `${bs} backup --from ${shellQuote(pg.uri())} --to ${shellQuote(repo)}`,
    incrBackup: (pg) => `${bs} backup --from ${shellQuote(pg.uri())} --to ${shellQuote(repo)}`,
    restore: (target, dataDir) =>
      `${bs} restore --from ${shellQuote(repo)} --to ${shellQuote(dataDir)} --as-of ${
        shellQuote(target)
      } --confirm${values.async ? "" : " --wal-prefetch 0"}`,
  };
}

/** pgBackRest's settings beyond the paths: both cores, zstd, a fast checkpoint (as bendsave). */
const PGBACKREST_SETTINGS = [
  "process-max=2",
  "compress-type=zst",
  "start-fast=y",
  ...(values["pgbackrest-async"] ? ["archive-async=y"] : []),
];

function pgbackrestTool(work: string): Tool {
  const repo = path.join(work, "repo-pgbackrest");
  const conf = path.join(work, "pgbackrest.conf");
  const pb = `pgbackrest --config=${shellQuote(conf)} --stanza=${STANZA}`;
  return {
    name: "pgbackrest",
    repo,
    async init(pg) {
      mkdirPg(repo, 0o750);
      for (const d of ["pgbr-lock", "pgbr-log", "pgbr-spool"]) mkdirPg(path.join(work, d), 0o750);
      fs.writeFileSync(
        conf,
        [
          "[global]",
          `repo1-path=${repo}`,
          "repo1-retention-full=10",
          `lock-path=${path.join(work, "pgbr-lock")}`,
          `log-path=${path.join(work, "pgbr-log")}`,
          `spool-path=${path.join(work, "pgbr-spool")}`,
          "log-level-console=warn",
          "log-level-file=off",
          ...PGBACKREST_SETTINGS,
          "",
          `[${STANZA}]`,
          `pg1-path=${pg.dataDir}`,
          `pg1-socket-path=${pg.socketDir}`,
          `pg1-port=${pg.port}`,
          "",
        ].join("\n"),
      );
      fs.chmodSync(conf, 0o644);
      await timedAsPostgres(`${pb} stanza-create`, work);
    },
    archiveCommand: () => `${pb} archive-push %p`,
    fullBackup: () => `${pb} backup --type=full`,
    incrBackup: () => `${pb} backup --type=incr`,
    restore: (target, dataDir) =>
      `${pb} restore --pg1-path=${shellQuote(dataDir)} --type=time --target=${
        shellQuote(target)
      } --target-action=promote`,
  };
}

/** One tool's results in one round. */
interface Result {
  full: Timed;
  incr: Timed;
  restore: Timed;
  /** Seconds from `pg_ctl start` until the restored server answers out of recovery. */
  startSeconds: number;
  /** Segments archived per second while pgbench wrote (start of pgbench to archive caught up). */
  pushLoadRate: number;
  /** Segments archived during pgbench, and pgbench's seconds. */
  pushLoadSegments: number;
  pgbenchSeconds: number;
  /** .ready files left when pgbench ended. */
  pushLoadBacklog: number;
  /** Segments per second draining a backlog written with archiving paused. */
  drainRate: number;
  drainSegments: number;
  /** Per-push wall seconds (median) and peak memory (max, MiB) of the archive command. */
  pushMedianS: number;
  pushPeakMiB: number;
  repoBytes: number;
  /** Restored rows checked against the origin at T. */
  check: string;
}

function readyCount(pg: PgCluster): number {
  const dir = path.join(pg.dataDir, "pg_wal", "archive_status");
  return fs.readdirSync(dir).filter((f) => f.endsWith(".ready")).length;
}

async function archivedCount(pg: PgCluster): Promise<number> {
  return Number(await pg.sql("SELECT archived_count FROM pg_stat_archiver"));
}

async function failedCount(pg: PgCluster): Promise<number> {
  return Number(await pg.sql("SELECT failed_count FROM pg_stat_archiver"));
}

/** Waits until no WAL file waits for archiving; returns the seconds waited. */
async function drained(pg: PgCluster, limitS = 1800): Promise<void> {
  const t0 = performance.now();
  const failed = await failedCount(pg);
  while (readyCount(pg) > 0) {
    if (await failedCount(pg) > failed) {
      throw new Error(`the archive command failed:\n${pg.log().slice(-3000)}`);
    }
    if ((performance.now() - t0) / 1000 > limitS) {
      throw new Error(`the archive did not catch up in ${limitS} s:\n${pg.log().slice(-3000)}`);
    }
    await sleep(100);
  }
}

async function setArchiveCommand(pg: PgCluster, cmd: string): Promise<void> {
  await pg.sql(`ALTER SYSTEM SET archive_command = '${cmd.replaceAll("'", "''")}'`);
  await pg.sql("SELECT pg_reload_conf()");
  await sleep(300);
}

function du(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  }
  return n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function pgbench(pg: PgCluster, txns: number): Promise<number> {
  const t0 = performance.now();
  await pg.pgbench(["-n", "-c", "2", "-j", "2", "-t", String(Math.ceil(txns / 2))]);
  return (performance.now() - t0) / 1000;
}

async function measureTool(
  name: ToolName,
  template: string,
  work: string,
): Promise<Result> {
  const tw = mkdirPg(path.join(work, name));
  const tool = name === "bendsave" ? bendsaveTool(tw) : pgbackrestTool(tw);
  const dataDir = path.join(tw, "data");
  log(`${name}: copying the template data directory`);
  await run(["cp", "-a", template, dataDir]);
  const pg = await startPgFromDataDir(dataDir, {
    settings: { archive_mode: "on", max_wal_size: "1GB", checkpoint_timeout: "15min" },
  });
  const pushTimes = path.join(tw, "push-times");
  mkdirPg(pushTimes);
  try {
    await tool.init(pg);
    // Every push under /usr/bin/time: its wall time and peak memory, one line per WAL file.
    const archive = `/usr/bin/time -a -o ${
      shellQuote(path.join(pushTimes, "all"))
    } -f '%e %M' env ${tool.archiveCommand()}`;
    await setArchiveCommand(pg, archive);
    await pg.sql("SELECT pg_switch_wal()");
    await drained(pg);

    await quiet(name, "full backup");
    log(`${name}: full backup …`);
    const full = await timedAsPostgres(tool.fullBackup(pg), tw);
    log(`${name}: full backup ${full.seconds.toFixed(2)} s, ${full.peakMiB.toFixed(0)} MiB`);
    await drained(pg);

    // WAL push while pgbench writes.
    await pg.sql("CHECKPOINT");
    await quiet(name, "WAL push while pgbench writes");
    const a0 = await archivedCount(pg);
    const lsn0 = await pg.sql("SELECT pg_current_wal_lsn()");
    log(`${name}: pgbench ${TXNS} transactions with ${name} archiving …`);
    const t0 = performance.now();
    const pgbenchSeconds = await pgbench(pg, TXNS);
    const a1 = await archivedCount(pg);
    const backlog = readyCount(pg);
    await pg.sql("SELECT pg_switch_wal()");
    await drained(pg);
    const tLoad = (performance.now() - t0) / 1000;
    const a2 = await archivedCount(pg);
    const walBytes = Number(
      await pg.sql(`SELECT pg_current_wal_lsn() - '${lsn0}'::pg_lsn`),
    );
    const pushLoadRate = (a2 - a0) / tLoad;
    log(
      `${name}: pgbench ${pgbenchSeconds.toFixed(1)} s, ${
        (walBytes / SEGMENT).toFixed(1)
      } segments of WAL; ` +
        `${a1 - a0} archived meanwhile, ${backlog} waiting at its end; ` +
        `${a2 - a0} in ${tLoad.toFixed(1)} s = ${pushLoadRate.toFixed(2)} segments/s`,
    );

    // The same load with archiving paused, then the drain of that backlog.
    await setArchiveCommand(pg, "");
    await pg.sql("CHECKPOINT");
    await pgbench(pg, TXNS);
    await pg.sql("SELECT pg_switch_wal()");
    const backlogN = readyCount(pg);
    await quiet(name, "WAL push backlog drain");
    const d0 = await archivedCount(pg);
    const td = performance.now();
    await setArchiveCommand(pg, archive);
    await drained(pg);
    const drainS = (performance.now() - td) / 1000;
    const drainSegments = (await archivedCount(pg)) - d0;
    const drainRate = drainSegments / drainS;
    log(
      `${name}: drained ${drainSegments} segments (${backlogN} waiting) in ${
        drainS.toFixed(1)
      } s = ${drainRate.toFixed(2)} segments/s`,
    );
    if ((await failedCount(pg)) > 0) log(`${name}: pg_stat_archiver counts failed pushes`);

    await quiet(name, "second backup");
    log(`${name}: base backup after pgbench …`);
    const incr = await timedAsPostgres(tool.incrBackup(pg), tw);
    log(`${name}: second backup ${incr.seconds.toFixed(2)} s, ${incr.peakMiB.toFixed(0)} MiB`);

    // A target time between two marker rows, after a little more load.
    await pgbench(pg, Math.min(TXNS, 2000));
    await pg.sql("CREATE TABLE bench_marker (id int PRIMARY KEY)");
    await pg.sql("INSERT INTO bench_marker VALUES (1)");
    const historyAtT = await pg.sql("SELECT count(*) FROM pgbench_history");
    await sleep(1100);
    const target = await pg.sql("SELECT now()");
    await sleep(1100);
    await pg.sql("INSERT INTO bench_marker VALUES (2)");
    await pgbench(pg, 1000);
    await pg.sql("SELECT pg_switch_wal()");
    await drained(pg);
    await pg.stop();

    const pushLines = fs.readFileSync(path.join(pushTimes, "all"), "utf8").trim().split("\n")
      .map((l) => l.trim().split(" ").map(Number)).filter((f) => f.length === 2 && !isNaN(f[0]!));
    const pushMedianS = median(pushLines.map((f) => f[0]!));
    const pushPeakMiB = Math.max(...pushLines.map((f) => f[1]!)) / 1024;

    const restoreDir = path.join(tw, "restored");
    if (name === "pgbackrest") mkdirPg(restoreDir, 0o700);
    await quiet(name, "restore");
    log(`${name}: restore to ${target} …`);
    const restore = await timedAsPostgres(tool.restore(target, restoreDir), tw);
    const ts = performance.now();
    const restored = await startPgFromDataDir(restoreDir, { wait: false });
    let startSeconds = NaN;
    let check = "";
    try {
      for (let i = 0; i < 6000; i++) {
        const r = await restored.sql("SELECT pg_is_in_recovery()").catch(() => "");
        if (r === "f") {
          startSeconds = (performance.now() - ts) / 1000;
          break;
        }
        await sleep(100);
      }
      if (isNaN(startSeconds)) {
        throw new Error(`the restored server did not come up:\n${restored.log()}`);
      }
      const ids = await restored.sql(
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM bench_marker",
      );
      const history = await restored.sql("SELECT count(*) FROM pgbench_history");
      check = ids === "1" && history === historyAtT
        ? `marker rows ${ids}, pgbench_history ${history} rows as at T`
        : `MISMATCH: marker rows ${ids} (want 1), pgbench_history ${history} (want ${historyAtT})`;
    } finally {
      await restored[Symbol.asyncDispose]();
    }
    log(
      `${name}: restore ${restore.seconds.toFixed(2)} s (${restore.peakMiB.toFixed(0)} MiB), ` +
        `start ${startSeconds.toFixed(2)} s; ${check}`,
    );
    const repoBytes = du(tool.repo);
    return {
      full,
      incr,
      restore,
      startSeconds,
      pushLoadRate,
      pushLoadSegments: a1 - a0,
      pgbenchSeconds,
      pushLoadBacklog: backlog,
      drainRate,
      drainSegments,
      pushMedianS,
      pushPeakMiB,
      repoBytes,
      check,
    };
  } finally {
    await pg[Symbol.asyncDispose]().catch(() => {});
    if (!values.keep) await removeTree(tw);
  }
}

/**
 * Removes a directory tree, again after a pause while something still writes
 * into it (bendsave's background pusher or prefetcher finishing with its spool).
 */
async function removeTree(dir: string): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== "ENOTEMPTY" || attempt >= 20) throw e;
      await sleep(500);
    }
  }
}

async function run(cmd: string[]): Promise<string> {
  const out = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`${cmd.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout).trim();
}

/** Where the start-up time of one wal-push goes: Deno alone, the CLI's entry, the command's modules. */
interface Profile {
  deno: number;
  version: number;
  walPushHelp: number;
  walFetchHelp: number;
}

async function startupProfile(work: string): Promise<Profile> {
  const bs = bendsave();
  const bare = bendsaveCommand().replace(/ --config .*$/, "").replace(
    / run --allow-all --quiet$/,
    "",
  );
  const lines: Record<keyof Profile, string> = {
    deno: `${bare} eval 0`,
    version: `${bs} --version`,
    walPushHelp: `${bs} wal-push --help`,
    walFetchHelp: `${bs} wal-fetch --help`,
  };
  const out = { deno: NaN, version: NaN, walPushHelp: NaN, walFetchHelp: NaN };
  for (const k of Object.keys(lines) as (keyof Profile)[]) {
    const xs = [];
    for (let i = 0; i < 5; i++) xs.push((await timedAsPostgres(lines[k], work)).seconds);
    out[k] = median(xs);
  }
  return out;
}

if (!pgInstalled) {
  console.error("PostgreSQL 15 is not installed or this is not root (scripts/install_postgres.sh)");
  Deno.exit(2);
}
await prepareBendsaveForPostgres();
const work = mkdirPg(fs.mkdtempSync("/tmp/bendsave-pg-bench-"));
const started = new Date();
const results: Record<ToolName, Result[]> = { bendsave: [], pgbackrest: [] };
let dbBytes = 0;
let profile: Profile = { deno: NaN, version: NaN, walPushHelp: NaN, walFetchHelp: NaN };
try {
  log(`pgbench -i -s ${SCALE} …`);
  const template = path.join(work, "template");
  {
    await using pg = await startPgCluster({
      archiveCommand: "/bin/true",
      settings: { max_wal_size: "1GB" },
    });
    await pg.pgbench(["-i", "-s", String(SCALE), "-q"]);
    dbBytes = Number(await pg.sql("SELECT pg_database_size('postgres')"));
    await pg.sql("CHECKPOINT");
    await pg.stop();
    await run(["cp", "-a", pg.dataDir, template]);
    // Archiving starts with each tool's repository.
    fs.appendFileSync(path.join(template, "postgresql.conf"), "archive_command = ''\n");
  }
  log(`database ${(dbBytes / 1e6).toFixed(0)} MB; template ${(du(template) / 1e6).toFixed(0)} MB`);
  profile = await startupProfile(work);
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? TOOLS : [...TOOLS].reverse();
    for (const name of order) results[name].push(await measureTool(name, template, work));
  }
} finally {
  if (!values.keep) fs.rmSync(work, { recursive: true, force: true });
}

// The report.
const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
const med = (name: ToolName, f: (r: Result) => number) => median(results[name].map(f));
const have = (name: ToolName) => results[name].length > 0;
type Row = [string, (r: Result) => number, (v: number) => string, "time" | "rate" | "size"];
const s = (v: number) => `${v.toFixed(2)} s`;
const rows: Row[] = [
  ["first full base backup", (r) => r.full.seconds, s, "time"],
  [
    "base backup after pgbench (bendsave: by content; pgBackRest: --type=incr)",
    (r) => r.incr.seconds,
    s,
    "time",
  ],
  [
    "WAL push while pgbench writes (segments/s)",
    (r) => r.pushLoadRate,
    (v) => v.toFixed(2),
    "rate",
  ],
  ["WAL push, draining a backlog (segments/s)", (r) => r.drainRate, (v) => v.toFixed(2), "rate"],
  ["one archive_command run, median", (r) => r.pushMedianS, s, "time"],
  ["restore to T", (r) => r.restore.seconds, s, "time"],
  ["server start until out of recovery", (r) => r.startSeconds, s, "time"],
  [
    "restore + start (until it accepts connections)",
    (r) => r.restore.seconds + r.startSeconds,
    s,
    "time",
  ],
  ["repository size", (r) => r.repoBytes, mb, "size"],
];
const memRows: [string, (r: Result) => number][] = [
  ["first full base backup", (r) => r.full.peakMiB],
  ["base backup after pgbench", (r) => r.incr.peakMiB],
  ["one archive_command run (max)", (r) => r.pushPeakMiB],
  ["restore", (r) => r.restore.peakMiB],
];
const lines: string[] = [];
lines.push(
  `## PostgreSQL: bendsave (${
    values.bin ? "dist/bendsave" : "deno run"
  }) and pgBackRest, ${started.toISOString()}`,
  "",
);
lines.push(
  `- command: \`deno run -A bench/pg_measure.ts ${Deno.args.join(" ")}\``,
  `- machine: \`${await run(["uname", "-srvm"])}\`, nproc ${await run([
    "nproc",
  ])}; Deno ${Deno.version.deno}; ` +
    `${await run(["sh", "-c", "pgbackrest version"])}; ${await run([
      path.join(PG_BIN, "postgres"),
      "--version",
    ])}`,
  `- database: \`pgbench -i -s ${SCALE}\`, ${
    mb(dbBytes)
  } (pg_database_size); each tool starts from a copy ` +
    `of the same data directory and archives alone; loads: \`pgbench -n -c 2 -j 2\`, ${TXNS} transactions ` +
    `after a CHECKPOINT (synchronous_commit off, shared_buffers 32MB)`,
  `- pgBackRest: ${PGBACKREST_SETTINGS.join(", ")}, archive-push and archive-get ${
    values["pgbackrest-async"]
      ? "asynchronous (archive-async=y)"
      : "synchronous (archive-async off)"
  }, ` +
    `\`archive_command = 'pgbackrest --stanza=${STANZA} archive-push %p'\`; ` +
    `bendsave: \`archive_command = 'bendsave wal-push %p --to REPO${
      values.async ? " --async" : ""
    }'\` (${
      values.bin ? "the single executable dist/bendsave" : "`deno run` of cli/main.ts, cache warm"
    }); both under \`/usr/bin/time -a\` (with --async: the foreground only, not the detached pusher)`,
  `- restore: to a time between two marker rows, then \`pg_ctl start\`; timed until \`pg_is_in_recovery()\` ` +
    `is false (the server accepts connections, promoted at the target); bendsave: \`restore --as-of T --confirm${
      values.async ? "" : " --wal-prefetch 0"
    }\`${values.async ? " (restore_command prefetches 8 segments)" : ""}; ` +
    `pgBackRest: \`restore --type=time --target=T --target-action=promote\``,
  `- ${ROUNDS} round(s), tool order alternating; cells are medians; ratios are bendsave÷pgBackRest ` +
    `(time and size: below 1 is better for bendsave; rates: above 1 is better)`,
  "",
);
const both = have("bendsave") && have("pgbackrest");
lines.push("| step | bendsave | pgBackRest | ratio |", "| --- | ---: | ---: | ---: |");
for (const [label, f, fmt] of rows) {
  const b = have("bendsave") ? med("bendsave", f) : NaN;
  const p = have("pgbackrest") ? med("pgbackrest", f) : NaN;
  lines.push(
    `| ${label} | ${isNaN(b) ? "—" : fmt(b)} | ${isNaN(p) ? "—" : fmt(p)} | ${
      both ? (b / p).toFixed(2) : "—"
    } |`,
  );
}
lines.push("", "Peak resident memory (MiB, /usr/bin/time -v's maximum resident set size):", "");
lines.push("| command | bendsave | pgBackRest |", "| --- | ---: | ---: |");
for (const [label, f] of memRows) {
  const b = have("bendsave") ? med("bendsave", f).toFixed(0) : "—";
  const p = have("pgbackrest") ? med("pgbackrest", f).toFixed(0) : "—";
  lines.push(`| ${label} | ${b} | ${p} |`);
}
lines.push("");
for (const name of TOOLS) {
  for (const [i, r] of results[name].entries()) {
    lines.push(
      `- ${name}, round ${i + 1}: full ${r.full.seconds.toFixed(2)} s (${
        r.full.cpuSeconds.toFixed(1)
      } CPU-s), ` +
        `second ${r.incr.seconds.toFixed(2)} s (${r.incr.cpuSeconds.toFixed(1)} CPU-s); pgbench ` +
        `${
          r.pgbenchSeconds.toFixed(1)
        } s with ${r.pushLoadSegments} segments archived meanwhile and ` +
        `${r.pushLoadBacklog} waiting at its end; backlog of ${r.drainSegments} drained at ` +
        `${r.drainRate.toFixed(2)}/s; restore ${r.restore.seconds.toFixed(2)} s ` +
        `(${r.restore.cpuSeconds.toFixed(1)} CPU-s) + start ${
          r.startSeconds.toFixed(2)
        } s; ${r.check}`,
    );
  }
}
for (const name of TOOLS) {
  if (busySteps[name].length > 0) {
    lines.push(
      `- ${name}: started with other processes busy (after ${WAIT_QUIET_S} s of waiting): ${
        busySteps[name].join(", ")
      }`,
    );
  }
}
lines.push(
  `- start-up of one bendsave process as postgres (median of 5): \`deno eval 0\` ${
    profile.deno.toFixed(2)
  } s, \`bendsave --version\` (Deno + CLI entry) ${profile.version.toFixed(2)} s, ` +
    `\`wal-push --help\` (+ the command's modules) ${profile.walPushHelp.toFixed(2)} s, ` +
    `\`wal-fetch --help\` ${profile.walFetchHelp.toFixed(2)} s`,
  "",
);
const report = lines.join("\n");
console.log(report);
if (values.out) fs.appendFileSync(values.out, "\n" + report);
