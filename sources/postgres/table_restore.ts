/**
 * Restoring single tables of a PostgreSQL base backup into a running server
 * (`restore --to postgresql://... --table DB.SCHEMA.TABLE [--as-of TIME]`):
 *
 * 1. Checks the target server first (reachable; each target table absent,
 *    or, with `clean`, what `DROP TABLE ... CASCADE` would drop), so that a
 *    refusal writes nothing anywhere.
 * 2. Restores, with the point-in-time recovery of pg_restore.ts and its
 *    file selection, only what the backup's relation map (relation_map.ts)
 *    names for the tables, their database's system catalogs and everything
 *    outside the databases' directories (global/, pg_xact/, ...) into a
 *    private scratch directory; every other relation file becomes a sparse
 *    file of its size, as pgBackRest does for `--db-include`. Tablespaces go
 *    below the scratch directory too.
 * 3. Starts a private PostgreSQL on it (no TCP listener, a socket in the
 *    scratch directory, trust on that socket only, no archiving, no
 *    autovacuum), which replays the archived WAL to the target and promotes.
 * 4. Renames there when asked (the table, its indexes and owned sequences
 *    whose names start with the table's), dumps the tables with PostgreSQL's
 *    own `pg_dump`, and loads them into the target server with `psql` in one
 *    transaction per database: create the target schema when missing, drop
 *    the existing targets (`clean`), create and fill the tables, then check
 *    each table's row count against the recovered one (a mismatch rolls the
 *    transaction back). Foreign keys are left out (they would point into
 *    the live data): the result lists them.
 * 5. Stops the scratch server and removes the scratch directory, whatever
 *    happened. The live server serves all the while.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { Buffer } from "node:buffer";
import process from "node:process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { BlobStore } from "../../store/drivers/types.ts";
import { CommandFailed, DatabaseError, InvalidInput, StorageFull } from "../../store/errors.ts";
import { checkpoint } from "../../store/cancel.ts";
import { type ManifestRecord, Repository } from "../../store/repository.ts";
import { NodeType, type TreeNode } from "../../formats/tree.ts";
import { PgConnection, type PgConnectOptions, resolvePgUri } from "./connection.ts";
import { PG_DATA_PART } from "./pg_source.ts";
import { fetchWal, listWal } from "../../store/wal_archive.ts";
import {
  type PgFileSelection,
  type PgRestoreOptions,
  type PgRestorePlan,
  planPgRestore,
  restorePg,
} from "./pg_restore.ts";
import {
  type FoundTable,
  holdsTable,
  loadRelationMap,
  type PgRelationMap,
  relationBytes,
  relationSelector,
  selectionOf,
  showTable,
  type TableName,
  uriForDatabase,
} from "./relation_map.ts";

/** Options of {@linkcode planPgTableRestore} and {@linkcode restorePgTables}. */
export interface PgTableRestoreOptions extends Omit<PgRestoreOptions, "select" | "tablespaceRoot"> {
  /** The tables to restore, as the backup names them. */
  readonly tables: readonly TableName[];
  /** Where each goes (same order and length; default: the same names). */
  readonly targets?: readonly TableName[];
  /** Drop an existing target first (`DROP TABLE ... CASCADE`); without it one is refused. */
  readonly clean?: boolean;
  /** Directory of PostgreSQL's programs (default: `/usr/lib/postgresql/<major>/bin`, else PATH). */
  readonly pgBin?: string;
  /** Where the scratch directory is made (default: the system's temporary directory). */
  readonly scratchDir?: string;
  /** Connection options of the target server. */
  readonly connect?: PgConnectOptions;
  /** Seconds the scratch server may take to recover (default 3600). */
  readonly recoveryTimeoutSeconds?: number;
}

/** One table of a table restore. */
export interface PgTableRestoreItem {
  /** `DB.SCHEMA.TABLE` in the backup. */
  readonly source: string;
  /** `DB.SCHEMA.TABLE` in the target server. */
  readonly target: string;
  /** Bytes of its relation files in the backup (table, TOAST, indexes, sequences). */
  readonly bytes: number;
  /** Its relations in the backup: `role name`. */
  readonly relations: readonly string[];
  /** The target table exists (then only `clean` restores it). */
  readonly exists: boolean;
  /** What `clean` drops with it (objects that depend on it), as PostgreSQL describes them. */
  readonly drops: readonly string[];
  /** The target schema does not exist and is created. */
  readonly createsSchema: boolean;
}

/** What a table restore will do (the dry run). */
export interface PgTableRestorePlan {
  /** The target server, without its password. */
  readonly server: string;
  readonly tables: readonly PgTableRestoreItem[];
  /** What the scratch restore reads and writes (the base backup, the WAL, the files). */
  readonly scratch: PgRestorePlan;
  /** Where the scratch directory is made. */
  readonly scratchDir: string;
  readonly pgBin: string;
}

/** What a table restore did. */
export interface PgTableRestoreResult extends PgTableRestorePlan {
  /** Rows of each target table, checked equal to the recovered table's. */
  readonly rows: readonly { target: string; rows: number }[];
  /** Foreign keys of the restored tables that were not restored (`pg_restore -l` entries). */
  readonly foreignKeysLeftOut: readonly string[];
  readonly durationMs: number;
}

