/**
 * Private PostgreSQL 15 clusters for tests: `initdb` as the `postgres` user
 * into a temporary directory, a server on a private Unix socket (no TCP
 * unless asked), WAL archiving on, and helpers to run SQL, pgbench, stop and
 * clean up (`await using`). Tests run as root; the server runs as `postgres`
 * (`runuser -u postgres --`), and so do its `archive_command` and
 * `restore_command`: {@linkcode bendsaveCommand} gives the shell command that
 * runs this checkout's bendsave as that user.
 *
 * `.ci/run` installs PostgreSQL (scripts/install_postgres.sh); without it
 * tests pass {@linkcode pgIgnore} to `Deno.test` and are skipped.
 *
 * @example
 * ```ts ignore
 * import { pgIgnore, startPgCluster } from "./pg_cluster.ts";
 * Deno.test({ name: "x", ignore: pgIgnore, fn: async () => {
 *   await using pg = await startPgCluster();
 *   await pg.sql("CREATE TABLE t (a int)");
 *   pg.uri(); // postgresql://postgres@/postgres?host=/tmp/...&port=...
 * }});
 * ```
 *
 * @module
 */
import { shellQuote } from "../formats/shell.ts";
import fs from "node:fs";
import path from "node:path";
import net from "node:net";

/** Where Debian's postgresql-15 puts the server programs. */
export const PG_BIN = "/usr/lib/postgresql/15/bin";

/** True when PostgreSQL 15 is installed and the `postgres` user exists. */
export const pgInstalled: boolean = (() => {
  try {
    fs.accessSync(path.join(PG_BIN, "postgres"), fs.constants.X_OK);
    fs.accessSync(path.join(PG_BIN, "initdb"), fs.constants.X_OK);
  } catch {
    return false;
  }
  return Deno.build.os === "linux" && Deno.uid() === 0 && postgresIds() !== null;
})();

/** `ignore` for `Deno.test`: true when PostgreSQL cannot be run here (not installed, not root). */
export const pgIgnore: boolean = !pgInstalled;

const CHECKOUT = path.resolve(new URL("..", import.meta.url).pathname);
/** The shared Deno cache the `postgres` user runs bendsave with. */
export const SHARED_DENO_DIR = "/tmp/bendsave-deno-dir";

/** The uid and gid of the `postgres` user, or null. */
function postgresIds(): { uid: number; gid: number } | null {
  try {
    const line = fs.readFileSync("/etc/passwd", "utf8").split("\n").find((l) =>
      l.startsWith("postgres:")
    );
    if (!line) return null;
    const f = line.split(":");
    return { uid: Number(f[2]), gid: Number(f[3]) };
  } catch {
    return null;
  }
}

/** Quotes a word for `sh` (formats/shell.ts). */
export { shellQuote };

/**
 * The shell command that runs this checkout's bendsave CLI as any user
 * (the `postgres` user in `archive_command` and `restore_command`): the
 * pinned Deno with the shared, world-readable cache {@linkcode SHARED_DENO_DIR}
 * (call {@linkcode prepareBendsaveForPostgres} first) and this checkout's
 * deno.json. Append the command and its arguments.
 *
 * @example
 * ```ts ignore
 * const archive = `${bendsaveCommand()} wal-push %p --to ${shellQuote(repo)}`;
 * ```
 */
export function bendsaveCommand(): string {
  return [
    `DENO_DIR=${shellQuote(SHARED_DENO_DIR)}`,
    `DENO_NO_UPDATE_CHECK=1`,
    `NO_COLOR=1`,
    shellQuote(Deno.execPath()),
    "run",
    "--allow-all",
    "--quiet",
    "--config",
    shellQuote(path.join(CHECKOUT, "deno.json")),
    shellQuote(path.join(CHECKOUT, "cli", "main.ts")),
  ].join(" ");
}

let prepared: Promise<void> | null = null;

/**
 * Fills {@linkcode SHARED_DENO_DIR} with everything the CLI needs (a copy of
 * this process's Deno cache, then `deno cache cli/main.ts`) and makes it
 * readable and writable by every user, so that the `postgres` user runs
 * bendsave without fetching anything. Once per process.
 */
