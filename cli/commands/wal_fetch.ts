/**
 * `bendsave wal-fetch <name> <dest> --from <repo>`: PostgreSQL's restore_command.
 *
 * @module
 */
import { fetchWal, WalNotArchived } from "../../store/wal_archive.ts";
import { openStore } from "../../store/open_store.ts";
import { parse, required } from "../args.ts";
import { ExitCode, StopRecovery, UsageError } from "../exit_codes.ts";
import type { Output } from "../output.ts";
import { lockWaitMs } from "./wal_push.ts";
import { Cancelled } from "../../store/errors.ts";

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

Options:
  --from <repo>         the repository (a path, s3://..., staged:...)
  --pg-data <dir>       the data directory holding global/pg_control
  --system-id <n>       the database system identifier
  --lock-wait <s>       wait up to this many seconds for a running vacuum (default 60)
  --json                print the result as one JSON object

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
    if (e instanceof WalNotArchived || e instanceof Cancelled) throw e;
    throw new StopRecovery((e as Error)?.message ?? String(e), { cause: e });
  }
}

async function walFetch(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parse("wal-fetch", args, {
    from: { type: "string" },
    "pg-data": { type: "string" },
    "system-id": { type: "string" },
    "lock-wait": { type: "string" },
  });
  if (values.help) {
    console.log(WAL_FETCH_HELP);
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