/** A double-quoted SQL identifier. */
export function ident(s: string): string {
  return `"${s.replaceAll('"', '""')}"`;
}

/** A SQL string literal. */
function literal(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** `"schema"."table"`. */
function qualified(t: TableName): string {
  return `${ident(t.schema)}.${ident(t.table)}`;
}

const same = (a: TableName, b: TableName) =>
  a.db === b.db && a.schema === b.schema && a.table === b.table;

/** Checks the pairs' shape: same lengths, no table twice, no target that is another's source. */
function pairsOf(options: PgTableRestoreOptions): { source: TableName; target: TableName }[] {
  const targets = options.targets ?? options.tables;
  if (targets.length !== options.tables.length) {
    throw new InvalidInput(
      `${options.tables.length} table(s) and ${targets.length} target(s) were given: give one target per table, in the same order`,
    );
  }
  if (options.tables.length === 0) throw new InvalidInput("no table to restore: name one");
  const pairs = options.tables.map((source, i) => ({ source, target: targets[i]! }));
  for (const [i, p] of pairs.entries()) {
    for (const q of pairs.slice(i + 1)) {
      if (same(p.source, q.source)) {
        throw new InvalidInput(`table ${showTable(p.source)} is named twice: name it once`);
      }
      if (same(p.target, q.target)) {
        throw new InvalidInput(
          `target ${showTable(p.target)} is named twice: give each table its own`,
        );
      }
    }
    for (const q of pairs) {
      if (q !== p && same(p.target, q.source)) {
        throw new InvalidInput(
          `target ${showTable(p.target)} is also restored from the backup (as ${
            showTable(q.target)
          }): restore them in two runs`,
        );
      }
    }
  }
  return pairs;
}

/** The programs' directory for the backup's major version. */
function pgBinFor(given: string | undefined, version: string | undefined): string {
  if (given) return path.resolve(given);
  const major = Math.floor(Number(version ?? "0") / 10000);
  const debian = `/usr/lib/postgresql/${major}/bin`;
  if (major > 0 && fs.existsSync(path.join(debian, "pg_ctl"))) return debian;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && fs.existsSync(path.join(dir, "pg_ctl"))) return dir;
  }
  throw new InvalidInput(
    `PostgreSQL ${
      major || ""
    } programs (pg_ctl, postgres, pg_dump, psql) were not found in /usr/lib/postgresql/${major}/bin or PATH: give --pg-bin DIR`,
  );
}

