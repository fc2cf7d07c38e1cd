/**
 * `bendsave list <repo>`
 *
 * @module
 */
import { listBackups } from "../../store/list.ts";
import { openStore } from "../../store/open_store.ts";
import { Repository } from "../../store/repository.ts";
import { readableManifests } from "../../store/source_groups.ts";
import {
  describePgWindow,
  type PgSourceWindow,
  postgresWindows,
} from "../../sources/postgres/pg_windows.ts";
import { onePositional, parse } from "../args.ts";
import { ExitCode } from "../exit_codes.ts";
import { formatBytes, type Output, table } from "../output.ts";
import { tableSnapshots } from "../../sources/databend/table_window.ts";

/** Help text. */
export const LIST_HELP = `Usage: bendsave list <repo> [--json]

Lists the backups in a repository, oldest first.

Options:
  --json       a JSON array of objects: name, id, time (RFC 3339), parent (name or null),
               parent_present, kind, files, bytes, added_bytes, incomplete, source (its
               description), source_key (its identity: retention and restore group by it), host;
               PostgreSQL backups also recoverable_window (from, to, gaps) of their source;
               Databend cluster backups also tables (table, id, current_snapshot,
               snapshots with id, time, row_count, location, and the window from, to)
  -h, --help   this help`;

/** Runs the command. */
export async function listCommand(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parse("list", args, {});
  if (values.help) {
    console.log(LIST_HELP);
    return ExitCode.ok;
  }
  const repo = onePositional("list", positionals, "repository");
  const store = await openStore(repo, { onWarning: out.warn });
  const { backups, damaged } = await listBackups(store);
  const r = await Repository.open(store);
  const windows = await postgresWindows(r, await readableManifests(r));
  const windowOf = new Map(windows.map((w) => [w.source, w]));
  if (out.json) {
    console.log(JSON.stringify(
      backups.map((b) => ({
        name: b.name,
        id: b.id,
        time: b.time,
        parent: b.parent,
        parent_present: b.parentPresent,
        kind: b.kind,
        files: b.files,
        bytes: b.bytes,
        added_bytes: b.added_bytes,
        incomplete: b.incomplete,
        source: b.source,
        source_key: b.sourceKey,
        host: b.host,
        ...(windowOf.has(b.sourceKey)
          ? { recoverable_window: windowJson(windowOf.get(b.sourceKey)!) }
          : {}),
        ...(b.catalog ? { tables: tableSnapshots(b.catalog) } : {}),
      })),
      null,
      2,
    ));
  } else {
    out.print(table(
      ["name", "time", "kind", "parent", "files", "size", "added", "source"],
      backups.map((b) => [
        b.name.replace(/\.manifest$/, "") + (b.incomplete ? " (incomplete)" : ""),
        b.time.replace(/\.\d+Z$/, "Z"),
        b.kind,
        b.parent
          ? b.parent.replace(/\.manifest$/, "") + (b.parentPresent ? "" : " (vacuumed)")
          : "-",
        String(b.files),
        formatBytes(b.bytes),
        formatBytes(b.added_bytes),
        b.source,
      ]),
    ));
    out.print(`${backups.length} backup(s)`);
    for (const w of windows) out.print(describePgWindow(w));
  }
  for (const d of damaged) console.error(`error: ${d.error}`);
  return damaged.length ? ExitCode.failure : ExitCode.ok;
}

/** A PostgreSQL source's window in `list --json`. */
export function windowJson(w: PgSourceWindow): Record<string, unknown> {
  return { from: w.from, to: w.to, gaps: w.gaps, wal_files: w.walFiles };
}
