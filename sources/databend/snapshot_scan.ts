/**
 * After a cluster backup: records in the catalog the table snapshots the
 * backup holds, and checks that each table's current snapshot (named by the
 * meta export) is in the backup with every segment it lists (the
 * consistency guard: a vacuum running during the backup can remove objects
 * the exported meta data still needs).
 *
 * @module
 */
import type { Catalog, CatalogSnapshot, CatalogTable } from "../../formats/manifest.ts";
import { decodeTableSnapshot, type TableSnapshotInfo } from "./table_snapshot.ts";

/** The objects of the cluster's storage a backup captured, as the scan sees them. */
export interface CapturedObjects {
  /** Names (relative to the storage root) of the captured objects under `dir` (ending in `/`). */
  list(dir: string): Promise<string[]>;
  /** Whether the object `name` was captured. */
  has(name: string): Promise<boolean>;
  /** The bytes of a captured object. */
  read(name: string): Promise<Uint8Array>;
}

/** What {@linkcode scanTableSnapshots} found. */
export interface SnapshotScan {
  /** The catalog with `snapshots` filled in per table. */
  readonly catalog: Catalog;
  /** Snapshots that could not be read (each named); the backup is still complete. */
  readonly warnings: readonly string[];
  /** Current snapshots or segments missing from the backup, by table: the backup is incomplete. */
  readonly missing: readonly string[];
  /** Decoded snapshots by location, for callers that need the segment lists. */
  readonly decoded: ReadonlyMap<string, TableSnapshotInfo>;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Reads every captured snapshot of every table of `catalog` (once per storage
 * prefix), fills in `snapshots` (oldest first) and runs the consistency guard.
 */
export async function scanTableSnapshots(
  catalog: Catalog,
  objects: CapturedObjects,
  options: {
    /** A partial backup: only the tables under these storage prefixes are scanned and checked. */
    readonly only?: readonly string[];
    /**
     * Snapshots already read (by location; the parent backup's): snapshot
     * objects are never rewritten, so these are not read again.
     */
    readonly known?: ReadonlyMap<string, CatalogSnapshot>;
  } = {},
): Promise<SnapshotScan> {
  const warnings: string[] = [];
  const missing: string[] = [];
  const decoded = new Map<string, TableSnapshotInfo>();
  const byPrefix = new Map<string, CatalogSnapshot[]>();
  const unreadable = new Set<string>();

  const snapshotsOf = async (prefix: string, table: string): Promise<CatalogSnapshot[]> => {
    const known = byPrefix.get(prefix);
    if (known !== undefined) return known;
    const list: CatalogSnapshot[] = [];
    for (const name of (await objects.list(`${prefix}_ss/`)).sort()) {
      const seen = options.known?.get(name);
      if (seen !== undefined) {
        list.push(seen);
        continue;
      }
      let info: TableSnapshotInfo;
      try {
        info = decodeTableSnapshot(await objects.read(name));
      } catch (e) {
        unreadable.add(name);
        warnings.push(
          `table ${table}: the snapshot ${name} cannot be read (${
            errorText(e)
          }); it is left out of the catalog`,
        );
        continue;
      }
      decoded.set(name, info);
      list.push({
        id: info.id,
        timestampUs: info.timestampUs ?? 0,
        rowCount: info.rowCount ?? 0,
        location: name,
        formatVersion: info.formatVersion,
        prevId: info.prev?.id ?? "",
      });
    }
    list.sort((a, b) => a.timestampUs - b.timestampUs || (a.id < b.id ? -1 : 1));
    byPrefix.set(prefix, list);
    return list;
  };

  const databases: Catalog["databases"] = [];
  for (const d of catalog.databases) {
    const tables: CatalogTable[] = [];
    for (const t of d.tables) {
      const name = `${d.name}.${t.name}`;
      if (options.only !== undefined && !options.only.includes(t.storagePrefix)) {
        tables.push(t);
        continue;
      }
      const snapshots = await snapshotsOf(t.storagePrefix, name);
      const loc = t.snapshotLocation;
      if (loc !== undefined) {
        if (!(await objects.has(loc))) {
          missing.push(`table ${name}: its current snapshot ${loc} is not in the backup`);
        } else if (!unreadable.has(loc)) {
          let info = decoded.get(loc);
          if (info === undefined) {
            try {
              info = decodeTableSnapshot(await objects.read(loc));
              decoded.set(loc, info);
            } catch (e) {
              warnings.push(
                `table ${name}: its current snapshot ${loc} cannot be read (${
                  errorText(e)
                }); its segments were not checked`,
              );
            }
          }
          for (const seg of info?.segments ?? []) {
            if (!(await objects.has(seg))) {
              missing.push(
                `table ${name}: segment ${seg} of its current snapshot is not in the backup`,
              );
            }
          }
        }
      }
      tables.push({ ...t, ...(snapshots.length > 0 ? { snapshots } : {}) });
    }
    databases.push({ ...d, tables });
  }
  return { catalog: { ...catalog, databases }, warnings, missing, decoded };
}
