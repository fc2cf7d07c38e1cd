/**
 * `bendsave wal-push <file> --to <repo>`: PostgreSQL's archive_command.
 *
 * Imports only what a push needs: PostgreSQL starts one process per WAL file.
 *
 * @module
 */
import { DEFAULT_WAL_LOCK_WAIT_MS, pushWal } from "../../store/wal_archive.ts";
import { openStore } from "../../store/open_store.ts";
import { onePositional, parse, required } from "../args.ts";
import { ExitCode, UsageError } from "../exit_codes.ts";
import type { Output } from "../output.ts";

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
  --json                print the result as one JSON object

Prints nothing on success (without --json). Exit codes: 0 archived, 1 failure
(other content under the name, lock held, storage error), 2 bad input (no
repository there, not a WAL file, a segment of the wrong size, another system),
130 cancelled (nothing archived).`;

/** Parses --lock-wait (seconds) into milliseconds. */
export function lockWaitMs(command: string, value: unknown): number {
  if (value === undefined) return DEFAULT_WAL_LOCK_WAIT_MS;
  const s = Number(value);
  if (typeof value !== "string" || value === "" || !Number.isFinite(s) || s < 0 || s > 86400) {
    throw new UsageError(
      `--lock-wait must be a number of seconds from 0 to 86400, not "${
        String(value)
      }": see bendsave ${command} --help`,
    );
  }
  return s * 1000;
}

/** Runs the command. */
export async function walPushCommand(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parse("wal-push", args, {
    to: { type: "string" },
    "pg-data": { type: "string" },
    "system-id": { type: "string" },
    "lock-wait": { type: "string" },
  });
  if (values.help) {
    console.log(WAL_PUSH_HELP);
    return ExitCode.ok;
  }
  const file = onePositional("wal-push", positionals, "WAL file (%p)");
  const to = required("wal-push", values, "to");
  const lockWait = lockWaitMs("wal-push", values["lock-wait"]);
  const store = await openStore(to, { onWarning: out.warn });
  try {
    const r = await pushWal(store, file, {
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