export function prepareBendsaveForPostgres(): Promise<void> {
  const denoCache = async (dir: string) => {
    await run([
      Deno.execPath(),
      "cache",
      "--quiet",
      "--config",
      path.join(CHECKOUT, "deno.json"),
      path.join(CHECKOUT, "cli", "main.ts"),
    ], { env: { DENO_DIR: dir } });
    await run(["chmod", "-R", "a+rwX", dir]);
  };
  prepared ??= (async () => {
    if (!fs.existsSync(path.join(SHARED_DENO_DIR, "npm"))) {
      // First use on this machine: fill a private directory, then rename it into place, so that
      // test processes running at once never see a half-copied cache.
      const tmp = `${SHARED_DENO_DIR}.tmp-${Deno.pid}`;
      fs.rmSync(tmp, { recursive: true, force: true });
      fs.mkdirSync(tmp, { recursive: true });
      const own = Deno.env.get("DENO_DIR") ??
        path.join(Deno.env.get("HOME") ?? "/root", ".cache", "deno");
      if (fs.existsSync(path.join(own, "npm"))) {
        await run(["cp", "-a", "--", `${own}/.`, tmp]).catch(() => {});
      }
      await denoCache(tmp);
      try {
        fs.renameSync(tmp, SHARED_DENO_DIR); // onto nothing or an empty directory
      } catch {
        fs.rmSync(tmp, { recursive: true, force: true }); // another process was first
      }
    }
    // Dependencies added since the directory was filled.
    await denoCache(SHARED_DENO_DIR);
  })();
  return prepared;
}

/** Runs a program; throws with its standard error when it fails. */
async function run(
  cmd: string[],
  options: { env?: Record<string, string>; cwd?: string; stdin?: string } = {},
): Promise<string> {
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    env: options.env ?? {},
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `${cmd.slice(0, 4).join(" ")} failed (${out.code}): ${dec.decode(out.stderr).trim()}`,
    );
  }
  return dec.decode(out.stdout);
}

