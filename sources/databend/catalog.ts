/**
 * Derives the manifest's catalog (databases and tables of one tenant, with
 * ids, storage prefixes and current snapshots) from a `databend-metactl
 * export`.
 *
 * The catalog is the cluster's current state: the state machine snapshot
 * (`state_machine/*`) with the raft log entries after its `LastApplied`
 * replayed on top ({@link MetaState}), as the meta service does after an
 * import. A snapshot is taken every 1,024 log entries by default, so the
 * snapshot alone misses tables created since and lists some dropped since.
 *
 * - Databases: `__fd_database/<tenant>/<name>` → id (decimal ASCII).
 * - Tables: `__fd_table/<db_id>/<name>` → id (decimal ASCII), for the
 *   databases above.
 * - Storage prefix: `<db_id>/<table_id>/`, unless the table's `TableMeta`
 *   (`__fd_table_by_id/<id>`) sets the `storage_prefix` option (attached
 *   tables), which is then used with a trailing `/`.
 * - Current snapshot: the `snapshot_location` option of the `TableMeta`
 *   (relative to the storage root), when the table has data.
 * - Dropped tables are **excluded**: Databend removes their name key on
 *   drop, and a table whose `TableMeta` has `drop_on` set is skipped too.
 *   Their data is still in storage until vacuum and is kept by the storage
 *   backup; the catalog lists only what a restored cluster shows by name.
 *
 * @module
 */
import type { Catalog } from "../../formats/manifest.ts";
import { parseExportLine } from "./meta_export.ts";
import { lastAppliedIndex, logCommand, type LoggedCommand, MetaState } from "./meta_state.ts";
import { decodeTableMeta } from "./table_meta.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Undoes the `%XX` escaping of a key segment (left as is when not valid). */
function unescapeSegment(s: string): string {
  if (!s.includes("%")) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The id stored as decimal ASCII in a name-to-id value. */
function decimalId(data: Uint8Array, at: string): number {
  let text: string;
  try {
    text = utf8.decode(data);
  } catch {
    text = "";
  }
  const id = /^[0-9]{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(id)) {
    throw new SyntaxError(
      `${at}: the value is not a decimal id: check that the export is complete`,
    );
  }
  return id;
}

/** Normalises a `storage_prefix` option to `a/b/`, refusing `..` segments. */
function normalisePrefix(prefix: string, tableId: number): string | null {
  const parts = prefix.split("/").filter((p) => p !== "");
  if (parts.length === 0) return null;
  if (parts.some((p) => p === "." || p === "..")) {
    throw new RangeError(
      `table ${tableId} has a storage_prefix with "." or ".." segments: fix the table's options`,
    );
  }
  return `${parts.join("/")}/`;
}

/**
 * Builds a catalog line by line, so it can be derived from an export while
 * the export streams into a backup. The logged writes are replayed when the
 * catalog is built.
 *
 * @example
 * ```ts
 * import { CatalogBuilder } from "./catalog.ts";
 * const b = new CatalogBuilder("tenant1", "cluster1");
 * b.addLine('["state_machine/0",{"GenericKV":{"key":"__fd_database/tenant1/db1","value":{"seq":1,"meta":null,"data":[49]}}}]');
 * b.build().databases[0]?.name; // "db1"
 * ```
 */
export class CatalogBuilder {
  readonly #tenant: string;
  readonly #clusterId: string;
  readonly #state = new MetaState();
  readonly #log: LoggedCommand[] = [];
  #lastApplied: number | null = null;
  #replayedTo = -1;
  #lines = 0;
  #entries = 0;

  /** A builder for the catalog of `tenant`; `clusterId` is recorded as is. */
  constructor(tenant: string, clusterId = "") {
    this.#tenant = tenant;
    this.#clusterId = clusterId;
  }

  /** Lines seen so far. */
  get lines(): number {
    return this.#lines;
  }

  /** Non-blank lines seen so far (export entries). */
  get entries(): number {
    return this.#entries;
  }

  /** The state machine snapshot's `LastApplied` index, null before it is seen. */
  get lastApplied(): number | null {
    return this.#lastApplied;
  }

  /** How many logged commands after `LastApplied` the last build replayed. */
  get replayed(): number {
    const from = this.#lastApplied ?? -1;
    return this.#log.filter((c) => c.index > from && c.index <= this.#replayedTo).length;
  }

  /** Warnings of the replay (commands of unknown kinds, skipped). */
  get warnings(): readonly string[] {
    return this.#state.warnings;
  }

  /**
   * Reads the next line of the export (a blank line is skipped).
   *
   * @throws {SyntaxError} on a malformed line (the message names the line number).
   */
  addLine(line: string): void {
    const n = ++this.#lines;
    if (line.trim() === "") return;
    this.#entries++;
    const e = parseExportLine(line, n);
    const at = `meta export line ${n}`;
    if (e.tree === "raft_log") {
      if (e.kind === "LogEntry" || e.kind === "Logs") {
        const c = logCommand(e.value, at);
        if (c !== null) this.#log.push(c);
      }
      return;
    }
    if (!e.tree.startsWith("state_machine/")) return;
    if (e.kv !== undefined && e.key !== undefined) {
      const expireAt = e.kv.meta?.expireAt;
      this.#state.load(e.key, {
        seq: e.kv.seq,
        data: e.kv.data,
        ...(expireAt === undefined ? {} : { expireAtMs: expireAt * 1000 }),
      });
    } else if (e.kind === "StateMachineMeta" && e.key === "LastApplied") {
      this.#lastApplied = lastAppliedIndex(e.value);
    } else if (e.kind === "Sequences" && e.key === "generic-kv" && typeof e.value === "number") {
      this.#state.seq = e.value;
    }
  }

  #replay(): void {
    const from = Math.max(this.#lastApplied ?? -1, this.#replayedTo);
    const todo = this.#log.filter((c) => c.index > from).sort((a, b) => a.index - b.index);
    for (const c of todo) {
      this.#state.apply(c.cmd, c.timeMs, `meta export raft log entry ${c.index}`);
      this.#replayedTo = c.index;
    }
  }

  /**
   * The catalog of the lines read so far, with the logged writes after the
   * snapshot replayed. Databases are sorted by id, their tables by id.
   *
   * @throws {SyntaxError} when an id value is not decimal or a logged command is malformed.
   * @throws {RangeError} when a table's `TableMeta` cannot be decoded or its storage
   * prefix is unsafe.
   */
  build(): Catalog {
    this.#replay();
    return assemble(this.#tenant, this.#clusterId, this.#state);
  }
}

