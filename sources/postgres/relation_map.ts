/**
 * The relation map of a PostgreSQL base backup: for each database, its
 * schemas and tables, and for each table every relation file it owns (the
 * table itself, its TOAST table and the TOAST index, every index, the
 * sequences it owns), with each fork's files and sizes; and, per database,
 * the files of its system catalogs. Taken while the backup runs (right after
 * `pg_backup_start`, one connection per database), stored as the part
 * `pg_relations` (one JSON file, `relations.json`; FORMAT.md section 13.3).
 *
 * What reads it: `show` prints it; `restore --table` restores only the files
 * it names (plus everything outside the databases' directories) into a
 * scratch data directory, the other relation files as sparse files of their
 * size ({@linkcode relationSelector}); `backup --schema` / `--table` backs up
 * only the relations it selects.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import type { Source, SourcePart, StreamPart } from "../types.ts";
import { InvalidInput } from "../../store/errors.ts";
import type { ManifestRecord, Repository } from "../../store/repository.ts";
import { NodeType } from "../../formats/tree.ts";
import { PgConnection, type PgConnectOptions } from "./connection.ts";

/** The part holding the relation map. */
export const PG_RELATIONS_PART = "pg_relations";
/** The file of that part. */
export const PG_RELATIONS_FILE = "relations.json";
/** The version of the map's JSON shape. */
export const RELATION_MAP_VERSION = 1;

/** One relation's files: its path (as `pg_relation_filepath` gives it) and each fork's files. */
export interface PgRelationFiles {
  /** `table`, `toast`, `toast_index`, `index` or `sequence`. */
  readonly role: "table" | "toast" | "toast_index" | "index" | "sequence";
  readonly name: string;
  readonly oid: string;
  /** Relative to the data directory, e.g. `base/16384/16390`, `pg_tblspc/16400/PG_15_.../16384/16390`. */
  readonly path: string;
  /** The files of every fork that exists (main segments, `_fsm`, `_vm`, `_init`), path -> bytes. */
  readonly files: Readonly<Record<string, number>>;
}

/** A table (or partitioned table, materialized view) and its relations. */
export interface PgTableMap {
  readonly name: string;
  readonly oid: string;
  /** `pg_class.relkind`: `r` table, `p` partitioned, `m` materialized view. */
  readonly kind: string;
  /** The table first, then its TOAST table and TOAST index, indexes, owned sequences. */
  readonly relations: readonly PgRelationFiles[];
}

/** A schema and its tables. */
export interface PgSchemaMap {
  readonly name: string;
  readonly oid: string;
  readonly tables: readonly PgTableMap[];
}

/** A database: its directory, catalog files and schemas. */
export interface PgDatabaseMap {
  readonly name: string;
  readonly oid: string;
  /** The database's default directory, `base/<oid>`. */
  readonly path: string;
  /** Files of the system catalogs (relations with an oid below 16384), path -> bytes. */
  readonly catalog: Readonly<Record<string, number>>;
  readonly schemas: readonly PgSchemaMap[];
}

/** The map of a base backup. */
export interface PgRelationMap {
  readonly version: number;
  /** When it was taken (RFC 3339). */
  readonly time: string;
  readonly databases: readonly PgDatabaseMap[];
  /**
   * For a schema- or table-level backup: what it holds, as `DB.SCHEMA` and
   * `DB.SCHEMA.TABLE`; absent for a whole-cluster backup.
   */
  readonly only?: readonly string[];
}

/** A table named `DB.SCHEMA.TABLE`. */
export interface TableName {
  readonly db: string;
  readonly schema: string;
  readonly table: string;
}

/**
 * Splits `DB.SCHEMA.TABLE` (or, with `parts` 2, `SCHEMA.NAME` / `DB.SCHEMA`)
 * at its dots; a part may be double-quoted to hold dots (`"a.b"`), `""` in
 * it standing for one `"`.
 *
 * @throws {InvalidInput} for another number of parts or an empty one.
 *
 * @example
 * ```ts
 * import { splitName } from "./relation_map.ts";
 * splitName("shop.billing.invoices", 3); // ["shop", "billing", "invoices"]
 * splitName('shop."a.b"', 2); // ["shop", "a.b"]
 * ```
 */
export function splitName(text: string, parts: 2 | 3): string[] {
  const out: string[] = [];
  let i = 0;
  const s = text.trim();
  while (i <= s.length) {
    let word = "";
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw bad(text, parts);
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            word += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        word += s[i++];
      }
    } else {
      while (i < s.length && s[i] !== ".") word += s[i++];
    }
    out.push(word);
    if (i >= s.length) break;
    if (s[i] !== ".") throw bad(text, parts);
    i++;
    if (i === s.length) out.push("");
  }
  if (out.length !== parts || out.some((w) => w === "")) throw bad(text, parts);
  return out;
}

