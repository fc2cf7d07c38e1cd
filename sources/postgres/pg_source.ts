/**
 * A PostgreSQL server as a backup source: a non-exclusive online base
 * backup, as PostgreSQL documents it ("Making a Base Backup Using the Low
 * Level API"), on one session held open from start to stop:
 *
 * 1. `pg_backup_start(label, fast => true)`;
 * 2. part `data`: the data directory, read through the engine like any
 *    directory (unchanged files are taken from the previous base backup),
 *    less what the documentation says to leave out ({@linkcode pgExcluded});
 *    then part `tablespace-<oid>` for each tablespace outside it;
 * 3. part `backup_label` (and `tablespace_map` when there are tablespaces):
 *    `pg_backup_stop`, whose label file (and tablespace map) the part
 *    stores; then the archive check: every WAL segment from the backup's
 *    start to its stop, and the backup history file, must be in the
 *    repository's WAL archive, else the backup fails (no manifest is
 *    written). With the archive check, `pg_backup_stop` is told not to wait
 *    for the archiver (`wait_for_archive => false`): it still switches to a
 *    new segment, and the check looks into the repository every 50 ms,
 *    where the server's own wait sleeps a whole second between looks.
 *
 * The server must archive its WAL (`archive_mode` on and an
 * `archive_command`): a base backup without the WAL written while it ran
 * cannot be restored. A server without archiving is refused before anything
 * is read, and so is a standby (back up the primary).
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { hostname } from "node:os";
import type { DirPart, Source, SourcePart, StreamPart } from "../types.ts";
import { DatabaseError, InvalidInput } from "../../store/errors.ts";
import type { ChunkerParams, FixedChunkerParams } from "../../formats/chunker.ts";
import { controlFileSystemId, walSegmentName } from "../../formats/wal.ts";
import { parseLsn as parseTargetLsn } from "../../formats/pg_target.ts";
import { PgConnection, type PgConnectOptions } from "./connection.ts";

/** Source type of a PostgreSQL base backup. */
export const PG_SOURCE_TYPE = "postgresql";
/** The part holding the data directory. */
export const PG_DATA_PART = "data";
/**
 * The chunker of a data directory's files by default: fixed 1 MiB blocks.
 * PostgreSQL writes pages of 8 KiB in place, at fixed offsets, and never
 * shifts a file's content, so content-defined cut points buy nothing there;
 * fixed blocks cost no cutting, and a 1 GiB relation segment is read in
 * sections on every core (store/archiver/archiver.ts, SECTION_BYTES).
 * Measured on pgbench's accounts table (940 MB, zstd level 1): 22.2 MB in
 * 1 MiB blocks, 22.0 MB in 4 MiB, 23.0 MB in 256 KiB.
 */
export const PG_CHUNKER: FixedChunkerParams = Object.freeze({ kind: "fixed", size: 1024 * 1024 });
/** The part holding the label file of `pg_backup_stop` (restored as `backup_label`). */
export const PG_LABEL_PART = "backup_label";
/** The part holding the tablespace map of `pg_backup_stop` (restored as `tablespace_map`). */
export const PG_TABLESPACE_MAP_PART = "tablespace_map";
/** The name of the part of the tablespace with `oid`. */
export function tablespacePartName(oid: string | number): string {
  return `tablespace-${oid}`;
}

/** A tablespace outside the data directory. */
export interface PgTablespace {
  readonly oid: string;
  readonly location: string;
}

/**
 * Directories whose contents a base backup leaves out (the directories stay):
 * PostgreSQL recreates or does not need them. From the documentation's list
 * and pg_basebackup's.
 */
const EXCLUDED_CONTENTS = new Set([
  "pg_wal",
  "pg_replslot",
  "pg_dynshmem",
  "pg_notify",
  "pg_serial",
  "pg_snapshots",
  "pg_stat_tmp",
  "pg_subtrans",
]);

/** Files at the top of the data directory that a base backup leaves out. */
const EXCLUDED_TOP_FILES = new Set([
  "postmaster.pid",
  "postmaster.opts",
  "backup_label", // a leftover: the backup's own label is its backup_label part
  "tablespace_map",
  "postgresql.auto.conf.tmp",
  "current_logfiles.tmp",
]);