/** Runs a program as the `postgres` user. */
function asPostgres(
  cmd: string[],
  options: { env?: Record<string, string>; cwd?: string; stdin?: string } = {},
): Promise<string> {
  return run(["runuser", "-u", "postgres", "--", ...cmd], options);
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Options of {@linkcode startPgCluster}. */
export interface PgClusterOptions {
  /**
   * `archive_command`, with PostgreSQL's `%p` and `%f`. Default: with
   * `archiveTo`, `bendsave wal-push %p --to <archiveTo>`; otherwise a `cp`
   * into `<root>/wal-archive` (see {@linkcode PgCluster.walArchiveDir}).
   */
  readonly archiveCommand?: string;
  /** A repository: archive with this checkout's `bendsave wal-push %p --to <repo>`. */
  readonly archiveTo?: string;
  /** `archive_mode` (default true; false: no archiving, for the refusal tests). */
  readonly archiveMode?: boolean;
  /** Also listen on 127.0.0.1 (a free port), with scram-sha-256 password auth. */
  readonly tcp?: boolean;
  /**
   * A role `bendsave_pw` with this password (superuser); it must give it on
   * the socket too (other roles are trusted there).
   */
  readonly password?: string;
  /** Further postgresql.conf settings. */
  readonly settings?: Readonly<Record<string, string>>;
}

/** A running (or stopped) private PostgreSQL server. */
export interface PgCluster {
  /** The temporary directory holding everything (removed on dispose). */
  readonly root: string;
  /** The data directory. */
  readonly dataDir: string;
  /** The Unix socket directory. */
  readonly socketDir: string;
  /** The port (the socket's name; the TCP port with `tcp`). */
  readonly port: number;
  /** The archive directory of the default `cp` archive_command. */
  readonly walArchiveDir: string;
  /** A libpq URI of the server over its socket: `postgresql://USER@/DB?host=...&port=...`. */
  uri(options?: { db?: string; user?: string; password?: string; tcp?: boolean }): string;
  /** Runs SQL with psql as `postgres` (`-X -A -t -v ON_ERROR_STOP=1`); returns its output, trimmed. */
  sql(sql: string, options?: { db?: string }): Promise<string>;
  /** Runs pgbench as `postgres` against the server (e.g. `["-i", "-s", "1"]`). */
  pgbench(args: readonly string[], options?: { db?: string }): Promise<string>;
  /** Starts a stopped server (`pg_ctl start -w`). */
  start(): Promise<void>;
  /** Stops the server (`fast` by default; `immediate` is a crash). */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** The server's log so far (for failure messages). */
  log(): string;
  /** Stops the server and removes {@linkcode PgCluster.root}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Makes a temporary directory owned by `postgres`. */
async function postgresTempDir(prefix: string): Promise<string> {
  const root = await Deno.makeTempDir({ prefix });
  const ids = postgresIds()!;
  fs.chownSync(root, ids.uid, ids.gid);
  fs.chmodSync(root, 0o755);
  return root;
}

function mkdirOwned(dir: string, mode = 0o700): void {
  const ids = postgresIds()!;
  fs.mkdirSync(dir, { recursive: true, mode });
  fs.chownSync(dir, ids.uid, ids.gid);
  fs.chmodSync(dir, mode);
}

/**
 * Initializes and starts a private PostgreSQL 15 cluster as the `postgres`
 * user: `wal_level = replica`, `archive_mode = on` (see
 * {@linkcode PgClusterOptions}), `synchronous_commit = off` (never `fsync =
 * off`), a private socket directory, `listen_addresses = ''` unless `tcp`.
 */
export async function startPgCluster(options: PgClusterOptions = {}): Promise<PgCluster> {
  if (!pgInstalled) throw new Error("PostgreSQL 15 is not installed (scripts/install_postgres.sh)");
  const root = await postgresTempDir("bendsave-pg-");
  const dataDir = path.join(root, "data");
  const socketDir = path.join(root, "sock");
  const walArchiveDir = path.join(root, "wal-archive");
  mkdirOwned(socketDir, 0o755);
  mkdirOwned(walArchiveDir, 0o755);
  try {
    await asPostgres([
      path.join(PG_BIN, "initdb"),
      "--pgdata",
      dataDir,
      "--username",
      "postgres",
      "--auth-local",
      "trust",
      "--auth-host",
      "scram-sha-256",
      "--encoding",
      "UTF8",
      "--locale",
      "C",
      "--no-sync",
    ]);
    if (options.archiveTo !== undefined) {
      await prepareBendsaveForPostgres();
    }
    const port = options.tcp ? await freePort() : 20000 + Math.floor(Math.random() * 20000);
    const archiveCommand = options.archiveCommand ??
      (options.archiveTo !== undefined
        ? `${bendsaveCommand()} wal-push %p --to ${shellQuote(options.archiveTo)}`
        : `test ! -f ${shellQuote(walArchiveDir)}/%f && cp %p ${shellQuote(walArchiveDir)}/%f`);
    const conf: Record<string, string> = {
      listen_addresses: options.tcp ? "'127.0.0.1'" : "''",
      port: String(port),
      unix_socket_directories: pgString(socketDir),
      wal_level: "replica",
      archive_mode: options.archiveMode === false ? "off" : "on",
      archive_command: pgString(archiveCommand),
      archive_timeout: "0",
      max_wal_senders: "4",
      synchronous_commit: "off",
      shared_buffers: "32MB",
      max_connections: "30",
      logging_collector: "off",
      log_min_messages: "warning",
      ...(options.settings ?? {}),
    };
    fs.appendFileSync(
      path.join(dataDir, "postgresql.conf"),
      "\n# testing/pg_cluster.ts\n" +
        Object.entries(conf).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n",
    );
    if (options.password !== undefined) {
      // Before the trusted line: the password role must give its password on the socket too.
      const hba = path.join(dataDir, "pg_hba.conf");
      fs.writeFileSync(
        hba,
        "local all bendsave_pw scram-sha-256\n" + fs.readFileSync(hba, "utf8"),
      );
    }
    const cluster = makeCluster({ root, dataDir, socketDir, port, walArchiveDir });
    await cluster.start();
    if (options.password !== undefined) {
      await cluster.sql(
        `CREATE ROLE bendsave_pw LOGIN SUPERUSER PASSWORD ${pgString(options.password)}`,
      );
    }
    return cluster;
  } catch (e) {
    await run([path.join(PG_BIN, "pg_ctl"), "-D", dataDir, "stop", "-m", "immediate"]).catch(
      () => {},
    );
    await Deno.remove(root, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * A temporary directory the `postgres` user owns and can reach (mode 0755,
 * in /tmp), removed on dispose: restore a data directory below it for
 * {@linkcode startPgFromDataDir} (the test's own temporary directories are
 * root's, mode 0700, which the server cannot enter).
 */
export async function pgTempDir(
  prefix = "bendsave-pg-dir-",
): Promise<{ dir: string; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await postgresTempDir(prefix);
  return {
    dir,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Options of {@linkcode startPgFromDataDir}. */
export interface RestoredServerOptions {
  /** Settings given on the server's command line (`-c name=value`), over postgresql.conf. */
  readonly settings?: Readonly<Record<string, string>>;
  /**
   * Wait for the server to accept connections (`pg_ctl -w`, default true).
   * A server replaying to a recovery target accepts them once it is consistent.
   */
  readonly wait?: boolean;
  /** Seconds `pg_ctl -w` waits (default 120). */
  readonly timeoutSeconds?: number;
}

/**
 * Starts PostgreSQL on a data directory restored by bendsave (for example
 * with `restore_command` and `recovery.signal` written by `restore --as-of`):
 * makes it owned by `postgres` with mode 0700 (as PostgreSQL requires), and
 * starts the server on a new private socket, overriding the restored
 * postgresql.conf's `port`, `unix_socket_directories` and `listen_addresses`
 * (and turning archiving off unless `settings` say otherwise, so the restored
 * server never archives into the original's archive). The returned cluster's
 * dispose stops the server and removes the data directory's parent only when
 * it created it: the data directory itself is the caller's.
 */
export async function startPgFromDataDir(
  dataDir: string,
  options: RestoredServerOptions = {},
): Promise<PgCluster> {
  if (!pgInstalled) throw new Error("PostgreSQL 15 is not installed (scripts/install_postgres.sh)");
  const ids = postgresIds()!;
  await run(["chown", "-R", `${ids.uid}:${ids.gid}`, dataDir]);
  fs.chmodSync(dataDir, 0o700);
  try {
    await asPostgres(["test", "-r", path.join(dataDir, "PG_VERSION")]);
  } catch {
    throw new Error(
      `the postgres user cannot reach ${dataDir}: restore it below a directory it may enter (pgTempDir())`,
    );
  }
  const root = await postgresTempDir("bendsave-pg-restored-");
  const socketDir = path.join(root, "sock");
  mkdirOwned(socketDir, 0o755);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const settings: Record<string, string> = {
    port: String(port),
    unix_socket_directories: socketDir,
    listen_addresses: "",
    archive_mode: "off",
    ...(options.settings ?? {}),
  };
  const cluster = makeCluster({
    root,
    dataDir: path.resolve(dataDir),
    socketDir,
    port,
    walArchiveDir: path.join(root, "wal-archive"),
    commandLine: settings,
    wait: options.wait ?? true,
    timeoutSeconds: options.timeoutSeconds ?? 120,
  });
  try {
    await cluster.start();
  } catch (e) {
    await Deno.remove(root, { recursive: true }).catch(() => {});
    throw e;
  }
  return cluster;
}

/** A PostgreSQL string literal (also a postgresql.conf value). */
function pgString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

function makeCluster(c: {
  root: string;
  dataDir: string;
  socketDir: string;
  port: number;
  walArchiveDir: string;
  commandLine?: Record<string, string>;
  wait?: boolean;
  timeoutSeconds?: number;
}): PgCluster {
  const logFile = path.join(c.root, "server.log");
  let running = false;
  const pgEnv = (db?: string) => ({
    PGHOST: c.socketDir,
    PGPORT: String(c.port),
    PGUSER: "postgres",
    PGDATABASE: db ?? "postgres",
    LC_ALL: "C",
  });
  const cluster: PgCluster = {
    root: c.root,
    dataDir: c.dataDir,
    socketDir: c.socketDir,
    port: c.port,
    walArchiveDir: c.walArchiveDir,
    uri(o = {}) {
      const user = encodeURIComponent(o.user ?? "postgres") +
        (o.password !== undefined ? `:${encodeURIComponent(o.password)}` : "");
      const db = encodeURIComponent(o.db ?? "postgres");
      if (o.tcp) return `postgresql://${user}@127.0.0.1:${c.port}/${db}`;
      return `postgresql://${user}@/${db}?host=${encodeURIComponent(c.socketDir)}&port=${c.port}`;
    },
    async sql(sql, o = {}) {
      const out = await asPostgres(
        [path.join(PG_BIN, "psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"],
        { env: pgEnv(o.db), stdin: sql, cwd: "/" },
      );
      return out.trim();
    },
    async pgbench(args, o = {}) {
      return await asPostgres([path.join(PG_BIN, "pgbench"), ...args], {
        env: pgEnv(o.db),
        cwd: "/",
      });
    },
    async start() {
      const opts = Object.entries(c.commandLine ?? {}).map(([k, v]) =>
        `-c ${k}=${v === "" ? "''" : shellQuote(v)}`
      );
      fs.writeFileSync(logFile, "");
      const ids = postgresIds()!;
      fs.chownSync(logFile, ids.uid, ids.gid);
      try {
        await asPostgres([
          path.join(PG_BIN, "pg_ctl"),
          "-D",
          c.dataDir,
          "-l",
          logFile,
          ...(c.wait === false ? ["-W"] : ["-w", "-t", String(c.timeoutSeconds ?? 60)]),
          ...(opts.length ? ["-o", opts.join(" ")] : []),
          "start",
        ], { cwd: "/" });
      } catch (e) {
        throw new Error(`${(e as Error).message}\nserver log:\n${cluster.log()}`);
      }
      running = true;
    },
    async stop(mode = "fast") {
      if (!running) return;
      await asPostgres(
        [path.join(PG_BIN, "pg_ctl"), "-D", c.dataDir, "stop", "-w", "-m", mode],
        { cwd: "/" },
      );
      running = false;
    },
    log() {
      try {
        return fs.readFileSync(logFile, "utf8");
      } catch {
        return "";
      }
    },
    async [Symbol.asyncDispose]() {
      // Stop even when the cluster was started by pg_ctl -W and not yet seen running.
      running = true;
      await cluster.stop("immediate").catch(() => {});
      await Deno.remove(c.root, { recursive: true }).catch(() => {});
    },
  };
  return cluster;
}

/** What a bendsave run printed, and its exit code. */
export interface BendsaveRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs this checkout's bendsave CLI as the `postgres` user (as DBAs run it
 * against their servers), with `env` set for that run; returns its exit code
 * and output. Call {@linkcode prepareBendsaveForPostgres} first.
 */
export async function bendsaveAsPostgres(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<BendsaveRun> {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)} `).join("");
  const line = `${vars}${bendsaveCommand()} ${args.map(shellQuote).join(" ")}`;
  const out = await new Deno.Command("runuser", {
    args: ["-u", "postgres", "--", "sh", "-c", line],
    stdout: "piped",
    stderr: "piped",
    cwd: "/",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Writes `text` to `file` as the `postgres` user, mode 0600 (a password file only it reads). */
export async function writeAsPostgres(file: string, text: string): Promise<void> {
  const child = new Deno.Command("runuser", {
    args: ["-u", "postgres", "--", "sh", "-c", `umask 077 && cat > ${shellQuote(file)}`],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const out = await child.output();
  if (out.code !== 0) {
    throw new Error(`writing ${file} as postgres failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}
