/**
 * `bendsave backup --from <dir | query-node.toml> --to <repo>`
 *
 * @module
 */
import { backup } from "../../store/backup/backup.ts";
import { openStore } from "../../store/open_store.ts";
import { FsStore } from "../../store/drivers/fs.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { clusterSource } from "../../sources/databend/cluster_source.ts";
import { isPgUri } from "../../sources/postgres/connection.ts";
import { pgSource } from "../../sources/postgres/pg_source.ts";
import { splitName, withRelationMap } from "../../sources/postgres/relation_map.ts";
import { walArchived } from "../../store/wal_archive.ts";
import type { BlobStore } from "../../store/drivers/types.ts";
import type { Source } from "../../sources/types.ts";
import { isConfigFile } from "../args.ts";
import { type ChunkerParams, DEFAULT_FASTCDC, DEFAULT_FIXED } from "../../formats/chunker.ts";
import { DEFAULT_COMPRESSION, parseCompressionName } from "../../formats/codec.ts";
import { excludeMatcher } from "../../formats/glob.ts";
import { toHex } from "../../formats/hash.ts";
import { parse, required } from "../args.ts";
import { passphraseSource } from "../../store/keys.ts";
import { PassphraseError } from "../../store/errors.ts";
import { ExitCode, UsageError } from "../exit_codes.ts";
import { formatBytes, formatDuration, formatRate, type Output } from "../output.ts";

/** Help text. */
export const BACKUP_HELP =
  `Usage: bendsave backup --from <dir | query-node.toml | postgresql://...> --to <repo> [options]

Backs up a directory, or a whole Databend cluster given by its query-node
config (the meta service's export first, then every object of its fs or S3
storage), or a PostgreSQL server (an online base backup of its data directory
and tablespaces; its WAL must be archived into the same repository with
archive_command = 'bendsave wal-push %p --to <repo>'). Creates the repository
on first use; later backups of the same source are incremental against its
latest backup.

Options:
  --from <source>       directory to back up, a databend-query config (.toml), or a
                        PostgreSQL URI: postgresql://USER@HOST:PORT/DB, or
                        postgresql://USER@/DB?host=SOCKETDIR&port=PORT (also the PG*
                        variables and ~/.pgpass)
  --to <repo>           repository: a path, fs:///path, or s3://bucket/prefix?options
  --meta-export-file <file>
                        cluster: read the meta export from this file (the output of
                        databend-metactl export) instead of the meta service
  --meta-export-command <cmd>
                        cluster: run this shell command and read the meta export from
                        its output (e.g. "databend-metactl export --grpc-api-address ...")
                        Without either, the export is taken from the meta service at the
                        config's [meta] endpoints over its gRPC export API.
  --pg-data <dir>       PostgreSQL: the data directory as this machine sees it (default:
                        the server's data_directory); it must be the server's own
  --schema <DB.SCHEMA>  PostgreSQL: back up only this schema's tables (repeatable), plus what
                        a restore needs (global/, pg_xact/, ..., the database's catalogs); the
                        other relations' files are left out (restored sparse). restore --table
                        restores from it; a table it does not hold is refused by name
  --table <DB.SCHEMA.TABLE>
                        PostgreSQL: the same for one table (repeatable; with --schema too)
  --database <DB>       cluster: a partial backup: the whole meta export plus only this
                        database's table objects (repeatable; with --table too)
  --table <DB.TABLE>    cluster: the same for one table (repeatable). show marks such a
                        backup partial; restore --table restores from it; a whole-cluster
                        restore refuses it
  --meta-chunk-size <n> cluster: lines per gRPC message of the meta export (server default 32)
  --meta-timeout <s>    cluster: seconds to wait for the meta service to connect, answer and
                        between two messages (default 20; a large meta service can stay
                        silent longer while it compacts)
  --exclude <glob>      directory: leave out matching paths, relative to the directory
                        (repeatable; * within a name, ** across dirs, ? one character; a
                        matching directory is left out whole). E.g. --exclude '**/*.tmp'
                        --exclude cache. A repository inside the directory is always
                        left out (with a warning).
  --chunker <kind>      fastcdc (default for directories and clusters) or fixed (8 MiB
                        blocks); PostgreSQL's default is fixed 1 MiB blocks
  --compression <c>     for a new repository: zstd (default), deflate or none
  --pack-size <MiB>     for a new repository: target pack size (default 32, 1 to 1024)
  --encrypt             create an encrypted repository (only where there is none yet): the
                        passphrase comes from BENDSAVE_PASSWORD, --password-file FILE or
                        --password-command CMD; later commands need the same passphrase
  --workers <n>         reader threads (default: one per core)
  --lock-wait <min>     wait up to this many minutes for a running vacuum (default 10)
  --json                NDJSON progress events and a final summary object
  -h, --help            this help

Exit codes: 0 ok, 1 failure, 2 usage or bad input, 3 some files could not be read,
130 cancelled (Ctrl-C, SIGTERM: no manifest written, the lock released).`;

