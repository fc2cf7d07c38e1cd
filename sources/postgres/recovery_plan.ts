/**
 * Point-in-time recovery planning: which base backup and which archived WAL
 * bring a PostgreSQL cluster to a target, and the recoverable window. Pure
 * logic over what the manifests and the WAL archive record, so every
 * boundary can be tested without a server.
 *
 * The rules (README, "Point-in-time recovery"):
 * - A base backup can serve a target when it ended at or before it (its stop
 *   time for a time target, its stop LSN for an LSN target).
 * - From the newest such backup, every WAL segment from its start segment to
 *   the one that reaches the target must be archived, on the backup's
 *   timeline or a later one (a promotion switches timelines; PostgreSQL
 *   follows the `.history` files). The segment that reaches a time target is
 *   the first one archived after that time: it holds the first record after
 *   the target, which is where replay stops.
 * - When the newest backup cannot reach the target (a gap in its WAL), an
 *   older one that can is taken.
 * - The window of a source is from the end of its oldest base backup to the
 *   time its newest contiguous WAL segment was archived.
 *
 * @module
 */
import { parseWalName, segmentStartLsn, walSegmentName } from "../../formats/wal.ts";
import { formatMicros, type RecoveryTarget } from "../../formats/pg_target.ts";

/** A base backup as the plan sees it (from its manifest's `pg.*` settings). */
export interface BaseBackup {
  readonly name: string;
  readonly timeline: number;
  readonly startLsn: bigint;
  readonly stopLsn: bigint;
  /** Microseconds since the epoch. */
  readonly stopMicros: bigint;
  readonly segmentSize: number;
}

/** An archived WAL segment (history and backup files are not listed here). */
export interface ArchivedSegment {
  readonly name: string;
  /** When the archive received it, microseconds since the epoch. */
  readonly pushedMicros: bigint;
}

/** What a recovery needs. */
export interface RecoveryPlan {
  readonly backup: BaseBackup;
  /** The first and the last WAL segment replay reads (file names). */
  readonly firstWal: string;
  readonly lastWal: string;
  /** How many segments that is. */
  readonly segments: number;
  readonly window: RecoveryWindow;
}

/** From when to when a source can be recovered. */
export interface RecoveryWindow {
  /** The end of the oldest base backup (microseconds), or null without one. */
  readonly fromMicros: bigint | null;
  /** When the newest WAL segment that follows on without a gap was archived. */
  readonly toMicros: bigint | null;
  /** Segments missing between base backups and the newest segment: [after, before]. */
  readonly gaps: { after: string; before: string }[];
}

/** Thrown when no base backup and archived WAL reach the target; the message states the window. */
export class OutsideWindow extends RangeError {
  override readonly name = "OutsideWindow";
}

/** A segment file name's parts. */
interface Segment {
  readonly name: string;
  readonly timeline: number;
  readonly segno: bigint;
}

/** The timeline and segment number of a WAL segment file name, or null. */
function segmentOf(name: string, segmentSize: number): Segment | null {
  const n = parseWalName(name);
  if (n?.type !== "segment") return null;
  try {
    return {
      name,
      timeline: n.timeline,
      segno: segmentStartLsn(n, segmentSize) / BigInt(segmentSize),
    };
  } catch {
    return null; // a segment number beyond the segment size: not a file of this system
  }
}

/** The segment number holding `lsn`. */
function segnoOf(lsn: bigint, segmentSize: number): bigint {
  return lsn / BigInt(segmentSize);
}

/**
 * The archived segments, one per segment number: the highest timeline at
 * or above `timeline` (replay follows the newest timeline), with the time
 * it was archived.
 */
function bySegno(
  wal: readonly ArchivedSegment[],
  timeline: number,
  segmentSize: number,
): Map<bigint, Segment & { pushedMicros: bigint }> {
  const out = new Map<bigint, Segment & { pushedMicros: bigint }>();
  for (const w of wal) {
    const s = segmentOf(w.name, segmentSize);
    if (!s || s.timeline < timeline) continue;
    const had = out.get(s.segno);
    if (!had || had.timeline < s.timeline) out.set(s.segno, { ...s, pushedMicros: w.pushedMicros });
  }
  return out;
}

/**
 * The contiguous run of archived segments from `backup`'s start segment:
 * the last segment of it and the gap that ends it, if any.
 */
