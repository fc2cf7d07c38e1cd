/**
 * Derives the manifest's catalog (databases and tables of one tenant, with
 * ids and storage prefixes) from a `databend-metactl export`.
 *
 * Only the state machine (`state_machine/*` trees) is read: it holds every
 * applied write, and a stopped cluster has applied its whole log. The
 * `raft_log` entries are history and are ignored.
 *
 * - Databases: `__fd_database/<tenant>/<name>` → id (decimal ASCII).
 * - Tables: `__fd_table/<db_id>/<name>` → id (decimal ASCII), for the
 *   databases above.
 * - Storage prefix: `<db_id>/<table_id>/`, unless the table's `TableMeta`
 *   (`__fd_table_by_id/<id>`) sets the `storage_prefix` option (attached
 *   tables), which is then used with a trailing `/`.
 * - Dropped tables are **excluded**: Databend removes their name key on
 *   drop, and a table whose `TableMeta` has `drop_on` set is skipped too.
 *   Their data is still in storage until vacuum and is kept by the storage
 *   backup; the catalog lists only what a restored cluster shows by name.
 *
 * @module
 */
import type { Catalog } from "../../formats/manifest.ts";
import { parseExportLine } from "./meta_export.ts";
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

interface TableInfo {
  readonly storagePrefix: string | null;
  readonly dropped: boolean;
}

/**
 * Builds a catalog line by line, so it can be derived from an export while
 * the export streams into a backup.
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
  readonly #databases = new Map<string, number>(); // name -> id
  readonly #tables = new Map<number, Map<string, number>>(); // db id -> name -> table id
  readonly #metas = new Map<number, TableInfo>(); // table id -> info
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

  /**
   * Reads the next line of the export (a blank line is skipped).
   *
   * @throws {SyntaxError} on a malformed line or an id value that is not decimal (the
   * message names the line number).
   * @throws {RangeError} when a table's `TableMeta` cannot be decoded or its storage
   * prefix is unsafe.
   */
  addLine(line: string): void {
    const n = ++this.#lines;
    if (line.trim() === "") return;
    this.#entries++;
    const e = parseExportLine(line, n);
    if (e.kv === undefined || e.key === undefined || !e.tree.startsWith("state_machine/")) return;
    const at = `meta export line ${n}`;
    const seg = e.key.split("/").map(unescapeSegment);
    const [prefix, a, b] = seg;
    if (
      prefix === "__fd_table_by_id" && seg.length === 2 && a !== undefined && /^[0-9]+$/.test(a)
    ) {
      const tableId = Number(a);
      let info;
      try {
        info = decodeTableMeta(e.kv.data);
      } catch (err) {
        throw new RangeError(
          `${at}: the TableMeta of table ${tableId} cannot be decoded: check that the export is complete`,
          { cause: err },
        );
      }
      const option = info.options.get("storage_prefix");
      this.#metas.set(tableId, {
        storagePrefix: option === undefined ? null : normalisePrefix(option, tableId),
        dropped: info.dropOn !== null,
      });
      return;
    }
    if (seg.length !== 3 || a === undefined || b === undefined) return;
    if (prefix === "__fd_database" && a === this.#tenant) {
      this.#databases.set(b, decimalId(e.kv.data, at));
    } else if (prefix === "__fd_table" && /^[0-9]+$/.test(a)) {
      const dbId = Number(a);
      let byName = this.#tables.get(dbId);
      if (byName === undefined) this.#tables.set(dbId, byName = new Map());
      byName.set(b, decimalId(e.kv.data, at));
    }
  }

  /** The catalog of the lines read so far. Databases are sorted by id, their tables by id. */
  build(): Catalog {
    return assemble(this.#tenant, this.#clusterId, this.#databases, this.#tables, this.#metas);
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

function assemble(
  tenant: string,
  clusterId: string,
  databases: Map<string, number>,
  tables: Map<number, Map<string, number>>,
  metas: Map<number, TableInfo>,
): Catalog {
  const out: Catalog = { tenant, clusterId, databases: [] };
  for (const [name, id] of databases) {
    const list: Catalog["databases"][number]["tables"] = [];
    for (const [tableName, tableId] of tables.get(id) ?? []) {
      const meta = metas.get(tableId);
      if (meta?.dropped === true) continue;
      list.push({
        name: tableName,
        id: tableId,
        storagePrefix: meta?.storagePrefix ?? `${id}/${tableId}/`,
      });
    }
    list.sort((x, y) => x.id - y.id);
    out.databases.push({ name, id, tables: list });
  }
  out.databases.sort((x, y) => x.id - y.id);
  return out;
}
