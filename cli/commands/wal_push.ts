/**
 * `bendsave wal-push <file> --to <repo>`: PostgreSQL's archive_command.
 *
 * Imports only what a push needs: PostgreSQL starts one process per WAL file.
 * The repository code is loaded when used: the `--async` foreground never
 * loads it (nor protobuf, nor the codecs), only the spool's small modules.
 *
 * @module
 */
import * as path from "node:path";
import { DEFAULT_WAL_LOCK_WAIT_MS } from "../../store/lock.ts";
import { onePositional, parse, required } from "../args.ts";
import { classify, ExitCode, UsageError } from "../exit_codes.ts";
import type { Output } from "../output.ts";
import { startBackground } from "../background.ts";
import { passphraseArgs } from "../passphrase.ts";

/** Help text. */
export const WAL_PUSH_HELP = `Usage: bendsave wal-push <WAL file> --to <repo> [options]

Archives one PostgreSQL WAL file (a segment, a .partial segment, a .history or
a .backup file) into an existing repository. For postgresql.conf:

  archive_mode = on
  archive_command = 'bendsave wal-push %p --to /backups/pg'

PostgreSQL runs it in the data directory, whose global/pg_control names the
database system: each system's WAL is kept apart (wal/<system id>/ in the
repository). A segment must have its full size and the system identifier of
pg_control in its first page header.

Exit 0 only once the file is durable in the repository. Pushing a file that is
already archived with the same content exits 0 and writes nothing; the same name
with other content is refused (exit 1) and nothing is overwritten. On any
failure PostgreSQL keeps the file and runs the command again later.

Options:
  --to <repo>           the repository (a path, s3://...); it must exist
  --pg-data <dir>       the data directory holding global/pg_control
                        (default: the working directory)
  --system-id <n>       the database system identifier (instead of pg_control)
  --lock-wait <s>       wait up to this many seconds for a running vacuum
                        (default ${DEFAULT_WAL_LOCK_WAIT_MS / 1000})
  --async               push through a background pusher (below); off by default
  --spool <dir>         --async: the spool directory (default: bendsave-push/
                        beside the WAL file, i.e. in pg_wal/, which base backups
                        leave out)
  --queue <n>           --async: WAL files marked ready the pusher takes ahead
                        per pass (default 16)
  --timeout <s>         --async: how long to wait for the file's status
                        (default 60)
  --json                print the result as one JSON object

Asynchronous mode (--async): this process only checks the spool. When a status
file there says the file is durable in the repository (same size, SHA-256 and
file identity) it exits 0 at once; otherwise it asks a background pusher for it,
starting one when none runs (this bendsave, detached, one per spool directory),
and waits for its .ok (exit 0) or .error (its exit code and reason). The pusher
pushes the requested file and, ahead of PostgreSQL, the next files marked ready
in pg_wal/archive_status, four at a time over one open repository, and exits
after 5 s without work. The contract is the same as without --async: exit 0 only
once the file is durable; a killed pusher loses nothing (the next command starts
another, PostgreSQL retries). For PostgreSQL:

  archive_command = 'bendsave wal-push %p --to /backups/pg --async'

An encrypted repository: give --password-file FILE (readable by the server's
user) or --password-command CMD; the background pusher gets the same option.
Every process runs the key derivation (Argon2id, about 0.4 s here) once: use
--async, whose pusher unlocks once per run.

Prints nothing on success (without --json). Exit codes: 0 archived, 1 failure
(other content under the name, lock held, storage error), 2 bad input (no
repository there, not a WAL file, a segment of the wrong size, another system),
130 cancelled (nothing archived).`;

/** Parses --lock-wait (seconds) into milliseconds. */
export function lockWaitMs(command: string, value: unknown): number {
  return secondsOption(command, "lock-wait", value, DEFAULT_WAL_LOCK_WAIT_MS);
}

/** Parses an option of seconds (--lock-wait, --timeout) into milliseconds, or its default. */
export function secondsOption(
  command: string,
  name: string,
  value: unknown,
  fallbackMs: number,
): number {
  if (value === undefined) return fallbackMs;
  const s = Number(value);
  if (typeof value !== "string" || value === "" || !Number.isFinite(s) || s < 0 || s > 86400) {
    throw new UsageError(
      `--${name} must be a number of seconds from 0 to 86400, not "${
        String(value)
      }": see bendsave ${command} --help`,
    );
  }
  return s * 1000;
}

