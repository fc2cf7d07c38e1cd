/**
 * The recoverable window of every PostgreSQL source of a repository (from
 * the end of its oldest base backup to the newest WAL that follows on
 * without a gap) and the WAL gaps that cut it, for `list`, `show` and
 * `verify`.
 *
 * @module
 */
import type { ManifestRecord, Repository } from "../../store/repository.ts";
import { listWal } from "../../store/wal_archive.ts";
import { formatMicros, parseLsn, timeMicros } from "../../formats/pg_target.ts";
import { PG_DATA_PART, PG_SOURCE_TYPE } from "./pg_source.ts";
import { type ArchivedSegment, type BaseBackup, recoveryWindow } from "./recovery_plan.ts";

/** The window of one PostgreSQL source. */
export interface PgSourceWindow {
  /** The source key (`postgresql:<system id>:<data directory>`). */
  readonly source: string;
  readonly systemId: string;
  readonly baseBackups: number;
  /** The end of the oldest base backup (timestamptz text), or null. */
  readonly from: string | null;
  /** When the newest WAL that follows on without a gap was archived, or null. */
  readonly to: string | null;
  /** Missing WAL: the segment after which it is missing and the next one archived. */
  readonly gaps: { after: string; before: string }[];
  /** Archived WAL files of this system. */
  readonly walFiles: number;
}

/** A base backup of the plan from a manifest, or null when its settings are incomplete. */
export function baseBackupOf(r: ManifestRecord): BaseBackup | null {
  const s = r.manifest.source.settings;
  if (r.manifest.source.type !== PG_SOURCE_TYPE) return null;
  if (!r.manifest.parts.some((p) => p.name === PG_DATA_PART)) return null;
  try {
    return {
      name: r.name,
      timeline: Number(s["pg.timeline"]),
      startLsn: parseLsn(s["pg.start_lsn"] ?? ""),
      stopLsn: parseLsn(s["pg.stop_lsn"] ?? ""),
      stopMicros: timeMicros(s["pg.stop_time"] ?? ""),
      segmentSize: Number(s["pg.wal_segment_size"] ?? 16 * 1024 * 1024),
    };
  } catch {
    return null;
  }
}

/** Archived WAL segments of `systemId` as the plan sees them (history and backup files left out). */
export async function archivedSegments(
  repo: Repository,
  systemId: string,
): Promise<ArchivedSegment[]> {
  return (await listWal(repo, { systemId }))
    .filter((w) => /^[0-9A-F]{24}$/.test(w.name))
    .map((w) => ({ name: w.name, pushedMicros: BigInt(Math.round(w.pushTimeMs * 1000)) }));
}

/** The windows of every PostgreSQL source among `records`. */
export async function postgresWindows(
  repo: Repository,
  records: readonly ManifestRecord[],
): Promise<PgSourceWindow[]> {
  const bySource = new Map<string, { systemId: string; backups: BaseBackup[] }>();
  for (const r of records) {
    const b = baseBackupOf(r);
    if (!b) continue;
    const key = r.manifest.source.key;
    const g = bySource.get(key) ??
      { systemId: r.manifest.source.settings["pg.system_identifier"] ?? "", backups: [] };
    g.backups.push(b);
    bySource.set(key, g);
  }
  const out: PgSourceWindow[] = [];
  const walOf = new Map<string, ArchivedSegment[]>();
  for (const [source, g] of bySource) {
    let wal = walOf.get(g.systemId);
    if (!wal) {
      wal = await archivedSegments(repo, g.systemId);
      walOf.set(g.systemId, wal);
    }
    const w = recoveryWindow(g.backups, wal);
    out.push({
      source,
      systemId: g.systemId,
      baseBackups: g.backups.length,
      from: w.fromMicros !== null ? formatMicros(w.fromMicros) : null,
      to: w.toMicros !== null ? formatMicros(w.toMicros) : null,
      gaps: w.gaps,
      walFiles: wal.length,
    });
  }
  return out;
}

/** One line for a window. */
export function describePgWindow(w: PgSourceWindow): string {
  const range = w.from === null
    ? "no base backup"
    : w.to === null
    ? `not recoverable yet: the WAL of its base backups is not all archived (oldest ended ${w.from})`
    : `recoverable from ${w.from} to ${w.to}`;
  const gaps = w.gaps.length
    ? `; WAL missing after ${
      w.gaps.map((g) => `${g.after} (next archived: ${g.before})`).join(", ")
    }`
    : "";
  return `PostgreSQL ${w.source}: ${range} (${w.baseBackups} base backup(s), ${w.walFiles} WAL segment(s))${gaps}`;
}