/** `DB.SCHEMA` (`parts` 2) or `DB.SCHEMA.TABLE` (3), checked; a usage error names the flag. */
function pgName(text: string, parts: 2 | 3, flag: string): string {
  try {
    splitName(text, parts);
  } catch (e) {
    throw new UsageError(`${(e as Error).message} (${flag})`);
  }
  return text.trim();
}

/** `--database DB` and `--table DB.TABLE` of a cluster backup, checked. */
function clusterSelection(values: Record<string, unknown>): string[] {
  const dbs = (values.database as string[] | undefined) ?? [];
  const tables = (values.table as string[] | undefined) ?? [];
  for (const d of dbs) {
    if (!/^[^.\s`]+$/.test(d)) throw new UsageError(`--database "${d}" is not a database name`);
  }
  for (const t of tables) {
    if (!/^[^.\s`]+\.[^.\s`]+$/.test(t)) {
      throw new UsageError(`--table "${t}" is not DB.TABLE: give it as database.table`);
    }
  }
  return [...dbs, ...tables];
}

/** `--meta-chunk-size N` and `--meta-timeout SECONDS` for the gRPC export. */
function metaGrpcFlags(values: Record<string, unknown>): {
  metaChunkSize?: number;
  metaTimeoutMs?: number;
} {
  const out: { metaChunkSize?: number; metaTimeoutMs?: number } = {};
  const chunk = values["meta-chunk-size"];
  if (chunk !== undefined) {
    const n = Number(chunk);
    if (!Number.isInteger(n) || n < 1 || n > 100_000) {
      throw new UsageError(
        `--meta-chunk-size must be a whole number of lines from 1 to 100000, not "${chunk}"`,
      );
    }
    out.metaChunkSize = n;
  }
  const timeout = values["meta-timeout"];
  if (timeout !== undefined) {
    const s = Number(timeout);
    if (!(s > 0 && s <= 24 * 3600)) {
      throw new UsageError(
        `--meta-timeout must be a number of seconds from 1 to 86400, not "${timeout}"`,
      );
    }
    out.metaTimeoutMs = Math.round(s * 1000);
  }
  return out;
}

/** Runs the command. */
export async function backupCommand(args: string[], out: Output): Promise<number> {
  const { values } = parse("backup", args, {
    from: { type: "string" },
    to: { type: "string" },
    chunker: { type: "string" },
    compression: { type: "string" },
    workers: { type: "string" },
    "pack-size": { type: "string" },
    "lock-wait": { type: "string" },
    "meta-export-file": { type: "string" },
    "meta-export-command": { type: "string" },
    exclude: { type: "string", multiple: true },
    "pg-data": { type: "string" },
    schema: { type: "string", multiple: true },
    table: { type: "string", multiple: true },
    database: { type: "string", multiple: true },
    "meta-chunk-size": { type: "string" },
    "meta-timeout": { type: "string" },
    encrypt: { type: "boolean" },
  });
  if (values.help) {
    console.log(BACKUP_HELP);
    return ExitCode.ok;
  }
  const from = required("backup", values, "from");
  const to = required("backup", values, "to");
  const passphrase = values.encrypt ? await passphraseSource()() : null;
  if (values.encrypt && passphrase === null) {
    throw new PassphraseError(
      "backup --encrypt needs a passphrase: set BENDSAVE_PASSWORD, or give --password-file FILE or --password-command CMD",
    );
  }
  // Absent: each source's own default (FastCDC for directories and clusters, PG_CHUNKER).
  let chunker: ChunkerParams | undefined;
  if (values.chunker === "fastcdc") chunker = DEFAULT_FASTCDC;
  else if (values.chunker === "fixed") chunker = DEFAULT_FIXED;
  else if (values.chunker !== undefined) {
    throw new UsageError(`unknown chunker "${values.chunker}": use fastcdc or fixed`);
  }
  let compression = DEFAULT_COMPRESSION;
  if (values.compression !== undefined) {
    try {
      compression = {
        ...DEFAULT_COMPRESSION,
        codec: parseCompressionName(String(values.compression)),
      };
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const workers = values.workers === undefined ? undefined : Number(values.workers);
  if (workers !== undefined && (!Number.isInteger(workers) || workers < 0 || workers > 64)) {
    throw new UsageError(`--workers must be a whole number from 0 to 64, not "${values.workers}"`);
  }
  const packMiB = values["pack-size"] === undefined ? undefined : Number(values["pack-size"]);
  if (packMiB !== undefined && (!Number.isInteger(packMiB) || packMiB < 1 || packMiB > 1024)) {
    throw new UsageError(
      `--pack-size must be a whole number of MiB from 1 to 1024, not "${values["pack-size"]}"`,
    );
  }
  const lockWait = values["lock-wait"] === undefined ? 10 : Number(values["lock-wait"]);
  if (!(lockWait >= 0 && lockWait <= 24 * 60)) {
    throw new UsageError(
      `--lock-wait must be a number of minutes from 0 to 1440, not "${values["lock-wait"]}"`,
    );
  }
  const exclude = (values.exclude as string[] | undefined) ?? [];
  try {
    excludeMatcher(exclude);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  let source: Source;
  // The PostgreSQL source's archive check looks in the repository, opened below.
  let repository: BlobStore | null = null;
  if (values["pg-data"] !== undefined && !isPgUri(from)) {
    throw new UsageError(
      "--pg-data is for a PostgreSQL server: give its postgresql:// URI to --from",
    );
  }
  const clusterSelect = isPgUri(from) ? [] : clusterSelection(values);
  const only = isPgUri(from)
    ? [
      ...((values.schema as string[] | undefined) ?? []).map((s) => pgName(s, 2, "--schema")),
      ...((values.table as string[] | undefined) ?? []).map((t) => pgName(t, 3, "--table")),
    ]
    : [];
  if (values.database !== undefined && isPgUri(from)) {
    throw new UsageError(
      "--database is for a Databend cluster: use --schema DB.SCHEMA for PostgreSQL",
    );
  }
  if (values.schema !== undefined && !isPgUri(from)) {
    throw new UsageError(
      "--schema is for a PostgreSQL server: give its postgresql:// URI to --from (a Databend cluster takes --database DB)",
    );
  }
  if (isPgUri(from)) {
    if (values["meta-export-file"] || values["meta-export-command"]) {
      throw new UsageError(
        "--meta-export-file and --meta-export-command are for a Databend cluster, not PostgreSQL",
      );
    }
    source = withRelationMap(
      await pgSource(from, {
        ...(chunker ? { chunker } : {}),
        ...(values["pg-data"] !== undefined ? { pgData: String(values["pg-data"]) } : {}),
        archived: (systemId, name) => walArchived(repository!, systemId, name),
      }),
      from,
      only.length ? { only } : {},
    );
  } else if (isConfigFile(from)) {
    if (exclude.length > 0) {
      throw new UsageError(
        "--exclude is for a directory: a cluster is backed up whole (give a directory to --from)",
      );
    }
    source = await clusterSource(from, {
      ...(chunker ? { chunker } : {}),
      onWarning: out.warn,
      ...(clusterSelect.length ? { select: clusterSelect } : {}),
      ...metaGrpcFlags(values),
      ...(values["meta-export-file"] ? { metaExportFile: String(values["meta-export-file"]) } : {}),
      ...(values["meta-export-command"]
        ? { metaExportCommand: String(values["meta-export-command"]) }
        : {}),
    });
  } else {
    if (values["meta-export-file"] || values["meta-export-command"]) {
      throw new UsageError(
        "--meta-export-file and --meta-export-command are for a cluster: give its query-node .toml to --from",
      );
    }
    if (clusterSelect.length) {
      throw new UsageError(
        "--database and --table are for a Databend cluster (its query-node .toml) or --table for PostgreSQL: a directory is backed up with --exclude",
      );
    }
    source = dirSource(from, chunker ? { chunker } : {});
  }
  const store = await openStore(to, { create: true, onWarning: out.warn }).catch(async (e) => {
    await source.close?.();
    throw e;
  });
  repository = store;
  const r = await backup(store, source, {
    lockWaitMs: lockWait * 60_000,
    // Only the flags given: an existing repository warns that it ignores them.
    init: {
      ...(passphrase !== null ? { passphrase } : {}),
      ...(values.compression !== undefined ? { compression } : {}),
      ...(packMiB ? { packSize: packMiB * 1024 * 1024 } : {}),
    },
    onEvent: (e) => out.event(e),
    signal: out.signal,
    ...(workers === undefined ? {} : { workers }),
    ...(exclude.length > 0 ? { exclude } : {}),
  }).catch(async (e) => {
    // A failed first backup removes its repository; the directory made for it goes too.
    if (store instanceof FsStore) await store.removeCreatedDirectory().catch(() => false);
    throw e;
  });
  out.done();
  const s = r.manifest.stats;
  out.result({
    type: "summary",
    name: r.name,
    id: toHex(r.id),
    kind: r.manifest.kind,
    parent: r.parent,
    repository_created: r.created,
    incomplete: r.manifest.incomplete,
    files: s.files,
    files_new: s.filesNew,
    files_changed: s.filesChanged,
    files_unchanged: s.filesUnchanged,
    dirs: s.dirs,
    symlinks: s.symlinks,
    bytes: s.bytes,
    bytes_read: s.bytesRead,
    added_bytes: s.addedBytes,
    new_blocks: s.newBlocks,
    errors: s.errors,
    skipped: s.skipped,
    duration_ms: r.durationMs,
    source: r.manifest.source.description,
    parts: r.manifest.parts.map((p) => ({
      name: p.name,
      files: p.stats.files,
      bytes: p.stats.bytes,
    })),
    ...(r.manifest.catalog ? { catalog_databases: r.manifest.catalog.databases.length } : {}),
  });
  const catalog = r.manifest.catalog;
  const tables = catalog?.databases.reduce((a, d) => a + d.tables.length, 0) ?? 0;
  out.print(
    `${r.created ? "created repository " + to + "\n" : ""}` +
      `backup ${r.name} (${r.manifest.kind}${r.parent ? ", parent " + r.parent : ""})\n` +
      `  source     ${r.manifest.source.description}\n` +
      (catalog
        ? `  catalog    ${catalog.databases.length} databases, ${tables} tables (bendsave show ${r.name})\n`
        : "") +
      `  files      ${s.files} (new ${s.filesNew}, changed ${s.filesChanged}, unchanged ${s.filesUnchanged}), ` +
      `${s.dirs} dirs, ${s.symlinks} symlinks${s.skipped ? `, ${s.skipped} skipped` : ""}\n` +
      `  size       ${formatBytes(s.bytes)}\n` +
      `  read       ${formatBytes(s.bytesRead)}\n` +
      `  added      ${formatBytes(s.addedBytes)} in ${s.newBlocks} new blocks\n` +
      `  duration   ${formatDuration(r.durationMs)} (${formatRate(s.bytesRead, r.durationMs)})`,
  );
  if (r.manifest.incomplete) {
    out.print(
      s.errors > 0
        ? `warning: ${s.errors} file(s) could not be read; the backup is marked incomplete (see the warnings above)`
        : "warning: objects the meta export refers to are missing from the backup; it is marked incomplete (see the warnings above)",
    );
    return ExitCode.partial;
  }
  return ExitCode.ok;
}