/** Runs the command. */
/** A positive whole number option (--queue, --prefetch), or its default. */
export function countOption(
  command: string,
  name: string,
  value: unknown,
  fallback: number,
  min = 1,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== "string" || !/^\d+$/.test(value) || n < min || n > 1024) {
    throw new UsageError(
      `--${name} must be a whole number from ${min} to 1024, not "${
        String(value)
      }": see bendsave ${command} --help`,
    );
  }
  return n;
}

/** Runs the command. */
export async function walPushCommand(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parse("wal-push", args, {
    to: { type: "string" },
    "pg-data": { type: "string" },
    "system-id": { type: "string" },
    "lock-wait": { type: "string" },
    async: { type: "boolean" },
    spool: { type: "string" },
    queue: { type: "string" },
    timeout: { type: "string" },
    // Internal: the background pusher that --async starts.
    background: { type: "boolean" },
    idle: { type: "string" },
    "wal-dir": { type: "string" },
  });
  if (values.help) {
    console.log(WAL_PUSH_HELP);
    return ExitCode.ok;
  }
  const to = required("wal-push", values, "to");
  const lockWait = lockWaitMs("wal-push", values["lock-wait"]);
  const queue = countOption("wal-push", "queue", values.queue, 16);
  const idOptions = {
    ...(typeof values["pg-data"] === "string" ? { pgData: values["pg-data"] } : {}),
    ...(typeof values["system-id"] === "string" ? { systemId: values["system-id"] } : {}),
  };
  if (values.background) {
    const spool = required("wal-push", values, "spool");
    const walDir = required("wal-push", values, "wal-dir");
    const { runPushDaemon } = await import("../../store/wal_push_daemon.ts");
    const { openStore } = await import("../../store/open_store.ts");
    const r = await runPushDaemon({
      spool,
      repository: to,
      walDir,
      open: () => openStore(to),
      push: { lockWaitMs: lockWait, ...idOptions },
      queue,
      exitCodeOf: (e) => classify(e).code,
      ...(typeof values.idle === "string"
        ? { idleMs: secondsOption("wal-push", "idle", values.idle, 5_000) }
        : {}),
      signal: out.signal,
    });
    out.result({ type: "summary", ...r });
    return ExitCode.ok;
  }
  const file = onePositional("wal-push", positionals, "WAL file (%p)");
  if (values.async) {
    const timeout = secondsOption("wal-push", "timeout", values.timeout, 60_000);
    const { pushWalAsync, defaultPushSpool } = await import("../../store/wal_push_async.ts");
    const spool = path.resolve(
      typeof values.spool === "string" ? values.spool : defaultPushSpool(file),
    );
    const walDir = path.dirname(path.resolve(file));
    // An encrypted repository: the pusher finds the passphrase where this command did.
    const pass = passphraseArgs(values);
    const passFlags = pass ? [pass.flag, pass.value] : [];
    const r = await pushWalAsync(file, {
      spool,
      repository: to,
      timeoutMs: timeout,
      signal: out.signal,
      startPusher: () =>
        startBackground([
          "wal-push",
          "--background",
          "--to",
          to,
          "--spool",
          spool,
          "--wal-dir",
          walDir,
          "--queue",
          String(queue),
          "--lock-wait",
          String(lockWait / 1000),
          ...(idOptions.pgData ? ["--pg-data", path.resolve(idOptions.pgData)] : []),
          ...(idOptions.systemId ? ["--system-id", idOptions.systemId] : []),
          ...passFlags,
        ]),
    });
    out.result({ type: "summary", ...r });
    return ExitCode.ok;
  }
  const { pushWal } = await import("../../store/wal_archive.ts");
  const { openStore } = await import("../../store/open_store.ts");
  const store = await openStore(to, { onWarning: out.warn });
  try {
    const r = await pushWal(store, file, {
      lockWaitMs: lockWait,
      onEvent: out.event.bind(out),
      signal: out.signal,
      ...idOptions,
    });
    out.result({ type: "summary", ...r });
    return ExitCode.ok;
  } finally {
    await store.close?.();
  }
}
