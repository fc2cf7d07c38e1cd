import assert from "node:assert/strict";
import {
  type ArchivedSegment,
  type BaseBackup,
  OutsideWindow,
  planRecovery,
  recoveryWindow,
} from "./recovery_plan.ts";
import { parseRecoveryTarget } from "../../formats/pg_target.ts";
import { walSegmentName as segmentName } from "../../formats/wal.ts";

const SEG = 16 * 1024 * 1024;
const T0 = BigInt(Date.UTC(2026, 11, 1, 12, 0, 0)) * 1000n;
const MIN = 60_000_000n;

/** Segment n on timeline tli, archived at T0 + n minutes. */
const seg = (n: number, tli = 1): ArchivedSegment => ({
  name: segmentName(tli, BigInt(n), SEG),
  pushedMicros: T0 + BigInt(n) * MIN,
});

/** A base backup from segment `start` to `stop`, ended at T0 + stop minutes - 30 s. */
const base = (name: string, start: number, stop: number, tli = 1): BaseBackup => ({
  name,
  timeline: tli,
  startLsn: BigInt(start) * BigInt(SEG) + 40n,
  stopLsn: BigInt(stop) * BigInt(SEG) + 300n,
  stopMicros: T0 + BigInt(stop) * MIN - 30_000_000n,
  segmentSize: SEG,
});

const at = (minutes: number) =>
  parseRecoveryTarget({
    asOf: new Date(Number((T0 + BigInt(minutes * 60) * 1_000_000n) / 1000n)).toISOString(),
  });

Deno.test("walSegmentName is PostgreSQL's XLogFileName", () => {
  assert.equal(segmentName(1, 3n, SEG), "000000010000000000000003");
  assert.equal(segmentName(2, 0x100n + 5n, SEG), "000000020000000100000005");
  assert.equal(segmentName(1, 65n, 64 * 1024 * 1024), "000000010000000100000001");
});

Deno.test("planRecovery takes the newest base backup that ended before the time, and WAL up to the first segment after it", () => {
  const backups = [base("b1", 2, 3), base("b2", 6, 7)];
  const wal = [2, 3, 4, 5, 6, 7, 8, 9].map((n) => seg(n));
  const p1 = planRecovery(backups, wal, at(4.5));
  assert.equal(p1.backup.name, "b1");
  assert.equal(p1.firstWal, segmentName(1, 2n, SEG));
  assert.equal(p1.lastWal, segmentName(1, 5n, SEG), "segment 5 was archived after 4.5 min");
  const p2 = planRecovery(backups, wal, at(8.5));
  assert.equal(p2.backup.name, "b2");
  assert.equal(p2.lastWal, segmentName(1, 9n, SEG));
  const latest = planRecovery(backups, wal, { kind: "latest" });
  assert.equal(latest.backup.name, "b2");
  assert.equal(latest.lastWal, segmentName(1, 9n, SEG));
  assert.equal(latest.segments, 4);
});

Deno.test("planRecovery refuses a target outside the window and states it", () => {
  const backups = [base("b1", 2, 3)];
  const wal = [2, 3, 4].map((n) => seg(n));
  for (const target of [at(1), at(10)]) {
    assert.throws(
      () => planRecovery(backups, wal, target),
      (e: Error) =>
        e instanceof OutsideWindow &&
        /recoverable window is 2026-12-01 12:02:30\.000000\+00 to 2026-12-01 12:04:00\.000000\+00/
          .test(e.message),
    );
  }
});

Deno.test("planRecovery falls back to an older base backup when the newer one's WAL has a gap, and reports the gap", () => {
  const backups = [base("b1", 2, 3), base("b2", 6, 7)];
  // Segment 6 (b2's start) is lost; b1's run stops at 5.
  const wal = [2, 3, 4, 5, 7, 8].map((n) => seg(n));
  const w = recoveryWindow(backups, wal);
  assert.deepEqual(w.gaps.map((g) => g.after), [segmentName(1, 5n, SEG)]);
  const p = planRecovery(backups, wal, at(4.5));
  assert.equal(p.backup.name, "b1");
  assert.throws(() => planRecovery(backups, wal, at(7.5)), OutsideWindow);
});

Deno.test("planRecovery follows a promotion onto timeline 2", () => {
  const backups = [base("b1", 2, 3)];
  // Promoted during segment 5: timeline 2 starts with its own copy of segment 5.
  const wal = [seg(2), seg(3), seg(4), seg(5), seg(5, 2), seg(6, 2), seg(7, 2)];
  const p = planRecovery(backups, wal, at(6.5));
  assert.equal(p.lastWal, segmentName(2, 7n, SEG));
  assert.equal(p.firstWal, segmentName(1, 2n, SEG));
});

Deno.test("planRecovery with a target LSN reads up to the segment holding it", () => {
  const backups = [base("b1", 2, 3)];
  const wal = [2, 3, 4, 5].map((n) => seg(n));
  const p = planRecovery(backups, wal, {
    kind: "lsn",
    lsn: 4n * BigInt(SEG) + 10n,
    text: "0/4000010",
  });
  assert.equal(p.lastWal, segmentName(1, 4n, SEG));
  assert.throws(
    () => planRecovery(backups, wal, { kind: "lsn", lsn: 9n * BigInt(SEG), text: "0/9000000" }),
    OutsideWindow,
  );
});