/** A relation's file: `<relfilenode>[_<fork>][.<segment>]`. */
const RELATION_FILE = /^(\d+)(?:_(fsm|vm|init))?(?:\.\d+)?$/;
/** A temporary relation's file: `t<backend>_<relfilenode>[_<fork>][.<segment>]`. */
const TEMP_RELATION_FILE = /^t\d+_\d+(?:_(?:fsm|vm|init))?(?:\.\d+)?$/;

/**
 * True for a path (relative to the data directory or a tablespace, `/`
 * separated) that a base backup leaves out: the contents of `pg_wal/`
 * (keeping the empty `pg_wal/archive_status/`), of `pg_replslot/`,
 * `pg_dynshmem/`, `pg_notify/`, `pg_serial/`, `pg_snapshots/`,
 * `pg_stat_tmp/` and `pg_subtrans/`; `postmaster.pid`, `postmaster.opts`, a
 * leftover `backup_label` or `tablespace_map`, temporary configuration
 * files; at any depth, `pgsql_tmp*`, `pg_internal.init` and the files of
 * temporary relations (`t<n>_<n>...`, removed when the server starts). See
 * {@linkcode pgPartExclude} for unlogged relations.
 *
 * @example
 * ```ts
 * import { pgExcluded } from "./pg_source.ts";
 * pgExcluded("pg_wal/000000010000000000000001"); // true
 * pgExcluded("pg_wal/archive_status"); // false
 * pgExcluded("base/1/1259"); // false
 * ```
 */
export function pgExcluded(rel: string): boolean {
  const parts = rel.split("/");
  const name = parts[parts.length - 1]!;
  if (name.startsWith("pgsql_tmp") || name === "pg_internal.init") return true;
  if (parts.length === 1) return EXCLUDED_TOP_FILES.has(name);
  if (TEMP_RELATION_FILE.test(name)) return true;
  const top = parts[0]!;
  if (top === "pg_wal") return !(parts.length === 2 && name === "archive_status");
  return EXCLUDED_CONTENTS.has(top);
}

/**
 * The exclusions of the data directory or tablespace at `root`:
 * {@linkcode pgExcluded}, and the files of unlogged relations other than
 * their init fork (`N`, `N.1`, `N_fsm`, `N_vm` beside an `N_init`): at the
 * end of recovery PostgreSQL makes an unlogged relation anew from its init
 * fork, as pg_basebackup relies on. Each directory is listed once.
 */
export function pgPartExclude(root: string): (rel: string) => boolean {
  const inits = new Map<string, Set<string>>();
  return (rel) => {
    if (pgExcluded(rel)) return true;
    const slash = rel.lastIndexOf("/");
    if (slash < 0) return false;
    const m = RELATION_FILE.exec(rel.slice(slash + 1));
    if (!m || m[2] === "init") return false;
    const dir = rel.slice(0, slash);
    let set = inits.get(dir);
    if (!set) {
      set = new Set();
      try {
        for (const n of fs.readdirSync(path.join(root, dir))) {
          const i = /^(\d+)_init$/.exec(n);
          if (i) set.add(i[1]!);
        }
      } catch {
        // unlistable: the walk reports it
      }
      inits.set(dir, set);
    }
    return set.has(m[1]!);
  };
}

/** Options of {@linkcode pgSource}. */
export interface PgSourceOptions extends PgConnectOptions {
  /**
   * The data directory as this machine sees it (default: the server's
   * `data_directory`). It must be the server's: one that is not is refused.
   */
  readonly pgData?: string;
  /** Chunker of the data directory's files (default {@linkcode PG_CHUNKER}). */
  readonly chunker?: ChunkerParams;
  /**
   * The archive check: true when WAL file `name` (a segment or a backup
   * history file) of system `systemId` is in the archive. Without it, only
   * the server's word (`pg_backup_stop(wait_for_archive => true)`) is taken.
   * With it, `pg_backup_stop` does not wait: this check does.
   */
  readonly archived?: (systemId: string, name: string) => Promise<boolean>;
  /** Milliseconds to wait for the WAL to reach the archive (default 120 000). */
  readonly archiveWaitMs?: number;
  /** The backup label (default `bendsave <time>`). */
  readonly label?: string;
  /** Host name recorded in the settings (default: this machine's). */
  readonly host?: string;
}