/**
 * Builds the catalog of `tenant` from the lines of a meta export.
 * Databases are sorted by id, their tables by id.
 *
 * @param lines the export's lines (blank lines are skipped).
 * @param tenant the tenant whose databases are listed.
 * @param clusterId recorded in the catalog as is.
 * @throws {SyntaxError} or {RangeError} as {@linkcode CatalogBuilder.addLine}.
 */
export async function buildCatalog(
  lines: Iterable<string> | AsyncIterable<string>,
  tenant: string,
  clusterId = "",
): Promise<Catalog> {
  const builder = new CatalogBuilder(tenant, clusterId);
  for await (const line of lines) builder.addLine(line);
  return builder.build();
}

function assemble(tenant: string, clusterId: string, state: MetaState): Catalog {
  const databases = new Map<string, number>(); // name -> id
  const tables = new Map<number, Map<string, number>>(); // db id -> name -> table id
  for (const [key, v] of state.entries()) {
    const seg = key.split("/").map(unescapeSegment);
    const [prefix, a, b] = seg;
    if (seg.length !== 3 || a === undefined || b === undefined) continue;
    const at = `meta key ${JSON.stringify(key)}`;
    if (prefix === "__fd_database" && a === tenant) {
      databases.set(b, decimalId(v.data, at));
    } else if (prefix === "__fd_table" && /^[0-9]+$/.test(a)) {
      const dbId = Number(a);
      let byName = tables.get(dbId);
      if (byName === undefined) tables.set(dbId, byName = new Map());
      byName.set(b, decimalId(v.data, at));
    }
  }
  const out: Catalog = { tenant, clusterId, databases: [] };
  for (const [name, id] of databases) {
    const list: Catalog["databases"][number]["tables"] = [];
    for (const [tableName, tableId] of tables.get(id) ?? []) {
      const metaValue = state.get(`__fd_table_by_id/${tableId}`);
      let storagePrefix: string | null = null;
      let snapshotLocation: string | undefined;
      if (metaValue !== undefined) {
        let info;
        try {
          info = decodeTableMeta(metaValue.data);
        } catch (err) {
          throw new RangeError(
            `the TableMeta of table ${tableId} cannot be decoded: check that the export is complete`,
            { cause: err },
          );
        }
        if (info.dropOn !== null) continue;
        const option = info.options.get("storage_prefix");
        storagePrefix = option === undefined ? null : normalisePrefix(option, tableId);
        const loc = info.options.get("snapshot_location");
        if (loc !== undefined && loc !== "") snapshotLocation = loc;
      }
      list.push({
        name: tableName,
        id: tableId,
        storagePrefix: storagePrefix ?? `${id}/${tableId}/`,
        ...(snapshotLocation === undefined ? {} : { snapshotLocation }),
      });
    }
    list.sort((x, y) => x.id - y.id);
    out.databases.push({ name, id, tables: list });
  }
  out.databases.sort((x, y) => x.id - y.id);
  return out;
}
