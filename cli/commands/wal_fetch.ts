/**
 * `bendsave wal-fetch <name> <dest> --from <repo>`: PostgreSQL's restore_command.
 *
 * The repository code is loaded when used: a segment served from the
 * prefetch spool loads only the spool's small modules.
 *
 * @module
 */
import * as path from "node:path";
import { parse, required } from "../args.ts";
import { classify, ExitCode, StopRecovery, UsageError } from "../exit_codes.ts";
import type { Output } from "../output.ts";
import { countOption, lockWaitMs, secondsOption } from "./wal_push.ts";
import { Cancelled } from "../../store/errors.ts";
import { startBackground } from "../background.ts";
import { passphraseArgs } from "../passphrase.ts";

/** Help text. */
export const WAL_FETCH_HELP =
  `Usage: bendsave wal-fetch <WAL file name> <destination> --from <repo> [options]

Restores one archived PostgreSQL WAL file, for recovery:

  restore_command = 'bendsave wal-fetch %f %p --from /backups/pg'

The database system comes from global/pg_control of the working directory
(PostgreSQL runs the command in the data directory), --pg-data or --system-id;
without any of them, from the archive when it holds one system only.

Every block and the whole file's SHA-256 are checked before the file takes its
name: it is written under a temporary name beside the destination, flushed and
renamed, so a failure never leaves a partial file at the destination.

An encrypted repository: give --password-file FILE (readable by the server's
user) or --password-command CMD (restore --as-of writes it into restore_command);
the background prefetcher gets the same option.

Options:
  --from <repo>         the repository (a path, s3://..., staged:...)
  --pg-data <dir>       the data directory holding global/pg_control
  --system-id <n>       the database system identifier
  --lock-wait <s>       wait up to this many seconds for a running vacuum (default 60)
  --prefetch <n>        also fetch the next n segments of the timeline ahead, in
                        a background process, into the spool (default 0: off)
  --spool <dir>         --prefetch: the spool directory (default:
                        bendsave-prefetch/ beside the destination, i.e. in
                        pg_wal/, which base backups leave out)
  --json                print the result as one JSON object

Prefetching (--prefetch n, which restore --as-of writes into restore_command): a
segment already in the spool, whose size and SHA-256 are still those of its
archive record, is moved to the destination (a rename); otherwise this process
asks the background prefetcher (this bendsave, detached, one per spool, started
when none runs) for it and waits. The prefetcher keeps the n segments after the
one asked for fetched and checked, and exits after 5 s without a request; once
the server is out of recovery it empties the spool. History files, and any
segment the prefetcher cannot bring, are fetched by this process as without
--prefetch, so the exit codes below are the same.

Exit codes: 0 restored; 1 not in the archive (one line on stderr; PostgreSQL asks
for files that may not exist); 126 any other failure (bad input, a missing or
unreachable repository, damage, a lock held too long): PostgreSQL takes exit
codes up to 125 as "not archived" and could end recovery early, short of its
target, so these stop recovery with an error instead; 130 cancelled (SIGINT,
SIGTERM: %p untouched; above 125 too, so recovery stops).`;

/**
 * Runs the command. Every failure but "not in the archive" exits 126, usage
 * errors and a missing repository included: any code up to 125 would let
 * PostgreSQL end recovery early, short of its target.
 */
export async function walFetchCommand(args: string[], out: Output): Promise<number> {
  try {
    return await walFetch(args, out);
  } catch (e) {
    // Cancelled exits 130, which PostgreSQL takes as a signal too: recovery stops.
    if (e instanceof Cancelled) throw e;
    const { WalNotArchived } = await import("../../store/wal_archive.ts");
    if (e instanceof WalNotArchived) throw e;
    throw new StopRecovery((e as Error)?.message ?? String(e), { cause: e });
  }
}