/** The settings a PostgreSQL base backup records in its manifest (every value a string). */
export interface PgBackupSettings {
  /** `server_version_num`, e.g. `150018`. */
  readonly "pg.version": string;
  /** The database system identifier, in decimal. */
  readonly "pg.system_identifier": string;
  readonly "pg.data_directory": string;
  /** The timeline the backup started on, in decimal. */
  readonly "pg.timeline": string;
  /** LSNs as PostgreSQL prints them, `X/X`. */
  readonly "pg.start_lsn": string;
  readonly "pg.stop_lsn": string;
  /** WAL file names: the segment holding the start LSN, and the last segment the backup needs. */
  readonly "pg.start_wal": string;
  readonly "pg.stop_wal": string;
  /** RFC 3339, UTC, milliseconds (the stop time rounded up). */
  readonly "pg.start_time": string;
  readonly "pg.stop_time": string;
  /** Bytes. */
  readonly "pg.wal_segment_size": string;
  /** JSON list of `{oid, location}`: the tablespaces outside the data directory. */
  readonly "pg.tablespaces": string;
}

/** What the server tells about itself before a backup. */
interface ServerFacts {
  version: number;
  systemId: string;
  dataDirectory: string;
  segmentSize: number;
  tablespaces: PgTablespace[];
}

const UTC_MS = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

/** The lines of a text file, or null when it cannot be read. */
function readLines(file: string): string[] | null {
  try {
    return fs.readFileSync(file, "utf8").split("\n");
  } catch {
    return null;
  }
}

/**
 * The source for the PostgreSQL server at `uri` (a libpq URI, see
 * connection.ts). Connects and checks the server at once: it must be a
 * primary of version 15 or later that archives its WAL, and `pgData` (or the
 * server's `data_directory`) must be its data directory.
 *
 * @throws {InvalidInput} for a bad URI, a server without archiving, a
 * standby, an older version, or a data directory that is not the server's.
 * @throws {AccessDenied} when the login is refused.
 * @throws {DatabaseError} when the server cannot be reached or a query fails.
 *
 * @example
 * ```ts ignore
 * import { pgSource } from "./pg_source.ts";
 * const src = await pgSource("postgresql://postgres@/postgres?host=/run/postgresql");
 * src.info.key; // "postgresql:<system identifier>:<data directory>"
 * ```
 */
