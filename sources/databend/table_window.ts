/**
 * The snapshots of each table of a cluster backup's catalog as `show` and
 * `list` present them, and the window a table can be restored to: from its
 * oldest to its newest snapshot the backup holds.
 *
 * @module
 */
import type { Catalog, CatalogSnapshot } from "../../formats/manifest.ts";

/**
 * Microseconds since the epoch as RFC 3339 UTC with six fraction digits,
 * e.g. `2025-03-10T11:00:00.005977Z`.
 *
 * @example
 * ```ts
 * import { formatTimestampUs } from "./table_window.ts";
 * formatTimestampUs(1_000_002); // "1970-01-01T00:00:01.000002Z"
 * ```
 */
export function formatTimestampUs(us: number): string {
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString();
  const frac = String(((ms % 1000) + 1000) % 1000 * 1000 + (us - ms * 1000)).padStart(6, "0");
  return `${iso.slice(0, 19)}.${frac}Z`;
}

/** One snapshot as JSON. */
export interface SnapshotJson {
  readonly id: string;
  /** RFC 3339 with microseconds; null when the snapshot has no timestamp. */
  readonly time: string | null;
  readonly row_count: number;
  readonly location: string;
}

/** One table's snapshots and window as JSON. */
export interface TableSnapshotsJson {
  /** `db.table`. */
  readonly table: string;
  readonly id: number;
  /** The current snapshot at backup time (relative to the storage root), null if none. */
  readonly current_snapshot: string | null;
  readonly snapshots: readonly SnapshotJson[];
  /** Oldest and newest snapshot time; null when the backup holds no timed snapshot. */
  readonly window: { readonly from: string; readonly to: string } | null;
}

function snapshotJson(s: CatalogSnapshot): SnapshotJson {
  return {
    id: s.id,
    time: s.timestampUs > 0 ? formatTimestampUs(s.timestampUs) : null,
    row_count: s.rowCount,
    location: s.location,
  };
}

/** The tables of `catalog` with their snapshots and windows, in catalog order. */
export function tableSnapshots(catalog: Catalog): TableSnapshotsJson[] {
  const out: TableSnapshotsJson[] = [];
  for (const d of catalog.databases) {
    for (const t of d.tables) {
      const snaps = t.snapshots ?? [];
      const timed = snaps.filter((s) => s.timestampUs > 0);
      out.push({
        table: `${d.name}.${t.name}`,
        id: t.id,
        current_snapshot: t.snapshotLocation ?? null,
        snapshots: snaps.map(snapshotJson),
        window: timed.length === 0 ? null : {
          from: formatTimestampUs(timed[0]!.timestampUs),
          to: formatTimestampUs(timed.at(-1)!.timestampUs),
        },
      });
    }
  }
  return out;
}