async function walFetch(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parse("wal-fetch", args, {
    from: { type: "string" },
    "pg-data": { type: "string" },
    "system-id": { type: "string" },
    "lock-wait": { type: "string" },
    prefetch: { type: "string" },
    spool: { type: "string" },
    // Internal: the background prefetcher that --prefetch starts.
    background: { type: "boolean" },
    idle: { type: "string" },
  });
  if (values.help) {
    console.log(WAL_FETCH_HELP);
    return ExitCode.ok;
  }
  const prefetch = countOption("wal-fetch", "prefetch", values.prefetch, 0, 0);
  const idOptions = {
    ...(typeof values["pg-data"] === "string" ? { pgData: values["pg-data"] } : {}),
    ...(typeof values["system-id"] === "string" ? { systemId: values["system-id"] } : {}),
  };
  if (values.background) {
    const from = required("wal-fetch", values, "from");
    const spool = required("wal-fetch", values, "spool");
    const lockWait = lockWaitMs("wal-fetch", values["lock-wait"]);
    const { runPrefetchDaemon } = await import("../../store/wal_prefetch_daemon.ts");
    const { openStore } = await import("../../store/open_store.ts");
    const r = await runPrefetchDaemon({
      spool,
      repository: from,
      open: () => openStore(from),
      fetch: { lockWaitMs: lockWait, ...idOptions },
      prefetch: Math.max(1, prefetch),
      ...(idOptions.pgData ? { pgData: idOptions.pgData } : {}),
      exitCodeOf: (e) => classify(e).code,
      ...(typeof values.idle === "string"
        ? { idleMs: secondsOption("wal-fetch", "idle", values.idle, 5_000) }
        : {}),
      signal: out.signal,
    });
    out.result({ type: "summary", ...r });
    return ExitCode.ok;
  }
  if (positionals.length !== 2) {
    throw new UsageError(
      "bendsave wal-fetch takes a WAL file name (%f) and a destination (%p): see bendsave wal-fetch --help",
    );
  }
  const [name, dest] = positionals as [string, string];
  const from = required("wal-fetch", values, "from");
  const lockWait = lockWaitMs("wal-fetch", values["lock-wait"]);
  if (prefetch > 0) {
    const { fetchWalPrefetched, defaultFetchSpool, controlSystemIdOrNull } = await import(
      "../../store/wal_prefetch.ts"
    );
    const spool = path.resolve(
      typeof values.spool === "string" ? values.spool : defaultFetchSpool(dest),
    );
    // An encrypted repository: the prefetcher finds the passphrase where this command did.
    const pass = passphraseArgs(values);
    const passFlags = pass ? [pass.flag, pass.value] : [];
    const served = await fetchWalPrefetched(name, dest, {
      spool,
      repository: from,
      systemId: idOptions.systemId ?? controlSystemIdOrNull(idOptions.pgData),
      ...(idOptions.pgData !== undefined ? { pgData: idOptions.pgData } : {}),
      startPrefetcher: () =>
        startBackground([
          "wal-fetch",
          "--background",
          "--from",
          from,
          "--spool",
          spool,
          "--prefetch",
          String(prefetch),
          "--lock-wait",
          String(lockWait / 1000),
          ...(idOptions.pgData ? ["--pg-data", path.resolve(idOptions.pgData)] : []),
          ...(idOptions.systemId ? ["--system-id", idOptions.systemId] : []),
          ...passFlags,
        ]),
    });
    if (served) {
      out.result({ type: "summary", name, path: dest, spooled: true });
      return ExitCode.ok;
    }
  }
  return await fetchInto(from, name, dest, values, lockWait, out);
}

async function fetchInto(
  from: string,
  name: string,
  dest: string,
  values: Record<string, unknown>,
  lockWait: number,
  out: Output,
): Promise<number> {
  const { fetchWal } = await import("../../store/wal_archive.ts");
  const { openStore } = await import("../../store/open_store.ts");
  const store = await openStore(from, { onWarning: out.warn });
  try {
    const r = await fetchWal(store, name, dest, {
      lockWaitMs: lockWait,
      onEvent: out.event.bind(out),
      signal: out.signal,
      ...(typeof values["pg-data"] === "string" ? { pgData: values["pg-data"] } : {}),
      ...(typeof values["system-id"] === "string" ? { systemId: values["system-id"] } : {}),
    });
    out.result({ type: "summary", ...r });
    return ExitCode.ok;
  } finally {
    await store.close?.();
  }
}
