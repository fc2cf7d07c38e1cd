/**
 * `bendsave restore --from REPO --to postgresql://TARGET --table DB.SCHEMA.TABLE
 * [--as-of TIME] [--rename-to SCHEMA.NAME] [--clean] [--confirm]`, or
 * `--table-list FILE [--restore-target-list FILE]`: single tables of a
 * PostgreSQL base backup into a running server (sources/postgres/table_restore.ts).
 *
 * @module
 */
import fs from "node:fs";
import {
  type PgTableRestoreOptions,
  type PgTableRestorePlan,
  planPgTableRestore,
  restorePgTables,
} from "../../sources/postgres/table_restore.ts";
import { parseTableName, splitName, type TableName } from "../../sources/postgres/relation_map.ts";
import { parseRecoveryTarget } from "../../formats/pg_target.ts";
import type { BlobStore } from "../../store/drivers/types.ts";
import { selfCommand } from "../self_command.ts";
import { passphraseArgs } from "../passphrase.ts";
import { ExitCode, UsageError } from "../exit_codes.ts";
import { formatBytes, formatDuration, type Output } from "../output.ts";

/** The help of the table restore, a section of `restore --help`. */
export const RESTORE_PG_TABLE_HELP = `
PostgreSQL tables into a running server (--to postgresql://USER@HOST/DB, a libpq URI; the tables
are copied from a private scratch server recovered to the target, which is then removed):
  --table <DB.SCHEMA.TABLE>
                       a table of the backup (repeatable; double-quote a part holding a dot)
  --table-list <file>  one DB.SCHEMA.TABLE per line (blank lines and # comments ignored)
  --rename-to <SCHEMA.NAME>
                       with one --table: restore it under this name (the schema is created
                       when missing); default: its own name
  --restore-target-list <file>
                       with --table-list: one DB.SCHEMA.TABLE target per listed table, same order
  --clean              drop an existing target first (DROP TABLE ... CASCADE; the dry run lists
                       what that drops); without it an existing target is refused
  --pg-bin <dir>       PostgreSQL's programs (default /usr/lib/postgresql/<major>/bin, else PATH)
  --scratch-dir <dir>  where the scratch data directory is made (default: the temporary directory)
  (--as-of, --target-lsn and --bendsave-command as above; run it as the cluster's owner)`;

/** The names of a list file: one per line, blank lines and `#` comments left out. */
function readList(file: string, flag: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(
      `${flag} "${file}" cannot be read (${
        (e as { code?: string }).code ?? e
      }): give a file of DB.SCHEMA.TABLE lines`,
    );
  }
  return text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

function name(text: string, flag: string): TableName {
  try {
    return parseTableName(text);
  } catch (e) {
    throw new UsageError(`${(e as Error).message} (${flag})`);
  }
}

function describe(p: PgTableRestorePlan): string {
  const s = p.scratch;
  const lines = [
    `PostgreSQL tables of base backup ${s.manifest} (system ${s.systemId}) -> ${p.server}`,
  ];
  lines.push(`  target     ${s.target}`);
  for (const t of p.tables) {
    lines.push(
      `  table      ${t.source} (${formatBytes(t.bytes)}) -> ${t.target}${
        t.createsSchema ? " (schema created)" : ""
      }${t.exists ? " (exists: dropped and replaced, --clean)" : ""}`,
    );
    lines.push(`             relations: ${t.relations.join(", ")}`);
    if (t.exists) {
      lines.push(
        `             --clean drops ${t.target}${
          t.drops.length ? ` and, by CASCADE: ${t.drops.join("; ")}` : " (nothing depends on it)"
        }`,
      );
    }
  }
  lines.push(
    `  reads      ${s.dataDir.files} files (${formatBytes(s.dataDir.bytes)}) of the data directory${
      s.tablespaces.length
        ? ` and ${s.tablespaces.reduce((a, t) => a + t.plan.files, 0)} of its tablespaces`
        : ""
    }, from ${s.dataDir.packs.length} pack(s); ${
      s.sparse?.files ?? 0
    } other relation files sparse (${formatBytes(s.sparse?.bytes ?? 0)} apparent)`,
    s.wal
      ? `  WAL        ${s.wal.first} .. ${s.wal.last} (${s.wal.segments} segment(s)), replayed by the scratch server`
      : `  WAL        none`,
    `  scratch    a private server (no TCP, a socket in the scratch directory) in ${p.scratchDir}, removed after`,
    `  programs   ${p.pgBin} (pg_ctl, postgres, pg_dump, psql)`,
    `  note       foreign keys of the restored tables are not restored (they are listed after)`,
  );
  return lines.join("\n");
}