export async function pgSource(uri: string, options: PgSourceOptions = {}): Promise<Source> {
  const conn = await PgConnection.connect(uri, options);
  let facts: ServerFacts;
  let dataDir: string;
  try {
    facts = await checkServer(conn);
    dataDir = checkDataDir(conn, facts, options.pgData, await conn.value("SHOW port"));
  } catch (e) {
    await conn.close();
    throw e;
  }
  const where = conn.target.shown;
  const host = options.host ?? hostname();
  const settings: Record<string, string> = {
    "pg.version": String(facts.version),
    "pg.system_identifier": facts.systemId,
    "pg.data_directory": facts.dataDirectory,
    "pg.wal_segment_size": String(facts.segmentSize),
    "pg.tablespaces": JSON.stringify(facts.tablespaces),
    host,
  };
  let started = false;
  let stopped: { labelfile: string; spcmapfile: string } | null = null;
  let closed = false;

  const label: StreamPart = {
    name: PG_LABEL_PART,
    kind: "stream",
    fileName: "backup_label",
    open: async () => {
      if (!started) throw new Error("internal error: backup_label before pg_backup_start");
      stopped = await stopBackup(conn, facts, settings, options);
      const bytes = new TextEncoder().encode(stopped.labelfile);
      return (async function* () {
        yield bytes;
      })();
    },
  };
  const map: StreamPart = {
    name: PG_TABLESPACE_MAP_PART,
    kind: "stream",
    fileName: "tablespace_map",
    open: () => {
      if (!stopped) throw new Error("internal error: tablespace_map before pg_backup_stop");
      const bytes = new TextEncoder().encode(stopped.spcmapfile);
      return Promise.resolve((async function* () {
        yield bytes;
      })());
    },
  };

  const parts = async (): Promise<SourcePart[]> => {
    if (started) throw new Error("internal error: parts() of a PostgreSQL source asked twice");
    await startBackup(conn, settings, options.label);
    started = true;
    const data: DirPart = {
      name: PG_DATA_PART,
      kind: "tree",
      path: dataDir,
      chunker: options.chunker ?? PG_CHUNKER,
      exclude: pgPartExclude(dataDir),
      vanishedOk: true,
    };
    const spaces: DirPart[] = facts.tablespaces.map((t) => ({
      name: tablespacePartName(t.oid),
      kind: "tree",
      path: t.location,
      chunker: options.chunker ?? PG_CHUNKER,
      exclude: pgPartExclude(t.location),
      vanishedOk: true,
    }));
    return [data, ...spaces, label, ...(facts.tablespaces.length ? [map] : [])];
  };

  return {
    // Pages change all over a database between backups (hint bits, vacuum, updates).
    readsMost: true,
    info: {
      type: PG_SOURCE_TYPE,
      key: `${PG_SOURCE_TYPE}:${facts.systemId}:${facts.dataDirectory}`,
      description: `PostgreSQL ${
        versionText(facts.version)
      } system ${facts.systemId}, data directory ${facts.dataDirectory} on ${host} (${where})`,
      // The backup copies the settings once every part is done: the start and
      // stop fields are filled in by then.
      settings,
    },
    parts,
    close: async () => {
      if (closed) return;
      closed = true;
      // Closing the session aborts a backup that was started and not stopped.
      await conn.close();
    },
  };
}

/** `150018` as `15.18`. */
function versionText(v: number): string {
  return v >= 100000 ? `${Math.floor(v / 10000)}.${v % 10000}` : String(v);
}

async function checkServer(conn: PgConnection): Promise<ServerFacts> {
  const where = conn.target.shown;
  const version = Number(await conn.value("SELECT current_setting('server_version_num')"));
  if (!(version >= 150000)) {
    throw new InvalidInput(
      `PostgreSQL at ${where} is version ${
        versionText(version)
      }: bendsave backs up PostgreSQL 15 or later (pg_backup_start)`,
    );
  }
  if (await conn.value<boolean>("SELECT pg_is_in_recovery()")) {
    throw new InvalidInput(
      `PostgreSQL at ${where} is a standby (in recovery): back up the primary`,
    );
  }
  const s = (await conn.query<Record<string, string>>(
    `SELECT current_setting('archive_mode') AS archive_mode,
            current_setting('archive_command') AS archive_command,
            current_setting('archive_library') AS archive_library,
            current_setting('wal_level') AS wal_level,
            (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS segment_size,
            (SELECT system_identifier::text FROM pg_control_system()) AS system_id,
            current_setting('data_directory') AS data_directory`,
  ))[0]!;
  const command = (s.archive_command ?? "").trim();
  const archiving = (s.archive_mode === "on" || s.archive_mode === "always") &&
    (s.archive_library !== "" || (command !== "" && command !== "(disabled)"));
  if (!archiving) {
    const why = s.archive_mode === "on" || s.archive_mode === "always"
      ? "has no archive_command"
      : `has archive_mode = ${s.archive_mode}`;
    throw new InvalidInput(
      `PostgreSQL at ${where} ${why}: a base backup needs the WAL written while it runs; set archive_mode = on and archive_command = 'bendsave wal-push %p --to REPO', restart the server, and back up again`,
    );
  }
  const tablespaces = (await conn.query<{ oid: string; location: string }>(
    `SELECT oid::text AS oid, pg_tablespace_location(oid) AS location FROM pg_tablespace
      WHERE pg_tablespace_location(oid) <> '' ORDER BY oid`,
  )).filter((t) => path.isAbsolute(t.location)); // in-place tablespaces are in the data directory
  return {
    version,
    systemId: s.system_id!,
    dataDirectory: s.data_directory!,
    segmentSize: Number(s.segment_size),
    tablespaces: tablespaces.map((t) => ({ oid: t.oid, location: t.location })),
  };
}