/** Checks the target server: reachable, each target absent (or what `clean` drops). */
async function checkTargets(
  uri: string,
  pairs: { source: TableName; target: TableName }[],
  options: PgTableRestoreOptions,
): Promise<Omit<PgTableRestoreItem, "bytes" | "relations">[]> {
  const out: Omit<PgTableRestoreItem, "bytes" | "relations">[] = [];
  const byDb = new Map<string, typeof pairs>();
  for (const p of pairs) byDb.set(p.target.db, [...(byDb.get(p.target.db) ?? []), p]);
  const refused: string[] = [];
  for (const [db, list] of byDb) {
    const conn = await PgConnection.connect(uriForDatabase(uri, db), options.connect ?? {});
    try {
      for (const p of list) {
        const schema = await conn.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [
          p.target.schema,
        ]);
        const rel = (await conn.query<{ oid: string; kind: string }>(
          `SELECT c.oid::text AS oid, c.relkind::text AS kind FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
          [p.target.schema, p.target.table],
        ))[0];
        let drops: string[] = [];
        if (rel) {
          if (!["r", "p", "m"].includes(rel.kind)) {
            throw new InvalidInput(
              `${
                showTable(p.target)
              } exists in ${conn.target.shown} and is not a table (relkind ${rel.kind}): choose another target with --rename-to or --restore-target-list`,
            );
          }
          drops = (await conn.query<{ what: string }>(DEPENDENTS_SQL, [rel.oid])).map((r) =>
            r.what
          );
          if (!options.clean) refused.push(showTable(p.target));
        }
        out.push({
          source: showTable(p.source),
          target: showTable(p.target),
          exists: rel !== undefined,
          drops,
          createsSchema: schema.length === 0,
        });
      }
    } finally {
      await conn.close();
    }
  }
  if (refused.length) {
    throw new InvalidInput(
      `${refused.join(", ")} already exist${
        refused.length === 1 ? "s" : ""
      } in the target server: give --clean to drop and replace ${
        refused.length === 1 ? "it" : "them"
      } (DROP TABLE ... CASCADE; the dry run lists what that drops), or another target name`,
    );
  }
  return out;
}

/** What `DROP TABLE ... CASCADE` of relation $1 drops besides the table itself. */
const DEPENDENTS_SQL = `
SELECT DISTINCT CASE WHEN d.classid = 'pg_rewrite'::regclass
         THEN (SELECT pg_describe_object('pg_class'::regclass, r.ev_class, 0)
                 FROM pg_rewrite r WHERE r.oid = d.objid)
         ELSE pg_describe_object(d.classid, d.objid, d.objsubid) END AS what
  FROM pg_depend d
 WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::oid AND d.deptype = 'n'
   AND NOT (d.classid = 'pg_rewrite'::regclass
            AND (SELECT ev_class FROM pg_rewrite WHERE oid = d.objid) = $1::oid)
   AND NOT (d.classid = 'pg_constraint'::regclass
            AND (SELECT conrelid FROM pg_constraint WHERE oid = d.objid) = $1::oid)
 ORDER BY 1`;

/** The files of a table restore (see the module documentation). */
async function selectionFor(
  repo: Repository,
  record: ManifestRecord,
  map: PgRelationMap,
  tables: readonly FoundTable[],
): Promise<PgFileSelection> {
  const keep = relationSelector(map, tables);
  const include: Record<string, string[]> = {};
  const sparse: Record<string, Record<string, number>> = {};
  const seen = new Set<string>();
  const what = `backup ${record.name}`;
  const dbFiles = async (
    node: TreeNode,
    rel: string,
    prefix: string,
    globs: string[],
    sp: Record<string, number>,
  ) => {
    for (const f of node.subtree ? await repo.loadTree(node.subtree, `${what}:${rel}`) : []) {
      const r = `${rel}/${f.name}`;
      seen.add(prefix + r);
      if (f.type !== NodeType.file) globs.push(r);
      else if (keep(prefix + r)) globs.push(r);
      else sp[r] = f.size;
    }
  };
  const tablespaceParts: string[] = [];
  for (const part of record.manifest.parts) {
    const space = /^tablespace-(\d+)$/.exec(part.name)?.[1];
    if (part.name !== PG_DATA_PART && !space) continue;
    if (space) tablespaceParts.push(space);
    const prefix = space ? `pg_tblspc/${space}/` : "";
    const globs: string[] = [];
    const sp: Record<string, number> = {};
    for (const top of await repo.loadTree(part.root, `${what}:${part.name}`)) {
      const isDir = top.type === NodeType.dir && top.subtree;
      if (isDir && ((!space && top.name === "base") || (space && /^PG_/.test(top.name)))) {
        for (const db of await repo.loadTree(top.subtree!, `${what}:${top.name}`)) {
          if (db.type === NodeType.dir) {
            await dbFiles(db, `${top.name}/${db.name}`, prefix, globs, sp);
          } else globs.push(`${top.name}/${db.name}`);
        }
        if (!globs.some((g) => g.startsWith(`${top.name}/`))) globs.push(top.name);
      } else globs.push(top.name);
    }
    include[part.name] = globs;
    sparse[part.name] = sp;
  }
  if (map.only) {
    // A schema- or table-level backup left the other relations' files out: make them sparse.
    const add = (file: string, size: number) => {
      if (seen.has(file) || keep(file)) return;
      const space = /^pg_tblspc\/(\d+)\/(.*)$/.exec(file);
      if (space) {
        if (!tablespaceParts.includes(space[1]!)) return;
        (sparse[`tablespace-${space[1]}`] ??= {})[space[2]!] = size;
      } else (sparse[PG_DATA_PART] ??= {})[file] = size;
    };
    for (const db of map.databases) {
      for (const [f, size] of Object.entries(db.catalog)) add(f, size);
      for (const s of db.schemas) {
        for (const t of s.tables) {
          for (const r of t.relations) {
            for (const [f, size] of Object.entries(r.files)) add(f, size);
          }
        }
      }
    }
  }
  return { include, sparse };
}

/** The relation map and the tables of it, for a chosen backup; refuses what it does not hold. */
async function tablesOf(
  repo: Repository,
  record: ManifestRecord,
  pairs: { source: TableName }[],
): Promise<{ map: PgRelationMap; tables: FoundTable[] }> {
  const map = await loadRelationMap(repo, record);
  if (!map) {
    throw new InvalidInput(
      `backup ${record.name} has no relation map (it was taken by an older bendsave): restore the whole cluster with --to NEW_DATA_DIR, or take a new base backup`,
    );
  }
  let tables: FoundTable[];
  try {
    tables = selectionOf(map, pairs.map((p) => showTable(p.source)));
  } catch (e) {
    if (!(e instanceof InvalidInput)) throw e;
    throw new InvalidInput(
      e.message.replace("the server's catalog", `backup ${record.name}`).replace(
        "name existing DB.SCHEMA or DB.SCHEMA.TABLE",
        "name a table of that backup (bendsave show lists them)",
      ),
    );
  }
  const notHeld = tables.filter((t) => !holdsTable(map, t));
  if (notHeld.length) {
    throw new InvalidInput(
      `backup ${record.name} holds only ${map.only!.join(", ")}, not ${
        notHeld.map((t) => showTable({ db: t.db.name, schema: t.schema.name, table: t.table.name }))
          .join(", ")
      }: restore it from a backup that holds it`,
    );
  }
  return { map, tables };
}

interface Prepared {
  readonly pairs: { source: TableName; target: TableName }[];
  readonly plan: PgTableRestorePlan;
  readonly options: PgRestoreOptions;
  chosen: { record: ManifestRecord; tables: FoundTable[] } | null;
}

async function prepare(
  store: BlobStore,
  uri: string,
  options: PgTableRestoreOptions,
  scratchData: string,
): Promise<Prepared> {
  const pairs = pairsOf(options);
  const checked = await checkTargets(uri, pairs, options);
  const prepared: Prepared = {
    pairs,
    chosen: null,
    options: {} as PgRestoreOptions,
    plan: {} as PgTableRestorePlan,
  };
  const { tables: _t, targets: _g, clean: _c, pgBin: _b, scratchDir: _s, connect: _n, ...rest } =
    options;
  const restoreOptions: PgRestoreOptions = {
    ...rest,
    tablespaceRoot: path.join(path.dirname(scratchData), "tablespaces"),
    select: async (repo, record) => {
      const { map, tables } = await tablesOf(repo, record, pairs);
      prepared.chosen = { record, tables };
      return await selectionFor(repo, record, map, tables);
    },
  };
  const scratch = await planPgRestore(store, scratchData, restoreOptions);
  const tables = prepared.chosen!.tables;
  const items = checked.map((c, i) => {
    const t = tables.find((x) =>
      x.db.name === pairs[i]!.source.db && x.schema.name === pairs[i]!.source.schema &&
      x.table.name === pairs[i]!.source.table
    )!;
    return {
      ...c,
      bytes: t.table.relations.reduce((a, r) => a + relationBytes(r), 0),
      relations: t.table.relations.map((r) => `${r.role} ${r.name}`),
    };
  });
  const version = prepared.chosen!.record.manifest.source.settings["pg.version"];
  Object.assign(prepared, {
    options: restoreOptions,
    plan: {
      server: resolvePgUri(uri, options.connect?.env).shown,
      tables: items,
      scratch,
      scratchDir: path.resolve(options.scratchDir ?? os.tmpdir()),
      pgBin: pgBinFor(options.pgBin, version),
    },
  });
  return prepared;
}

/**
 * Works out what a table restore would do, writing nothing: checks the
 * target server and the backup (every refusal of {@linkcode restorePgTables}
 * happens here).
 */
export async function planPgTableRestore(
  store: BlobStore,
  uri: string,
  options: PgTableRestoreOptions,
): Promise<PgTableRestorePlan> {
  const dir = path.join(path.resolve(options.scratchDir ?? os.tmpdir()), "bendsave-table-restore");
  return (await prepare(store, uri, options, path.join(dir, "data"))).plan;
}

/** What a program that ran printed, and how it ended. */
interface ProcessOutput {
  readonly success: boolean;
  readonly code: number;
  readonly stdout: Uint8Array;
  readonly stderr: Uint8Array;
}

/**
 * Runs a program to its end with node:child_process (the bun-built
 * executable has no Deno namespace); rejects when it cannot be started.
 */
function output(cmd: string, args: string[], env?: Record<string, string>): Promise<ProcessOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      // Added to this process's environment, as Deno.Command's env is.
      env: { ...process.env, ...(env ?? {}) },
      stdio: ["ignore", "pipe", "pipe"],
      cwd: "/",
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on("data", (d: Buffer) => out.push(d));
    child.stderr!.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({
        success: code === 0,
        code: code ?? -1,
        stdout: new Uint8Array(Buffer.concat(out)),
        stderr: new Uint8Array(Buffer.concat(err)),
      }));
  });
}

/** Runs a program; throws {@linkcode CommandFailed} with the end of its error output. */
async function run(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string>; what: string; log?: string },
): Promise<string> {
  let out: ProcessOutput;
  try {
    out = await output(cmd, args, { ...(options.env ?? {}), LC_MESSAGES: "C" });
  } catch (e) {
    throw new CommandFailed(`${options.what}: cannot run ${cmd} (${(e as Error).message})`);
  }
  const dec = new TextDecoder();
  if (!out.success) {
    const err = dec.decode(out.stderr).trim().split("\n").slice(-3).join(" / ");
    const log = options.log ? logTail(options.log) : "";
    throw new CommandFailed(
      `${options.what} failed (${path.basename(cmd)} exit ${out.code}): ${err}${
        log ? `; server log: ${log}` : ""
      }`,
    );
  }
  return dec.decode(out.stdout);
}

/**
 * Runs `from | to` (pg_dump into psql): the first's output streams into the
 * second. When the first fails, the second is killed before it can commit.
 * Throws {@linkcode CommandFailed} naming the one that failed.
 */
async function pipeline(
  from: { cmd: string; args: string[]; env: Record<string, string> },
  to: { cmd: string; args: string[]; env: Record<string, string> },
  what: string,
): Promise<void> {
  const start = (c: typeof from, stdin: "ignore" | "pipe", stdout: "ignore" | "pipe") => {
    const child = spawn(c.cmd, c.args, {
      env: { ...process.env, ...c.env, LC_MESSAGES: "C" },
      stdio: [stdin, stdout, "pipe"],
      cwd: "/",
    });
    let err = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
    const status = new Promise<{ success: boolean; code: number }>((resolve, reject) => {
      child.on(
        "error",
        (e) => reject(new CommandFailed(`${what}: cannot run ${c.cmd} (${(e as Error).message})`)),
      );
      child.on("close", (code) => resolve({ success: code === 0, code: code ?? -1 }));
    });
    return { child, status, stderr: status.then(() => err, () => err) };
  };
  const a = start(from, "ignore", "pipe");
  const b = start(to, "pipe", "ignore");
  const errA = a.stderr;
  const errB = b.stderr;
  a.child.stdout!.pipe(b.child.stdin!);
  b.child.stdin!.on("error", () => {}); // psql ended early: its status says why
  const sa = await a.status;
  if (!sa.success) {
    try {
      b.child.kill("SIGKILL");
    } catch { /* ended */ }
  }
  const sb = await b.status;
  const tail = async (t: Promise<string>) => (await t).trim().split("\n").slice(-3).join(" / ");
  if (!sa.success) {
    throw new CommandFailed(
      `${what} failed (${path.basename(from.cmd)} exit ${sa.code}): ${await tail(errA)}`,
    );
  }
  if (!sb.success) {
    throw new CommandFailed(
      `${what} failed (${
        path.basename(to.cmd)
      } exit ${sb.code}; nothing was committed): ${await tail(
        errB,
      )}`,
    );
  }
}

/**
 * Fetches the WAL the scratch server's replay reads (the plan's range, and
 * the timeline history files) into `dir` with this process, four at a time,
 * and makes `restore_command` copy from there first: one program start per
 * segment less. Anything else is still fetched by the plan's restore_command.
 */
async function prefetchWal(
  store: BlobStore,
  plan: PgRestorePlan,
  dir: string,
  data: string,
): Promise<void> {
  if (!plan.wal) return;
  const { first, last } = plan.wal;
  const timeline = parseInt(first.slice(0, 8), 16);
  const names = (await listWal(await Repository.open(store), { systemId: plan.systemId })).map((
    w,
  ) => w.name).filter((
    n,
  ) =>
    /^[0-9A-F]{8}\.history$/.test(n) ||
    (/^[0-9A-F]{24}$/.test(n) && parseInt(n.slice(0, 8), 16) >= timeline &&
      n.slice(8) >= first.slice(8) && n.slice(8) <= last.slice(8))
  );
  fs.mkdirSync(dir, { mode: 0o700 });
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++]!;
      await fetchWal(store, name, path.join(dir, name), { systemId: plan.systemId });
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const command = `if [ -f ${q(dir)}/%f ]; then cp ${
    q(dir)
  }/%f %p; else ${plan.settings.restore_command}; fi`;
  fs.appendFileSync(
    path.join(data, "postgresql.auto.conf"),
    `\n# bendsave restore --table: the WAL fetched ahead into the scratch directory\nrestore_command = ${
      conf(command)
    }\n`,
  );
}

/**
 * The invalid-page warnings of a scratch server's log (PostgreSQL reports
 * each remaining one once replay is consistent) that name a relation file of
 * `tables` or of their databases' catalogs: those must not happen.
 */
export function invalidPagesOf(log: string, tables: readonly FoundTable[]): string[] {
  const restored = new Set<string>();
  for (const t of tables) {
    for (const r of t.table.relations) restored.add(r.path);
    for (const f of Object.keys(t.db.catalog)) restored.add(f.replace(/(_\w+)?(\.\d+)?$/, ""));
  }
  let text = "";
  try {
    text = fs.readFileSync(log, "utf8");
  } catch {
    return [];
  }
  const out: string[] = [];
  for (
    const m of text.matchAll(
      /page \d+ of relation (\S+) (?:is|was) uninitialized|page \d+ of relation (\S+) (?:does|did) not exist/g,
    )
  ) {
    const rel = (m[1] ?? m[2] ?? "").replace(/_(?:fsm|vm|init)$/, "");
    if (restored.has(rel)) out.push(m[0]);
  }
  return out;
}

/** The last errors of a server log, on one line. */
function logTail(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").trim().split("\n").filter((l) =>
      /FATAL|PANIC|ERROR|WARNING: .*page/.test(l)
    ).slice(-4).join(" / ");
  } catch {
    return "";
  }
}

/** Quotes a value for postgresql.conf. */
function conf(s: string): string {
  return `'${s.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

/** The scratch server: started on the recovered data directory, stopped and removed by dispose. */
interface Scratch {
  readonly socket: string;
  readonly port: number;
  readonly user: string;
  uri(db: string): string;
}

async function startScratch(
  root: string,
  data: string,
  bin: string,
  options: { timeoutSeconds: number; users: string[]; socket: string },
): Promise<Scratch> {
  const socket = options.socket;
  const hba = path.join(root, "pg_hba.conf");
  fs.writeFileSync(hba, "local all all trust\n", { mode: 0o600 });
  const identFile = path.join(root, "pg_ident.conf");
  fs.writeFileSync(identFile, "", { mode: 0o600 });
  if (!fs.existsSync(path.join(data, "postgresql.conf"))) {
    fs.writeFileSync(path.join(data, "postgresql.conf"), "", { mode: 0o600 });
  }
  const port = 20000 + Math.floor(Math.random() * 20000);
  const settings: Record<string, string> = {
    port: String(port),
    listen_addresses: "",
    unix_socket_directories: socket,
    unix_socket_permissions: "0700",
    // Never the live server's files, whatever the restored postgresql.conf names.
    data_directory: data,
    external_pid_file: "",
    // No background jobs of preloaded extensions (pg_cron, ...) in the scratch server.
    shared_preload_libraries: "",
    session_preload_libraries: "",
    local_preload_libraries: "",
    hba_file: hba,
    ident_file: identFile,
    archive_mode: "off",
    autovacuum: "off",
    hot_standby: "off",
    logging_collector: "off",
    log_destination: "stderr",
    cluster_name: "bendsave-table-restore",
    // The relations left out are all-zero pages: replay of a record that touches one without a
    // full-page image (a vacuum's all-visible mark) finds an "invalid page". Those pages are
    // never read; they are reported as warnings, and one in a restored relation fails the restore
    // (invalidPagesOf).
    ignore_invalid_pages: "on",
    log_min_messages: "warning",
    shared_buffers: "64MB",
    // A scratch server is thrown away: no fsync (nor the data directory's sync at start-up).
    fsync: "off",
    synchronous_commit: "off",
    max_connections: "20",
  };
  fs.appendFileSync(
    path.join(data, "postgresql.auto.conf"),
    "\n# bendsave restore --table: a private scratch server\n" +
      Object.entries(settings).map(([k, v]) => `${k} = ${conf(v)}`).join("\n") + "\n",
  );
  const log = path.join(root, "server.log");
  await run(path.join(bin, "pg_ctl"), [
    "-D",
    data,
    "-l",
    log,
    "-w",
    "-t",
    String(options.timeoutSeconds),
    "start",
  ], { what: "the scratch PostgreSQL server's recovery", log });
  const uriOf = (user: string, db: string) =>
    `postgresql://${encodeURIComponent(user)}@/${encodeURIComponent(db)}?host=${
      encodeURIComponent(socket)
    }&port=${port}`;
  // The bootstrap superuser (oid 10), found through any role that logs in.
  let last = "";
  for (const user of options.users) {
    let conn: PgConnection | null = null;
    // pg_ctl -w returns once the server is consistent; it accepts connections once it has
    // replayed to the target and promoted.
    for (const deadline = Date.now() + options.timeoutSeconds * 1000;;) {
      try {
        conn = await PgConnection.connect(uriOf(user, "template1"), { env: {} });
        break;
      } catch (e) {
        last = (e as Error).message;
        if (!/not accepting connections|starting up|recovery|no server socket/.test(last)) break;
      }
      const status = await output(path.join(bin, "pg_ctl"), ["-D", data, "status"]);
      if (!status.success || Date.now() > deadline) {
        throw new CommandFailed(
          `the scratch PostgreSQL server's recovery ${
            status.success ? "did not end in time" : "failed"
          }; server log: ${logTail(log)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    if (!conn) continue;
    try {
      if (await conn.value<boolean>("SELECT pg_is_in_recovery()")) {
        throw new DatabaseError(
          "the scratch PostgreSQL server is still in recovery after starting: the recovery target was not reached",
        );
      }
      const boot = await conn.value<string>("SELECT rolname FROM pg_roles WHERE oid = 10");
      return { socket, port, user: boot, uri: (db) => uriOf(boot, db) };
    } finally {
      await conn.close();
    }
  }
  throw new DatabaseError(
    `no role of the recovered cluster logs in on the scratch server (tried ${
      options.users.join(", ")
    }; ${last}): run bendsave as the cluster's owner`,
  );
}

/** Renames, in the scratch server, each source to its target (table, indexes, owned sequences). */
async function renameInScratch(
  conn: PgConnection,
  pairs: { source: TableName; target: TableName }[],
): Promise<void> {
  const moving = pairs.filter((p) => !same(p.source, p.target));
  if (moving.length === 0) return;
  const stage = `bendsave_stage_${crypto.randomUUID().slice(0, 8)}`;
  await conn.query(`CREATE SCHEMA ${ident(stage)}`);
  const finals: {
    tmp: string;
    pair: typeof moving[0];
    others: { tmp: string; final: string; kind: string }[];
  }[] = [];
  for (const [i, p] of moving.entries()) {
    const oid = await conn.value<string>(
      `SELECT ${literal(qualified(p.source))}::regclass::oid::text`,
    );
    const others = await conn.query<{ name: string; kind: string }>(
      `SELECT c.relname AS name, c.relkind::text AS kind FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = $1::oid
       UNION ALL
       SELECT c.relname, c.relkind::text FROM pg_depend d JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'S'
        WHERE d.refobjid = $1::oid AND d.refclassid = 'pg_class'::regclass
          AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')`,
      [oid],
    );
    const tmp = `bendsave_t${i}`;
    const renamed = others.map((o, j) => {
      // An index or sequence named after the table follows its new name; another one in the
      // same schema gets the new name as a prefix, so that it cannot clash with the live one's.
      const final = p.source.table === p.target.table
        ? o.name
        : o.name.startsWith(p.source.table)
        ? (p.target.table + o.name.slice(p.source.table.length)).slice(0, 63)
        : p.source.schema === p.target.schema
        ? `${p.target.table}_${o.name}`.slice(0, 63)
        : o.name;
      return { name: o.name, tmp: `bendsave_t${i}_${j}`, final, kind: o.kind };
    });
    for (const o of renamed) {
      const what = o.kind === "S" ? "SEQUENCE" : "INDEX";
      await conn.query(
        `ALTER ${what} ${ident(p.source.schema)}.${ident(o.name)} RENAME TO ${ident(o.tmp)}`,
      );
    }
    await conn.query(`ALTER TABLE ${qualified(p.source)} RENAME TO ${ident(tmp)}`);
    await conn.query(
      `ALTER TABLE ${ident(p.source.schema)}.${ident(tmp)} SET SCHEMA ${ident(stage)}`,
    );
    finals.push({ tmp, pair: p, others: renamed });
  }
  for (const f of finals) {
    const t = f.pair.target;
    await conn.query(`CREATE SCHEMA IF NOT EXISTS ${ident(t.schema)}`);
    // A table of the backup under the target's name is replaced (the target server decides with --clean).
    await conn.query(`DROP TABLE IF EXISTS ${qualified(t)} CASCADE`);
    await conn.query(`ALTER TABLE ${ident(stage)}.${ident(f.tmp)} SET SCHEMA ${ident(t.schema)}`);
    await conn.query(`ALTER TABLE ${ident(t.schema)}.${ident(f.tmp)} RENAME TO ${ident(t.table)}`);
    for (const o of f.others) {
      const what = o.kind === "S" ? "SEQUENCE" : "INDEX";
      await conn.query(
        `ALTER ${what} ${ident(t.schema)}.${ident(o.tmp)} RENAME TO ${ident(o.final)}`,
      );
    }
  }
  await conn.query(`DROP SCHEMA ${ident(stage)}`);
}

/** A pg_dump pattern matching exactly `t`. */
function dumpPattern(t: TableName): string {
  return `${ident(t.schema)}.${ident(t.table)}`;
}

/**
 * Restores the tables (see the module documentation). Run it as the
 * cluster's owner (the `postgres` user): PostgreSQL refuses to run as root.
 *
 * @throws {InvalidInput} for a table the backup does not hold (named), an
 * existing target without `clean`, lists of different lengths, a backup
 * without a relation map; before anything is written.
 * @throws {DatabaseError} when the target server cannot be reached (nothing is written).
 * @throws {CommandFailed} when the scratch server, pg_dump or psql fails
 * (the target's transaction is rolled back; the scratch directory is removed).
 */
export async function restorePgTables(
  store: BlobStore,
  uri: string,
  options: PgTableRestoreOptions,
): Promise<PgTableRestoreResult> {
  const started = Date.now();
  if (process.getuid?.() === 0) {
    throw new InvalidInput(
      "restore --table starts a private PostgreSQL server, which refuses to run as root: run bendsave as the cluster's owner (e.g. runuser -u postgres -- bendsave ...)",
    );
  }
  const parent = path.resolve(options.scratchDir ?? os.tmpdir());
  const root = path.join(parent, `bendsave-table-restore-${crypto.randomUUID().slice(0, 8)}`);
  const data = path.join(root, "data");
  // Every check first, writing nothing: the scratch directory is made after them.
  const prepared = await prepare(store, uri, options, data);
  const bin = prepared.plan.pgBin;
  try {
    fs.mkdirSync(root, { mode: 0o700 });
  } catch (e) {
    throw new InvalidInput(
      `the scratch directory cannot be made in "${parent}" (${
        (e as { code?: string }).code ?? (e as Error).message
      }): give --scratch-dir a writable directory with room for the tables and the catalogs`,
    );
  }
  let scratch: Scratch | null = null;
  let socket: string | null = null;
  try {
    await restorePg(store, data, prepared.options);
    // Cancelled (options.signal): the finally below stops the scratch server and removes it.
    await checkpoint(options.signal, "restore");
    await prefetchWal(store, prepared.plan.scratch, path.join(root, "wal"), data);
    const target = resolvePgUri(uri, options.connect?.env);
    // A Unix socket path holds at most 107 bytes: the socket gets a short private directory.
    socket = fs.mkdtempSync(path.join(short(parent), "bendsave-sock-"));
    fs.chmodSync(socket, 0o700);
    scratch = await startScratch(root, data, bin, {
      socket,
      timeoutSeconds: options.recoveryTimeoutSeconds ?? 3600,
      users: [...new Set([target.user, os.userInfo().username, "postgres"])],
    });
    const damaged = invalidPagesOf(path.join(root, "server.log"), prepared.chosen!.tables);
    if (damaged.length) {
      throw new DatabaseError(
        `replay of the archived WAL found invalid pages in restored relations (${
          damaged.slice(0, 3).join("; ")
        }): the base backup or the WAL is damaged; run bendsave verify, or restore from another base backup`,
      );
    }
    const pairs = prepared.pairs;
    const rows: { target: string; rows: number }[] = [];
    const fks: string[] = [];
    const bySource = new Map<string, typeof pairs>();
    for (const p of pairs) bySource.set(p.source.db, [...(bySource.get(p.source.db) ?? []), p]);
    const counts = new Map<typeof pairs[0], { rows: number; indexes: number }>();
    for (const [db, list] of bySource) {
      const conn = await PgConnection.connect(scratch.uri(db), { env: {} });
      try {
        await renameInScratch(conn, list);
        for (const p of list) {
          // Foreign keys would point into the live data: dropped here, listed in the result.
          const keys = await conn.query<{ name: string; def: string }>(
            `SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
              WHERE conrelid = $1::regclass AND contype = 'f' ORDER BY conname`,
            [qualified(p.target)],
          );
          for (const fk of keys) {
            fks.push(`${showTable(p.target)} ${fk.name}: ${fk.def}`);
            await conn.query(
              `ALTER TABLE ${qualified(p.target)} DROP CONSTRAINT ${ident(fk.name)}`,
            );
          }
          counts.set(p, {
            rows: Number(await conn.value(`SELECT count(*)::text FROM ${qualified(p.target)}`)),
            indexes: Number(
              await conn.value(
                `SELECT count(*)::text FROM pg_index WHERE indrelid = $1::regclass`,
                [qualified(p.target)],
              ),
            ),
          });
        }
      } finally {
        await conn.close();
      }
    }
    const env = (db: string) => ({
      PGHOST: scratch!.socket,
      PGPORT: String(scratch!.port),
      PGUSER: scratch!.user,
      PGDATABASE: db,
    });
    await checkpoint(options.signal, "restore"); // the last point before the target server changes
    // One dump per (source database, target database), piped into one transaction.
    const groups = new Map<string, typeof pairs>();
    for (const p of pairs) {
      const k = JSON.stringify([p.source.db, p.target.db]);
      groups.set(k, [...(groups.get(k) ?? []), p]);
    }
    for (const [k, list] of groups) {
      const [srcDb, dstDb] = JSON.parse(k) as [string, string];
      const prelude: string[] = [];
      const checks: string[] = [];
      for (const p of list) {
        prelude.push(`CREATE SCHEMA IF NOT EXISTS ${ident(p.target.schema)};`);
        if (options.clean) prelude.push(`DROP TABLE IF EXISTS ${qualified(p.target)} CASCADE;`);
        const want = counts.get(p)!;
        const fail = (what: string) =>
          `RAISE EXCEPTION 'bendsave: %', ${
            literal(`${showTable(p.target)} does not hold ${what} of the recovered table`)
          };`;
        checks.push(
          `DO $bendsave$ BEGIN
             IF (SELECT count(*) FROM ${qualified(p.target)}) <> ${want.rows} THEN ${
            fail(`the ${want.rows} rows`)
          } END IF;
             IF (SELECT count(*) FROM pg_index WHERE indrelid = ${
            literal(qualified(p.target))
          }::regclass) <> ${want.indexes} THEN ${fail(`the ${want.indexes} indexes`)} END IF;
           END $bendsave$;`,
        );
      }
      await pipeline(
        {
          cmd: path.join(bin, "pg_dump"),
          args: list.flatMap((p) => ["--table", dumpPattern(p.target)]),
          env: env(srcDb),
        },
        {
          cmd: path.join(bin, "psql"),
          args: [
            "-X",
            "-q",
            "--single-transaction",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            prelude.join("\n"),
            "-f",
            "-",
            "-c",
            checks.join("\n"),
            "-d",
            uriForDatabase(uri, dstDb),
          ],
          env: Object.fromEntries(
            Object.entries(options.connect?.env ?? Deno.env.toObject()).filter((e): e is [
              string,
              string,
            ] => e[1] !== undefined),
          ),
        },
        `copying ${list.map((p) => showTable(p.source)).join(", ")} into ${target.shown}`,
      );
      for (const p of list) rows.push({ target: showTable(p.target), rows: counts.get(p)!.rows });
    }
    return {
      ...prepared.plan,
      rows,
      foreignKeysLeftOut: fks,
      durationMs: Date.now() - started,
    };
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOSPC" || code === "EDQUOT" || e instanceof StorageFull) {
      throw new StorageFull(
        `the scratch directory in "${parent}" ran out of space (${
          (e as Error).message.split("\n")[0]
        }): give --scratch-dir a directory with room for the tables, the catalogs and the WAL; the scratch directory was removed and the target server was not changed`,
      );
    }
    throw e;
  } finally {
    if (scratch) {
      await run(path.join(bin, "pg_ctl"), ["-D", data, "stop", "-m", "immediate", "-w"], {
        what: "stopping the scratch server",
      }).catch(() => {});
    } else if (fs.existsSync(path.join(data, "postmaster.pid"))) {
      await run(path.join(bin, "pg_ctl"), ["-D", data, "stop", "-m", "immediate", "-w"], {
        what: "stopping the scratch server",
      }).catch(() => {});
    }
    fs.rmSync(root, { recursive: true, force: true });
    if (socket) fs.rmSync(socket, { recursive: true, force: true });
  }
}

/** `dir` when a socket below it fits in a socket path, else the system's temporary directory. */
function short(dir: string): string {
  if (dir.length <= 60) return dir;
  const tmp = os.tmpdir();
  return tmp.length <= 60 ? tmp : "/tmp";
}