/** Runs a table restore from parsed `restore` flags. */
export async function restorePgTableCommand(
  store: BlobStore,
  to: string,
  values: Record<string, unknown>,
  choice: { manifest: string | null; source?: string; repository: string },
  out: Output,
): Promise<number> {
  const str = (k: string) => (typeof values[k] === "string" ? values[k] as string : undefined);
  for (const f of ["overwrite", "include", "part", "no-owner", "map-uid", "map-gid"]) {
    if (values[f] !== undefined) {
      throw new UsageError(
        `--${f} does not apply to a table restore into a PostgreSQL server (--to postgresql://...)`,
      );
    }
  }
  const given = (values.table as string[] | undefined) ?? [];
  const listFile = str("table-list");
  const targetList = str("restore-target-list");
  const rename = str("rename-to");
  if (given.length && listFile) throw new UsageError("give --table or --table-list, not both");
  const tables = listFile
    ? readList(listFile, "--table-list").map((t) => name(t, "--table-list"))
    : given.map((t) => name(t, "--table"));
  if (tables.length === 0) {
    throw new UsageError(
      "a restore into a PostgreSQL server restores tables: give --table DB.SCHEMA.TABLE or --table-list FILE (a whole cluster is restored into a new data directory: --to DIR)",
    );
  }
  let targets: TableName[] | undefined;
  if (rename !== undefined) {
    if (tables.length !== 1 || targetList) {
      throw new UsageError(
        "--rename-to renames one table: for several, give --table-list with --restore-target-list",
      );
    }
    let parts: string[];
    try {
      parts = splitName(rename, 2);
    } catch (e) {
      throw new UsageError(`${(e as Error).message} (--rename-to)`);
    }
    targets = [{ db: tables[0]!.db, schema: parts[0]!, table: parts[1]! }];
  } else if (targetList) {
    if (!listFile) throw new UsageError("--restore-target-list goes with --table-list");
    targets = readList(targetList, "--restore-target-list").map((t) =>
      name(t, "--restore-target-list")
    );
    if (targets.length !== tables.length) {
      throw new UsageError(
        `--table-list names ${tables.length} table(s) and --restore-target-list ${targets.length}: give one target per table, in the same order`,
      );
    }
  }
  let target;
  try {
    const asOf = str("as-of");
    const lsn = str("target-lsn");
    target = asOf === undefined && lsn === undefined ? undefined : parseRecoveryTarget({
      ...(asOf !== undefined ? { asOf } : {}),
      ...(lsn !== undefined ? { targetLsn: lsn } : {}),
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const walPassphrase = passphraseArgs(values);
  const options: PgTableRestoreOptions = {
    tables,
    ...(targets ? { targets } : {}),
    clean: values.clean === true,
    ...(target ? { target } : {}),
    manifest: choice.manifest,
    ...(choice.source !== undefined ? { source: choice.source } : {}),
    bendsaveCommand: str("bendsave-command") ?? selfCommand(),
    // An encrypted repository: restore_command passes the passphrase option given here.
    ...(walPassphrase ? { walPassphrase } : {}),
    repositoryLocation: choice.repository,
    ...(str("pg-bin") ? { pgBin: str("pg-bin")! } : {}),
    ...(str("scratch-dir") ? { scratchDir: str("scratch-dir")! } : {}),
    onEvent: out.event.bind(out),
    signal: out.signal,
  };
  if (!values.confirm) {
    const plan = await planPgTableRestore(store, to, options);
    out.result({ type: "plan", dry_run: true, ...plan });
    out.print(
      `dry run: nothing was written\n${describe(plan)}\nrun again with --confirm to restore`,
    );
    return ExitCode.ok;
  }
  const r = await restorePgTables(store, to, options);
  out.done();
  out.result({ type: "summary", dry_run: false, ...r });
  const lines = [`restored ${describe(r)}`];
  for (const x of r.rows) lines.push(`  rows       ${x.target}: ${x.rows} (checked)`);
  for (const f of r.foreignKeysLeftOut) lines.push(`  not restored: foreign key ${f}`);
  lines.push(`  duration   ${formatDuration(r.durationMs)}`);
  out.print(lines.join("\n"));
  return ExitCode.ok;
}