/**
 * The data directory to read: `given` or the server's, checked to be the
 * running server's own: its `global/pg_control` names the server's system,
 * and its `postmaster.pid` names the server's data directory and port (a
 * copy of the directory, a standby's or another cluster's is refused).
 */
function checkDataDir(
  conn: PgConnection,
  facts: ServerFacts,
  given: string | undefined,
  port: string,
): string {
  const dir = path.resolve(given ?? facts.dataDirectory);
  const refuse = (why: string) =>
    new InvalidInput(
      `"${dir}" is not the data directory of the PostgreSQL server at ${conn.target.shown} (${why}; the server's is "${facts.dataDirectory}", system ${facts.systemId}): ${
        given === undefined
          ? "run bendsave on the server's machine, or give --pg-data"
          : "give --pg-data the server's data directory, or leave it out"
      }`,
    );
  let control: Uint8Array;
  try {
    if (!fs.statSync(dir).isDirectory()) throw refuse("not a directory");
    control = fs.readFileSync(path.join(dir, "global", "pg_control"));
  } catch (e) {
    if (e instanceof InvalidInput) throw e;
    const code = (e as { code?: string }).code;
    if (code === "EACCES") {
      throw new InvalidInput(
        `data directory "${dir}" cannot be read (EACCES): run bendsave as root or as the server's user`,
      );
    }
    throw refuse(code === "ENOENT" ? "it has no global/pg_control" : `${code ?? e}`);
  }
  // Where the server's own path is seen here too, it must be the same directory.
  try {
    const mine = fs.statSync(dir);
    const server = fs.statSync(facts.dataDirectory);
    if (mine.dev !== server.dev || mine.ino !== server.ino) throw refuse("it is another directory");
  } catch (e) {
    if (e instanceof InvalidInput) throw e; // else the server's path is not seen from here
  }
  let systemId: string;
  try {
    systemId = controlFileSystemId(control);
  } catch {
    throw refuse("its global/pg_control is damaged");
  }
  if (systemId !== facts.systemId) throw refuse(`it holds system ${systemId}`);
  const pid = readLines(path.join(dir, "postmaster.pid"));
  if (!pid) throw refuse("no server runs on it: it has no postmaster.pid");
  if (pid[1] !== facts.dataDirectory || pid[3]?.trim() !== port) {
    throw refuse("its postmaster.pid is another server's");
  }
  return fs.realpathSync(dir);
}

async function startBackup(
  conn: PgConnection,
  settings: Record<string, string>,
  label: string | undefined,
): Promise<void> {
  const rows = await conn.query<{ lsn: string; t: string }>(
    `SELECT pg_backup_start($1, fast => true)::text AS lsn,
            to_char(clock_timestamp() AT TIME ZONE 'UTC', ${UTC_MS}) AS t`,
    [label ?? `bendsave ${new Date().toISOString()}`],
  );
  settings["pg.start_lsn"] = rows[0]!.lsn;
  settings["pg.start_time"] = rows[0]!.t;
}

/** Parses an LSN the server returned. */
function parseLsn(s: string): bigint {
  try {
    return parseTargetLsn(s);
  } catch {
    throw new DatabaseError(`PostgreSQL returned "${s}", which is not an LSN`);
  }
}

/** How often the archive check looks into the repository for the base backup's WAL. */
const ARCHIVE_POLL_MS = 50;