function bad(text: string, parts: 2 | 3): InvalidInput {
  return new InvalidInput(
    `"${text}" is not a ${
      parts === 3 ? "DB.SCHEMA.TABLE" : "SCHEMA.NAME"
    } name: give ${parts} dot-separated parts (double-quote a part that holds a dot)`,
  );
}

/** Parses `DB.SCHEMA.TABLE`. */
export function parseTableName(text: string): TableName {
  const [db, schema, table] = splitName(text, 3) as [string, string, string];
  return { db, schema, table };
}

/** A name part as written in `DB.SCHEMA.TABLE` (quoted when it holds a dot or a quote). */
export function namePart(s: string): string {
  return /[."]/.test(s) || s !== s.trim() ? `"${s.replaceAll('"', '""')}"` : s;
}

/** `DB.SCHEMA.TABLE` of a table. */
export function showTable(t: TableName): string {
  return `${namePart(t.db)}.${namePart(t.schema)}.${namePart(t.table)}`;
}

/** The URI with its database replaced by `db`. */
export function uriForDatabase(uri: string, db: string): string {
  const m = /^(postgres(?:ql)?:\/\/[^/?#]*)(\/[^?#]*)?(.*)$/is.exec(uri);
  if (!m) throw new InvalidInput(`"${uri.replace(/:[^@/]*@/, ":***@")}" is not a PostgreSQL URI`);
  const rest = (m[3] ?? "").replace(/([?&])dbname=[^&#]*&?/i, "$1").replace(/[?&]$/, "");
  return `${m[1]}/${encodeURIComponent(db)}${rest}`;
}

/** The files of the relation at `rel` (every fork and segment) in `dataDir`, path -> bytes. */
function forkFiles(dataDir: string, rel: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const fork of ["", "_fsm", "_vm", "_init"]) {
    for (let seg = 0;; seg++) {
      const p = `${rel}${fork}${seg ? `.${seg}` : ""}`;
      let size: number;
      try {
        size = fs.statSync(path.join(dataDir, p)).size;
      } catch {
        break;
      }
      out[p] = size;
    }
  }
  return out;
}

interface RelRow {
  table_oid: string;
  role: PgRelationFiles["role"];
  oid: string;
  name: string;
  path: string | null;
}

const TABLES_SQL = `
SELECT n.oid::text AS schema_oid, n.nspname AS schema, c.oid::text AS oid, c.relname AS name,
       c.relkind::text AS kind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'm') AND c.relpersistence <> 't'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
 ORDER BY n.nspname, c.relname`;

const RELATIONS_SQL = `
WITH t AS (
  SELECT c.oid, c.reltoastrelid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'm') AND c.relpersistence <> 't'
     AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
)
SELECT t.oid::text AS table_oid, 'table' AS role, t.oid::text AS oid, c.relname AS name,
       pg_relation_filepath(t.oid) AS path, 0 AS o
  FROM t JOIN pg_class c ON c.oid = t.oid
UNION ALL
SELECT t.oid::text, 'toast', c.oid::text, c.relname, pg_relation_filepath(c.oid), 1
  FROM t JOIN pg_class c ON c.oid = t.reltoastrelid
UNION ALL
SELECT t.oid::text, 'toast_index', c.oid::text, c.relname, pg_relation_filepath(c.oid), 2
  FROM t JOIN pg_index i ON i.indrelid = t.reltoastrelid JOIN pg_class c ON c.oid = i.indexrelid
UNION ALL
SELECT t.oid::text, 'index', c.oid::text, c.relname, pg_relation_filepath(c.oid), 3
  FROM t JOIN pg_index i ON i.indrelid = t.oid JOIN pg_class c ON c.oid = i.indexrelid
UNION ALL
SELECT t.oid::text, 'sequence', c.oid::text, c.relname, pg_relation_filepath(c.oid), 4
  FROM t JOIN pg_depend d ON d.refobjid = t.oid AND d.refclassid = 'pg_class'::regclass
        AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'S'
ORDER BY 1, 6, 4`;

const CATALOG_SQL = `
SELECT pg_relation_filepath(oid) AS path FROM pg_class
 WHERE oid < 16384 AND relkind IN ('r', 'i', 't', 'S', 'm') AND pg_relation_filepath(oid) IS NOT NULL
 ORDER BY 1`;

/** Options of {@linkcode readRelationMap}. */
export interface ReadRelationMapOptions extends PgConnectOptions {
  /** The data directory as this machine sees it: fork files are listed from it. */
  readonly dataDir: string;
}

/**
 * Reads the relation map of the server at `uri`: the list of databases that
 * accept connections (templates left out), then, connected to each, its
 * tables with their relations, and its catalog files; every file's size is
 * read from `dataDir`.
 */
export async function readRelationMap(
  uri: string,
  options: ReadRelationMapOptions,
): Promise<PgRelationMap> {
  const time = new Date().toISOString();
  const main = await PgConnection.connect(uri, options);
  let dbs: { name: string; oid: string }[];
  try {
    dbs = await main.query<{ name: string; oid: string }>(
      `SELECT datname AS name, oid::text AS oid FROM pg_database
        WHERE datallowconn AND NOT datistemplate ORDER BY datname`,
    );
  } finally {
    await main.close();
  }
  const databases: PgDatabaseMap[] = [];
  for (const db of dbs) {
    let conn: PgConnection;
    try {
      conn = await PgConnection.connect(uriForDatabase(uri, db.name), options);
    } catch (e) {
      // Dropped since it was listed: it is not in the map.
      if (e instanceof InvalidInput && /does not exist/.test(e.message)) continue;
      throw e;
    }
    try {
      databases.push(await readDatabase(conn, db, options.dataDir));
    } finally {
      await conn.close();
    }
  }
  return { version: RELATION_MAP_VERSION, time, databases };
}

async function readDatabase(
  conn: PgConnection,
  db: { name: string; oid: string },
  dataDir: string,
): Promise<PgDatabaseMap> {
  const tables = await conn.query<
    { schema_oid: string; schema: string; oid: string; name: string; kind: string }
  >(TABLES_SQL);
  const rels = await conn.query<RelRow>(RELATIONS_SQL);
  const byTable = new Map<string, PgRelationFiles[]>();
  for (const r of rels) {
    if (r.path === null) continue; // a partitioned table has no files
    const list = byTable.get(r.table_oid) ?? [];
    list.push({
      role: r.role,
      name: r.name,
      oid: r.oid,
      path: r.path,
      files: forkFiles(dataDir, r.path),
    });
    byTable.set(r.table_oid, list);
  }
  const catalog: Record<string, number> = {};
  for (const c of await conn.query<{ path: string }>(CATALOG_SQL)) {
    if (c.path.startsWith("global/")) continue; // global/ is always restored whole
    Object.assign(catalog, forkFiles(dataDir, c.path));
  }
  const schemas = new Map<string, { name: string; oid: string; tables: PgTableMap[] }>();
  for (const t of tables) {
    const s = schemas.get(t.schema_oid) ?? { name: t.schema, oid: t.schema_oid, tables: [] };
    s.tables.push({ name: t.name, oid: t.oid, kind: t.kind, relations: byTable.get(t.oid) ?? [] });
    schemas.set(t.schema_oid, s);
  }
  // Schemas without tables are listed too.
  for (
    const s of await conn.query<{ name: string; oid: string }>(
      `SELECT nspname AS name, oid::text AS oid FROM pg_namespace
        WHERE nspname NOT IN ('pg_catalog', 'information_schema')
          AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp\\_%'`,
    )
  ) if (!schemas.has(s.oid)) schemas.set(s.oid, { ...s, tables: [] });
  return {
    name: db.name,
    oid: db.oid,
    path: `base/${db.oid}`,
    catalog,
    schemas: [...schemas.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  };
}

/** The map as the bytes of the part's file. */
export function encodeRelationMap(map: PgRelationMap): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(map) + "\n");
}

/** The part holding `map` (computed before the part is read). */
export function relationMapPart(map: () => PgRelationMap): StreamPart {
  return {
    name: PG_RELATIONS_PART,
    kind: "stream",
    fileName: PG_RELATIONS_FILE,
    open: () => {
      const bytes = encodeRelationMap(map());
      return Promise.resolve((async function* () {
        yield bytes;
      })());
    },
  };
}

/** Options of {@linkcode withRelationMap}. */
export interface WithRelationMapOptions extends PgConnectOptions {
  /**
   * Back up only these (`DB.SCHEMA` or `DB.SCHEMA.TABLE`): the other
   * relations' files are left out of the data and tablespace parts (see
   * {@linkcode relationSelector}). Default: everything.
   */
  readonly only?: readonly string[];
}

/**
 * The PostgreSQL source `inner` (pg_source.ts) with the relation map: once
 * `inner.parts()` has started the backup, the map is read from the server
 * (the data directory is the `data` part's) and stored as the last part,
 * {@linkcode PG_RELATIONS_PART}. With `only`, the data and tablespace parts
 * leave out the files of every relation that is not selected (names that
 * the map does not hold are refused, by name, before anything is read).
 */
export function withRelationMap(
  inner: Source,
  uri: string,
  options: WithRelationMapOptions = {},
): Source {
  let map: PgRelationMap | null = null;
  // The inner source fills its settings in as the backup runs: add to the same object.
  if (options.only) {
    (inner.info.settings as Record<string, string>)["pg.only"] = JSON.stringify(options.only);
  }
  return {
    info: inner.info,
    ...(inner.readsMost !== undefined ? { readsMost: inner.readsMost } : {}),
    parts: async (): Promise<SourcePart[]> => {
      const parts = await inner.parts();
      const data = parts.find((p) => p.name === "data");
      if (!data || data.kind !== "tree") {
        throw new Error("internal error: a PostgreSQL source without its data part");
      }
      map = await readRelationMap(uri, { ...options, dataDir: data.path });
      if (options.only) {
        const only = options.only;
        map = { ...map, only };
        const keep = relationSelector(map, selectionOf(map, only));
        return [
          ...parts.map((p) => {
            if (p.kind !== "tree") return p;
            const space = /^tablespace-(\d+)$/.exec(p.name)?.[1];
            const prefix = space ? `pg_tblspc/${space}/` : "";
            const exclude = p.exclude;
            return {
              ...p,
              exclude: (rel: string) => (exclude?.(rel) ?? false) || !keep(prefix + rel),
            };
          }),
          relationMapPart(() => map!),
        ];
      }
      return [...parts, relationMapPart(() => map!)];
    },
    ...(inner.catalog ? { catalog: inner.catalog.bind(inner) } : {}),
    ...(inner.close ? { close: inner.close.bind(inner) } : {}),
  };
}

/** A table of the map with its database and schema. */
export interface FoundTable {
  readonly db: PgDatabaseMap;
  readonly schema: PgSchemaMap;
  readonly table: PgTableMap;
}

/** Every table of the map. */
export function allTables(map: PgRelationMap): FoundTable[] {
  const out: FoundTable[] = [];
  for (const db of map.databases) {
    for (const schema of db.schemas) {
      for (const table of schema.tables) out.push({ db, schema, table });
    }
  }
  return out;
}

/** True when a backup with this map holds the table (a partial backup holds only its selection). */
export function holdsTable(map: PgRelationMap, t: FoundTable): boolean {
  if (!map.only) return true;
  return map.only.some((o) => {
    const p = splitName(o, splitLoose(o) === 3 ? 3 : 2);
    return p.length === 2
      ? p[0] === t.db.name && p[1] === t.schema.name
      : p[0] === t.db.name && p[1] === t.schema.name && p[2] === t.table.name;
  });
}

/**
 * The tables `names` (`DB.SCHEMA.TABLE`, or `DB.SCHEMA` for all of a
 * schema's) select in `map`.
 *
 * @throws {InvalidInput} naming each one the map does not hold.
 */
export function selectionOf(map: PgRelationMap, names: readonly string[]): FoundTable[] {
  const tables = allTables(map);
  const out: FoundTable[] = [];
  const missing: string[] = [];
  for (const n of names) {
    const dots = splitLoose(n);
    if (dots === 2) {
      const [db, schema] = splitName(n, 2) as [string, string];
      const d = map.databases.find((x) => x.name === db);
      const s = d?.schemas.find((x) => x.name === schema);
      if (!s) {
        missing.push(n);
        continue;
      }
      for (const t of tables) if (t.schema === s && !out.includes(t)) out.push(t);
    } else {
      const t = parseTableName(n);
      const f = tables.find((x) =>
        x.db.name === t.db && x.schema.name === t.schema && x.table.name === t.table
      );
      if (!f) missing.push(n);
      else if (!out.includes(f)) out.push(f);
    }
  }
  if (missing.length) {
    throw new InvalidInput(
      `${missing.map((m) => `"${m}"`).join(", ")} ${
        missing.length === 1 ? "is" : "are"
      } not in the server's catalog: name existing DB.SCHEMA or DB.SCHEMA.TABLE`,
    );
  }
  return out;
}

/** How many name parts `n` has (2 or 3), honouring quotes. */
function splitLoose(n: string): number {
  try {
    return splitName(n, 3).length;
  } catch {
    splitName(n, 2);
    return 2;
  }
}

const RELFILE = /^(\d+)(?:_(?:fsm|vm|init))?(?:\.\d+)?$/;

/**
 * The files to restore (or back up) for `tables`: a predicate over paths
 * relative to the data directory (tablespace files as
 * `pg_tblspc/<oid>/...`). True for everything outside the databases'
 * directories (global/, pg_xact/, pg_multixact/, configuration, ...), for the
 * files of each database's directories that are not relation files
 * (PG_VERSION, pg_filenode.map), for the system catalogs of the databases
 * `tables` are in, and for every relation of `tables`; false for the files
 * of every other relation the map knows (a restore makes them sparse files of
 * their size). A relation file the map does not know is kept: it may be
 * needed, and only the map's relations are known to be safe to leave out.
 */
export function relationSelector(
  map: PgRelationMap,
  tables: readonly FoundTable[],
): (rel: string) => boolean {
  const known = new Set<string>();
  const keep = new Set<string>();
  const dbs = new Set(tables.map((t) => t.db));
  for (const db of map.databases) {
    for (const f of Object.keys(db.catalog)) {
      known.add(f);
      if (dbs.has(db)) keep.add(f);
    }
    for (const s of db.schemas) {
      for (const t of s.tables) {
        const wanted = tables.some((x) => x.table === t);
        for (const r of t.relations) {
          for (const f of Object.keys(r.files)) {
            known.add(f);
            if (wanted) keep.add(f);
          }
          known.add(r.path);
          if (wanted) keep.add(r.path);
        }
      }
    }
  }
  return (rel: string) => {
    const name = rel.slice(rel.lastIndexOf("/") + 1);
    if (!RELFILE.test(name)) return true;
    if (!known.has(rel)) return true;
    return keep.has(rel);
  };
}

/** The map of a backup, or null when it has none (a backup older than the map, or not PostgreSQL). */
export async function loadRelationMap(
  repo: Repository,
  record: ManifestRecord,
): Promise<PgRelationMap | null> {
  const part = record.manifest.parts.find((p) => p.name === PG_RELATIONS_PART);
  if (!part) return null;
  await repo.loadIndex();
  for (const n of await repo.loadTree(part.root, `backup ${record.name}:${part.name}`)) {
    if (n.type !== NodeType.file || n.name !== PG_RELATIONS_FILE) continue;
    const chunks: Uint8Array[] = [];
    for (const b of n.blocks) chunks.push(await repo.readBlob(b, n.name));
    const text = new TextDecoder().decode(concat(chunks));
    try {
      const map = JSON.parse(text) as PgRelationMap;
      if (typeof map.version !== "number" || !Array.isArray(map.databases)) throw new Error();
      return map;
    } catch {
      throw new InvalidInput(`backup ${record.name} has a relation map that cannot be read`);
    }
  }
  return null;
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((a, x) => a + x.length, 0));
  let pos = 0;
  for (const x of chunks) {
    out.set(x, pos);
    pos += x.length;
  }
  return out;
}

/** The bytes of a relation's files. */
export function relationBytes(r: PgRelationFiles): number {
  return Object.values(r.files).reduce((a, b) => a + b, 0);
}

/** The lines `show` prints for a map. */
export function describeRelationMap(map: PgRelationMap): string[] {
  const lines: string[] = [
    `relations  map of ${map.time}${
      map.only ? ` (this backup holds only ${map.only.join(", ")})` : ""
    }`,
  ];
  for (const db of map.databases) {
    lines.push(
      `database   ${db.name} (oid ${db.oid}, ${db.path}, ${
        Object.keys(db.catalog).length
      } catalog files)`,
    );
    for (const s of db.schemas) {
      lines.push(`  schema   ${db.name}.${s.name} (oid ${s.oid}): ${s.tables.length} table(s)`);
      for (const t of s.tables) {
        const bytes = t.relations.reduce((a, r) => a + relationBytes(r), 0);
        const held = holdsTable(map, { db, schema: s, table: t }) ? "" : " (not held)";
        lines.push(
          `    table  ${
            showTable({ db: db.name, schema: s.name, table: t.name })
          } (oid ${t.oid}, ${bytes} bytes)${held}`,
        );
        for (const r of t.relations) {
          const files = Object.keys(r.files);
          lines.push(
            `      ${r.role.padEnd(11)} ${r.name} ${r.path}${
              files.length > 1 ? ` (+${files.length - 1} fork/segment files)` : ""
            }`,
          );
        }
      }
    }
  }
  return lines;
}