function contiguousFrom(
  backup: BaseBackup,
  segments: Map<bigint, Segment & { pushedMicros: bigint }>,
): { run: (Segment & { pushedMicros: bigint })[]; gapAt: bigint | null } {
  const run: (Segment & { pushedMicros: bigint })[] = [];
  let n = segnoOf(backup.startLsn, backup.segmentSize);
  const newest = [...segments.keys()].reduce((a, b) => (b > a ? b : a), -1n);
  for (; n <= newest; n++) {
    const s = segments.get(n);
    if (!s) return { run, gapAt: n };
    run.push(s);
  }
  return { run, gapAt: null };
}

/** The recoverable window of a source (see the module documentation). */
export function recoveryWindow(
  backups: readonly BaseBackup[],
  wal: readonly ArchivedSegment[],
): RecoveryWindow {
  if (backups.length === 0) return { fromMicros: null, toMicros: null, gaps: [] };
  const oldest = backups.reduce((a, b) => (b.stopMicros < a.stopMicros ? b : a));
  let to: bigint | null = null;
  const gaps: { after: string; before: string }[] = [];
  for (const b of backups) {
    const segs = bySegno(wal, b.timeline, b.segmentSize);
    const { run, gapAt } = contiguousFrom(b, segs);
    const stopSeg = segnoOf(b.stopLsn, b.segmentSize);
    const last = run[run.length - 1];
    if (last && last.segno >= stopSeg) {
      if (to === null || last.pushedMicros > to) to = last.pushedMicros;
    }
    if (gapAt !== null) {
      const after = run[run.length - 1]?.name ??
        walSegmentName(b.timeline, gapAt - 1n, b.segmentSize);
      const next = [...segs.keys()].filter((k) => k > gapAt).sort((x, y) => (x < y ? -1 : 1))[0];
      const before = next !== undefined ? segs.get(next)!.name : "(none)";
      if (!gaps.some((g) => g.after === after)) gaps.push({ after, before });
    }
  }
  return { fromMicros: oldest.stopMicros, toMicros: to, gaps };
}

/** The window as one phrase for messages. */
export function describeWindow(w: RecoveryWindow): string {
  if (w.fromMicros === null) return "there is no base backup of this source";
  const from = formatMicros(w.fromMicros);
  if (w.toMicros === null) {
    return `no base backup has its WAL archived yet (the oldest ended at ${from})`;
  }
  const gaps = w.gaps.length
    ? `; WAL is missing after ${w.gaps.map((g) => `${g.after} (next: ${g.before})`).join(", ")}`
    : "";
  return `the recoverable window is ${from} to ${formatMicros(w.toMicros)}${gaps}`;
}

/**
 * Chooses the base backup and WAL for `target`; throws
 * {@linkcode OutsideWindow}, stating the window, when none reach it.
 */
export function planRecovery(
  backups: readonly BaseBackup[],
  wal: readonly ArchivedSegment[],
  target: RecoveryTarget,
): RecoveryPlan {
  const window = recoveryWindow(backups, wal);
  const usable = backups.filter((b) =>
    target.kind === "latest" ||
    (target.kind === "time" ? b.stopMicros <= target.micros : b.stopLsn <= target.lsn)
  ).sort((a, b) => (a.stopLsn > b.stopLsn ? -1 : a.stopLsn < b.stopLsn ? 1 : 0));
  const what = target.kind === "latest"
    ? "the latest archived WAL"
    : target.kind === "time"
    ? `time ${target.text}`
    : `LSN ${target.text}`;
  if (usable.length === 0) {
    throw new OutsideWindow(
      `no base backup ended before ${what}: ${describeWindow(window)}; choose a target inside it`,
    );
  }
  for (const b of usable) {
    const { run } = contiguousFrom(b, bySegno(wal, b.timeline, b.segmentSize));
    const stopSeg = segnoOf(b.stopLsn, b.segmentSize);
    if (run.length === 0 || run[run.length - 1]!.segno < stopSeg) continue; // not consistent yet
    let end: number;
    if (target.kind === "latest") end = run.length - 1;
    else if (target.kind === "lsn") {
      const want = segnoOf(target.lsn, b.segmentSize);
      end = run.findIndex((s) => s.segno === want);
    } else {
      // The first segment archived after the target holds the record where replay stops.
      end = run.findIndex((s) => s.segno >= stopSeg && s.pushedMicros > target.micros);
    }
    if (end < 0) continue;
    const last = Math.max(end, run.findIndex((s) => s.segno === stopSeg));
    return {
      backup: b,
      firstWal: run[0]!.name,
      lastWal: run[last]!.name,
      segments: last + 1,
      window,
    };
  }
  throw new OutsideWindow(
    `the archived WAL does not reach ${what}: ${describeWindow(window)}; choose a target inside it`,
  );
}