/** `pg_backup_stop`, the stop settings, then the archive check. */
async function stopBackup(
  conn: PgConnection,
  facts: ServerFacts,
  settings: Record<string, string>,
  options: PgSourceOptions,
): Promise<{ labelfile: string; spcmapfile: string }> {
  const where = conn.target.shown;
  const waitMs = options.archiveWaitMs ?? 120_000;
  const deadline = Date.now() + waitMs;
  // pg_backup_stop waits for the archiver without end when archiving fails: bound it.
  await conn.query(`SET statement_timeout = ${Math.max(1, Math.ceil(waitMs))}`);
  const wait = options.archived ? "false" : "true";
  let row: { lsn: string; labelfile: string; spcmapfile: string | null; t: string };
  try {
    row = (await conn.query<typeof row>(
      `SELECT lsn::text AS lsn, labelfile, spcmapfile,
              to_char((date_trunc('milliseconds', clock_timestamp()) + interval '1 millisecond')
                      AT TIME ZONE 'UTC', ${UTC_MS}) AS t
         FROM pg_backup_stop(wait_for_archive => ${wait})`,
    ))[0]!;
  } catch (e) {
    if (!(e instanceof DatabaseError) || !/statement timeout|canceling/i.test(e.message)) {
      throw e;
    }
    throw new DatabaseError(
      `PostgreSQL at ${where} did not archive the WAL the base backup needs within ${
        Math.round(waitMs / 1000)
      } s${await archiverState(
        conn,
      )}: the server log says why archive_command fails; it must be 'bendsave wal-push %p --to REPO', run as a user who may write REPO; fix it and back up again`,
    );
  } finally {
    await conn.query("SET statement_timeout = 0").catch(() => {});
  }
  const label = row.labelfile;
  const startWal = /^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)$/m.exec(label)?.[1];
  const timeline = /^START TIMELINE: (\d+)$/m.exec(label)?.[1];
  if (!startWal || !timeline) {
    throw new DatabaseError(
      `PostgreSQL at ${where} returned a backup label without START WAL LOCATION or START TIMELINE`,
    );
  }
  const stopWal = await conn.value<string>("SELECT pg_walfile_name($1::pg_lsn)", [row.lsn]);
  settings["pg.timeline"] = String(Number(timeline));
  settings["pg.start_wal"] = startWal;
  settings["pg.stop_lsn"] = row.lsn;
  settings["pg.stop_wal"] = stopWal;
  settings["pg.stop_time"] = row.t;
  if (options.archived) {
    await checkArchived(conn, facts, settings, options.archived, deadline);
  }
  return { labelfile: label, spcmapfile: row.spcmapfile ?? "" };
}

/** The archiver's last failure, as ` (the archiver last failed on X at T)`, or "". */
async function archiverState(conn: PgConnection): Promise<string> {
  try {
    const r = (await conn.query<{ w: string | null; t: string | null }>(
      `SELECT last_failed_wal AS w, to_char(last_failed_time AT TIME ZONE 'UTC', ${UTC_MS}) AS t
         FROM pg_stat_archiver`,
    ))[0];
    return r?.w ? ` (the archiver last failed on ${r.w} at ${r.t})` : "";
  } catch {
    return "";
  }
}

/**
 * Checks that every WAL segment from the backup's start to its stop, and its
 * backup history file, are in the archive; waits for them until `deadline`.
 */
async function checkArchived(
  conn: PgConnection,
  facts: ServerFacts,
  settings: Record<string, string>,
  archived: (systemId: string, name: string) => Promise<boolean>,
  deadline: number,
): Promise<void> {
  const seg = BigInt(facts.segmentSize);
  const start = parseLsn(settings["pg.start_lsn"]!);
  const stop = parseLsn(settings["pg.stop_lsn"]!);
  const timeline = Number(settings["pg.timeline"]);
  const first = start / seg;
  const last = (stop - 1n) / seg; // pg_walfile_name: the segment holding the byte before stop
  const names: string[] = [];
  for (let s = first; s <= last; s++) names.push(walSegmentName(timeline, s, facts.segmentSize));
  const offset = (start % seg).toString(16).toUpperCase().padStart(8, "0");
  names.push(`${settings["pg.start_wal"]}.${offset}.backup`);
  const missing = new Set(names);
  for (;;) {
    for (const n of [...missing]) if (await archived(facts.systemId, n)) missing.delete(n);
    if (missing.size === 0) return;
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, ARCHIVE_POLL_MS));
  }
  const list = [...missing].sort();
  throw new DatabaseError(
    `the base backup's WAL is not in this repository's archive: ${list.length} file(s) missing (${
      list.slice(0, 3).join(", ")
    }${list.length > 3 ? ", ..." : ""})${await archiverState(
      conn,
    )}: archive_command must push to this repository ('bendsave wal-push %p --to REPO'); fix it and back up again`,
  );
}
