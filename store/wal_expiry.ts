/**
 * Which archived WAL a vacuum may delete: the WAL no kept base backup needs.
 *
 * For each PostgreSQL system (manifests of type `postgresql`, by their
 * `pg.system_identifier` setting), the oldest kept base backup's start LSN
 * bounds what recovery can ever read: a segment that ends at or before it,
 * and a backup history file of such a segment, can go. Timeline history
 * files are always kept (they are tiny, and a recovery to any later
 * timeline reads them). A system with no kept base backup keeps all its
 * WAL: it may be the WAL of a base backup still running, or the only copy
 * of a history an operator still wants.
 *
 * @module
 */
import type { ManifestRecord } from "./repository.ts";
import type { WalRecord } from "../formats/wal.ts";
import { parseWalName, segmentStartLsn } from "../formats/wal.ts";
import { parseLsn } from "../formats/pg_target.ts";

/** What a vacuum does with the WAL archive. */
export interface WalExpiry {
  /** Records kept (their blocks are live). */
  readonly keep: WalRecord[];
  /** Records deleted, as `<system id>/<name>`. */
  readonly remove: WalRecord[];
}

/** The oldest start LSN of the kept base backups, by system identifier. */
function oldestStarts(kept: readonly ManifestRecord[]): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const r of kept) {
    const s = r.manifest.source;
    if (s.type !== "postgresql") continue;
    const sys = s.settings["pg.system_identifier"];
    const start = s.settings["pg.start_lsn"];
    if (!sys || !start) continue;
    let lsn: bigint;
    try {
      lsn = parseLsn(start);
    } catch {
      continue; // unreadable: this backup bounds nothing, so nothing is deleted for it
    }
    const had = out.get(sys);
    if (had === undefined || lsn < had) out.set(sys, lsn);
  }
  return out;
}

/** Splits the archive's records into kept and deleted (see the module documentation). */
export function planWalExpiry(
  records: readonly WalRecord[],
  kept: readonly ManifestRecord[],
): WalExpiry {
  const starts = oldestStarts(kept);
  const keep: WalRecord[] = [];
  const remove: WalRecord[] = [];
  for (const r of records) {
    const start = starts.get(r.systemId);
    const name = parseWalName(r.name);
    if (start === undefined || !name || name.type === "history") {
      keep.push(r);
      continue;
    }
    const size = r.segmentSize > 0 ? r.segmentSize : segmentSizeOf(kept, r.systemId);
    if (size === null) {
      keep.push(r);
      continue;
    }
    const end = segmentStartLsn(name, size) + BigInt(size);
    (end <= start ? remove : keep).push(r);
  }
  return { keep, remove };
}

/** The WAL segment size the kept base backups of `systemId` recorded, or null. */
function segmentSizeOf(kept: readonly ManifestRecord[], systemId: string): number | null {
  for (const r of kept) {
    const s = r.manifest.source.settings;
    if (s["pg.system_identifier"] !== systemId) continue;
    const n = Number(s["pg.wal_segment_size"]);
    if (Number.isInteger(n) && n > 0) return n;
  }
  return null;
}
