import assert from "node:assert/strict";
import {
  planRetention,
  type RetentionDecision,
  type RetentionItem,
  type RetentionRules,
  validateRules,
} from "./retention.ts";

const NOW = Date.UTC(2026, 10, 21, 12, 0, 0);
const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;

/** The manifest name for a time (UTC), as `manifestName` would give it. */
function nameAt(timeMs: number, suffix?: number): string {
  const d = new Date(timeMs);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const base = `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}_` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
  return suffix === undefined ? `${base}.manifest` : `${base}_${suffix}.manifest`;
}

function item(timeMs: number, suffix?: number): RetentionItem {
  return { name: nameAt(timeMs, suffix), timeMs };
}

/** Items `NOW - k days` for each k. */
function daysAgo(...ks: number[]): RetentionItem[] {
  return ks.map((k) => item(NOW - k * DAY));
}

function deletedNames(ds: readonly RetentionDecision[]): string[] {
  return ds.filter((d) => d.delete).map((d) => d.name);
}

function keptNames(ds: readonly RetentionDecision[]): string[] {
  return ds.filter((d) => !d.delete).map((d) => d.name);
}

function decisionFor(ds: readonly RetentionDecision[], name: string): RetentionDecision {
  const d = ds.find((x) => x.name === name);
  assert.ok(d, `no decision for ${name}`);
  return d;
}

function plan(items: readonly RetentionItem[], rules: RetentionRules): RetentionDecision[] {
  const ds = planRetention(items, rules, NOW);
  assert.equal(ds.length, items.length, "one decision per item");
  return ds;
}

// --- basics -----------------------------------------------------------------

Deno.test("planRetention returns no decisions for no backups", () => {
  for (
    const rules of [
      {},
      { retentionDays: 0 },
      { maxBackups: 0 },
      { keepDaily: 3 },
      { keepLast: 0, minBackups: 2 },
    ] satisfies RetentionRules[]
  ) {
    assert.deepEqual(planRetention([], rules, NOW), [], JSON.stringify(rules));
  }
});

Deno.test("planRetention never deletes a single backup whatever the rules", () => {
  const old = item(Date.UTC(2001, 0, 1));
  for (
    const rules of [
      {},
      { retentionDays: 0 },
      { retentionDays: 1, maxBackups: 0 },
      { maxBackups: 0 },
      { keepLast: 0 },
      { keepDaily: 0, keepWeekly: 0, keepMonthly: 0, keepYearly: 0 },
      { retentionDays: 0, maxBackups: 0, keepLast: 0, minBackups: 0, minRetentionDays: 0 },
    ] satisfies RetentionRules[]
  ) {
    const ds = plan([old], rules);
    assert.equal(ds[0]!.delete, false, JSON.stringify(rules));
    assert.ok(ds[0]!.reasons.includes("newest backup"), JSON.stringify(ds[0]!.reasons));
  }
});

Deno.test("planRetention deletes nothing when no rule is given", () => {
  const items = daysAgo(0, 1, 10, 100, 1000);
  const ds = plan(items, {});
  assert.deepEqual(deletedNames(ds), []);
  for (const d of ds.slice(1)) assert.deepEqual(d.reasons, ["no rule deletes it"], d.name);
  assert.deepEqual(ds[0]!.reasons, ["newest backup"]);
});

Deno.test("planRetention copies name and time into each decision", () => {
  const items = [item(NOW - 5 * DAY), item(NOW)];
  const ds = plan(items, { retentionDays: 1 });
  assert.deepEqual(ds.map((d) => [d.name, d.timeMs, d.delete]), [
    [nameAt(NOW), NOW, false],
    [nameAt(NOW - 5 * DAY), NOW - 5 * DAY, true],
  ]);
});

Deno.test("planRetention does not modify its input", () => {
  const items = [item(NOW - 2 * DAY), item(NOW), item(NOW - DAY)];
  const copy = items.map((i) => ({ ...i }));
  plan(items, { maxBackups: 1 });
  assert.deepEqual(items, copy);
});

// --- retentionDays ----------------------------------------------------------

Deno.test("planRetention keeps a backup exactly retentionDays old", () => {
  const atBoundary = item(NOW - 7 * DAY);
  const ds = plan([item(NOW), atBoundary], { retentionDays: 7 });
  assert.deepEqual(deletedNames(ds), []);
  assert.deepEqual(decisionFor(ds, atBoundary.name).reasons, ["no rule deletes it"]);
});

Deno.test("planRetention deletes a backup 1 ms older than retentionDays", () => {
  const older = { name: "20261114_115959.manifest", timeMs: NOW - 7 * DAY - 1 };
  const ds = plan([item(NOW), older], { retentionDays: 7 });
  assert.deepEqual(deletedNames(ds), [older.name]);
  const d = decisionFor(ds, older.name);
  assert.equal(d.reasons.length, 1);
  assert.match(d.reasons[0]!, /older than --retention-days 7/);
});

Deno.test("planRetention keeps a backup 1 ms younger than retentionDays", () => {
  const younger = { name: "20261114_120000.manifest", timeMs: NOW - 7 * DAY + 1 };
  const ds = plan([item(NOW), younger], { retentionDays: 7 });
  assert.deepEqual(deletedNames(ds), []);
});

Deno.test("planRetention with retentionDays 0 deletes everything before now but the newest", () => {
  const future = item(NOW + HOUR);
  const exactlyNow = item(NOW);
  const justBefore = { name: "20261121_115959.manifest", timeMs: NOW - 1 };
  const old = item(NOW - 3 * DAY);
  // The newest is in the future and protected anyway; `now` itself is not older than 0 days.
  let ds = plan([old, justBefore, exactlyNow, future], { retentionDays: 0 });
  assert.deepEqual(deletedNames(ds), [justBefore.name, old.name]);
  assert.deepEqual(keptNames(ds), [future.name, exactlyNow.name]);
  // With only past backups, the newest survives retentionDays 0.
  ds = plan([old, justBefore], { retentionDays: 0 });
  assert.deepEqual(keptNames(ds), [justBefore.name]);
  assert.deepEqual(deletedNames(ds), [old.name]);
});

Deno.test("planRetention deletes every backup older than retentionDays but the newest", () => {
  const items = daysAgo(1, 2, 3, 4, 5, 6);
  const ds = plan(items, { retentionDays: 3 });
  assert.deepEqual(keptNames(ds), [items[0]!.name, items[1]!.name, items[2]!.name]);
  assert.deepEqual(deletedNames(ds), [items[3]!.name, items[4]!.name, items[5]!.name]);
  // All older than the limit: only the newest remains.
  const ds2 = plan(daysAgo(10, 20, 30), { retentionDays: 3 });
  assert.deepEqual(keptNames(ds2), [nameAt(NOW - 10 * DAY)]);
  assert.deepEqual(decisionFor(ds2, nameAt(NOW - 10 * DAY)).reasons, ["newest backup"]);
});

// --- minRetentionDays -------------------------------------------------------

Deno.test("planRetention minRetentionDays protects a backup 1 ms younger than the boundary", () => {
  const younger = { name: "20261118_120000.manifest", timeMs: NOW - 3 * DAY + 1 };
  const ds = plan([item(NOW), younger], { maxBackups: 1, minRetentionDays: 3 });
  const d = decisionFor(ds, younger.name);
  assert.equal(d.delete, false);
  assert.deepEqual(d.reasons, ["younger than --min-retention-days 3"]);
});

Deno.test("planRetention minRetentionDays does not protect a backup exactly at the boundary", () => {
  const atBoundary = item(NOW - 3 * DAY);
  const ds = plan([item(NOW), atBoundary], { maxBackups: 1, minRetentionDays: 3 });
  const d = decisionFor(ds, atBoundary.name);
  assert.equal(d.delete, true);
  assert.deepEqual(d.reasons, ["beyond --max-backups 1"]);
});

Deno.test("planRetention minRetentionDays wins over retentionDays", () => {
  // retentionDays 1 would delete the 2- and 4-day-old backups; minRetentionDays 3 saves the first.
  const items = daysAgo(0, 2, 4);
  const ds = plan(items, { retentionDays: 1, minRetentionDays: 3 });
  assert.deepEqual(keptNames(ds), [items[0]!.name, items[1]!.name]);
  assert.deepEqual(deletedNames(ds), [items[2]!.name]);
  assert.deepEqual(decisionFor(ds, items[1]!.name).reasons, [
    "younger than --min-retention-days 3",
  ]);
});

Deno.test("planRetention minRetentionDays wins over maxBackups", () => {
  const items = [0, 1, 2, 3, 4, 5].map((h) => item(NOW - h * HOUR));
  const old = item(NOW - 30 * DAY);
  const ds = plan([...items, old], { maxBackups: 2, minRetentionDays: 1 });
  assert.deepEqual(keptNames(ds), items.map((i) => i.name), "more than maxBackups remain");
  assert.deepEqual(deletedNames(ds), [old.name]);
});

Deno.test("planRetention minRetentionDays 0 protects only backups after now", () => {
  const newest = item(NOW + 2000);
  const future = item(NOW + 1000);
  const now = item(NOW);
  const past = item(NOW - 1000);
  const ds = plan([past, now, future, newest], { maxBackups: 0, minRetentionDays: 0 });
  assert.deepEqual(keptNames(ds), [newest.name, future.name]);
  assert.deepEqual(decisionFor(ds, future.name).reasons, ["younger than --min-retention-days 0"]);
  assert.deepEqual(deletedNames(ds), [now.name, past.name]);
});

// --- maxBackups / minBackups ------------------------------------------------

Deno.test("planRetention maxBackups keeps the N newest and deletes the rest", () => {
  const items = daysAgo(0, 1, 2, 3, 4);
  const ds = plan(items, { maxBackups: 3 });
  assert.deepEqual(keptNames(ds), items.slice(0, 3).map((i) => i.name));
  assert.deepEqual(deletedNames(ds), items.slice(3).map((i) => i.name));
  for (const n of deletedNames(ds)) {
    assert.deepEqual(decisionFor(ds, n).reasons, ["beyond --max-backups 3"]);
  }
  // Kept ones that are not the newest are kept because nothing deletes them.
  assert.deepEqual(decisionFor(ds, items[1]!.name).reasons, ["no rule deletes it"]);
});

Deno.test("planRetention maxBackups at or above the count deletes nothing", () => {
  const items = daysAgo(0, 1, 2);
  assert.deepEqual(deletedNames(plan(items, { maxBackups: 3 })), []);
  assert.deepEqual(deletedNames(plan(items, { maxBackups: 100 })), []);
});

Deno.test("planRetention maxBackups 0 still keeps the newest", () => {
  const items = daysAgo(5, 0, 9, 2);
  const ds = plan(items, { maxBackups: 0 });
  assert.deepEqual(keptNames(ds), [nameAt(NOW)]);
  assert.deepEqual(decisionFor(ds, nameAt(NOW)).reasons, ["newest backup"]);
  assert.equal(deletedNames(ds).length, 3);
});

Deno.test("planRetention minBackups wins over maxBackups", () => {
  const items = daysAgo(0, 1, 2, 3, 4);
  const ds = plan(items, { maxBackups: 1, minBackups: 3 });
  assert.deepEqual(keptNames(ds), items.slice(0, 3).map((i) => i.name));
  assert.deepEqual(deletedNames(ds), items.slice(3).map((i) => i.name));
  assert.deepEqual(decisionFor(ds, items[2]!.name).reasons, [
    "one of the 3 newest (--min-backups)",
  ]);
});

Deno.test("planRetention minBackups wins over retentionDays", () => {
  const items = daysAgo(10, 20, 30, 40);
  const ds = plan(items, { retentionDays: 1, minBackups: 2 });
  assert.deepEqual(keptNames(ds), [items[0]!.name, items[1]!.name]);
  assert.deepEqual(deletedNames(ds), [items[2]!.name, items[3]!.name]);
});

Deno.test("planRetention minBackups alone deletes nothing", () => {
  const items = daysAgo(0, 100, 200, 300);
  const ds = plan(items, { minBackups: 1 });
  assert.deepEqual(deletedNames(ds), []);
});

Deno.test("planRetention deletes by retentionDays and maxBackups together, with both reasons", () => {
  const items = daysAgo(0, 1, 5, 6);
  const ds = plan(items, { retentionDays: 4, maxBackups: 3 });
  // 5 days: older than 4 days, still among the 3 newest. 6 days: both.
  assert.deepEqual(keptNames(ds), [items[0]!.name, items[1]!.name]);
  assert.deepEqual(decisionFor(ds, items[2]!.name).reasons, ["older than --retention-days 4"]);
  const both = decisionFor(ds, items[3]!.name).reasons;
  assert.equal(both.length, 2);
  assert.ok(both.some((r) => r.includes("older than --retention-days 4")), both.join("; "));
  assert.ok(both.some((r) => r.includes("--max-backups 3")), both.join("; "));
  // maxBackups alone deletes a young backup beyond the N newest.
  const ds2 = plan(daysAgo(0, 1, 2), { retentionDays: 30, maxBackups: 2 });
  assert.deepEqual(deletedNames(ds2), [nameAt(NOW - 2 * DAY)]);
});

// --- keepLast ---------------------------------------------------------------

Deno.test("planRetention keepLast alone keeps the N newest and deletes the rest", () => {
  const items = daysAgo(0, 1, 2, 3, 4);
  const ds = plan(items, { keepLast: 2 });
  assert.deepEqual(keptNames(ds), [items[0]!.name, items[1]!.name]);
  assert.deepEqual(deletedNames(ds), items.slice(2).map((i) => i.name));
  for (const n of deletedNames(ds)) {
    assert.deepEqual(decisionFor(ds, n).reasons, ["kept by no --keep-* rule"]);
  }
  assert.deepEqual(decisionFor(ds, items[1]!.name).reasons, ["one of the 2 newest (--keep-last)"]);
});

Deno.test("planRetention keep rules of 0 are no rule and delete nothing", () => {
  const items = daysAgo(0, 1, 2);
  const ds = plan(items, { keepLast: 0, keepDaily: 0 });
  assert.deepEqual(keptNames(ds), items.map((i) => i.name));
});

Deno.test("planRetention keepLast protects against maxBackups and retentionDays", () => {
  const items = daysAgo(10, 11, 12, 13);
  const ds = plan(items, { keepLast: 3, maxBackups: 1, retentionDays: 1 });
  assert.deepEqual(keptNames(ds), items.slice(0, 3).map((i) => i.name));
  assert.deepEqual(deletedNames(ds), [items[3]!.name]);
});

// --- keepDaily --------------------------------------------------------------

Deno.test("planRetention keepDaily keeps the newest backup of each of the last N days", () => {
  // Three backups a day for five days, at 02:00, 11:00 and 20:00 UTC.
  const items: RetentionItem[] = [];
  for (let d = 0; d < 5; d++) {
    for (const h of [2, 11, 20]) items.push(item(Date.UTC(2026, 10, 17 + d, h)));
  }
  const ds = planRetention(items, { keepDaily: 3 }, Date.UTC(2026, 10, 21, 23));
  assert.deepEqual(keptNames(ds), [
    "20261121_200000.manifest",
    "20261120_200000.manifest",
    "20261119_200000.manifest",
  ]);
  assert.equal(deletedNames(ds).length, 12);
  assert.deepEqual(decisionFor(ds, "20261120_200000.manifest").reasons, [
    "newest of day 2026-11-20 (--keep-daily)",
  ]);
  assert.deepEqual(decisionFor(ds, "20261121_200000.manifest").reasons, [
    "newest backup",
    "newest of day 2026-11-21 (--keep-daily)",
  ]);
});

Deno.test("planRetention keepDaily skips days without backups", () => {
  // Backups on Nov 21, then a 10-day gap, then Nov 10, 9 and 8.
  const items = [
    item(Date.UTC(2026, 10, 21, 8)),
    item(Date.UTC(2026, 10, 10, 9)),
    item(Date.UTC(2026, 10, 10, 7)),
    item(Date.UTC(2026, 10, 9, 9)),
    item(Date.UTC(2026, 10, 8, 9)),
  ];
  const ds = plan(items, { keepDaily: 3 });
  assert.deepEqual(keptNames(ds), [
    "20261121_080000.manifest",
    "20261110_090000.manifest",
    "20261109_090000.manifest",
  ]);
  assert.deepEqual(deletedNames(ds), ["20261110_070000.manifest", "20261108_090000.manifest"]);
});

Deno.test("planRetention keepDaily splits days at UTC midnight", () => {
  const lastMsOfDay = Date.UTC(2026, 10, 19, 23, 59, 59, 999);
  const firstMsOfNext = Date.UTC(2026, 10, 20, 0, 0, 0, 0);
  const items = [
    item(Date.UTC(2026, 10, 20, 10)),
    item(firstMsOfNext),
    item(lastMsOfDay),
    item(Date.UTC(2026, 10, 19, 1)),
  ];
  const ds = plan(items, { keepDaily: 2 });
  // 00:00:00.000 belongs to Nov 20 (not its newest); 23:59:59.999 is the newest of Nov 19.
  assert.deepEqual(keptNames(ds), ["20261120_100000.manifest", "20261119_235959.manifest"]);
  assert.deepEqual(deletedNames(ds), ["20261120_000000.manifest", "20261119_010000.manifest"]);
  assert.deepEqual(decisionFor(ds, "20261119_235959.manifest").reasons, [
    "newest of day 2026-11-19 (--keep-daily)",
  ]);
});

Deno.test("planRetention keepDaily larger than the number of days keeps one per day", () => {
  const items = [
    item(Date.UTC(2026, 10, 21, 10)),
    item(Date.UTC(2026, 10, 21, 9)),
    item(Date.UTC(2026, 10, 20, 10)),
  ];
  const ds = plan(items, { keepDaily: 30 });
  assert.deepEqual(deletedNames(ds), ["20261121_090000.manifest"]);
});

// --- keepWeekly -------------------------------------------------------------

Deno.test("planRetention keepWeekly uses ISO weeks across a year boundary", () => {
  const cases: [number, string][] = [
    [Date.UTC(2020, 11, 31, 12), "2020-W53"], // Thursday
    [Date.UTC(2021, 0, 3, 12), "2020-W53"], // Sunday
    [Date.UTC(2021, 0, 4, 0), "2021-W01"], // Monday
    [Date.UTC(2024, 11, 30, 12), "2025-W01"], // Monday
    [Date.UTC(2024, 11, 29, 23, 59, 59, 999), "2024-W52"], // Sunday
    [Date.UTC(2026, 0, 1, 12), "2026-W01"], // Thursday
    [Date.UTC(2025, 11, 29, 0), "2026-W01"], // Monday
    [Date.UTC(2025, 11, 28, 23, 59, 59), "2025-W52"], // Sunday
    [Date.UTC(2026, 10, 21, 12), "2026-W47"], // Saturday
  ];
  for (const [t, week] of cases) {
    const ds = planRetention([item(t)], { keepWeekly: 1 }, NOW);
    assert.deepEqual(ds[0]!.reasons, [
      "newest backup",
      `newest of week ${week} (--keep-weekly)`,
    ], new Date(t).toISOString());
  }
});

Deno.test("planRetention keepWeekly treats 2020-12-31 and 2021-01-03 as one week", () => {
  const items = [
    item(Date.UTC(2021, 0, 4, 12)), // 2021-W01
    item(Date.UTC(2021, 0, 3, 12)), // 2020-W53
    item(Date.UTC(2020, 11, 31, 12)), // 2020-W53
    item(Date.UTC(2020, 11, 27, 12)), // 2020-W52 (Sunday)
  ];
  const ds = plan(items, { keepWeekly: 3 });
  assert.deepEqual(keptNames(ds), [
    "20210104_120000.manifest",
    "20210103_120000.manifest",
    "20201227_120000.manifest",
  ]);
  assert.deepEqual(deletedNames(ds), ["20201231_120000.manifest"]);
  assert.deepEqual(decisionFor(ds, "20201227_120000.manifest").reasons, [
    "newest of week 2020-W52 (--keep-weekly)",
  ]);
});

Deno.test("planRetention keepWeekly puts 2024-12-30 in 2025-W01 with 2025-01-05", () => {
  const items = [
    item(Date.UTC(2025, 0, 5, 12)), // Sunday, 2025-W01
    item(Date.UTC(2024, 11, 30, 12)), // Monday, 2025-W01
    item(Date.UTC(2024, 11, 29, 12)), // Sunday, 2024-W52
  ];
  const ds = plan(items, { keepWeekly: 2 });
  assert.deepEqual(keptNames(ds), ["20250105_120000.manifest", "20241229_120000.manifest"]);
  assert.deepEqual(deletedNames(ds), ["20241230_120000.manifest"]);
});

Deno.test("planRetention keepWeekly skips weeks without backups", () => {
  const items = [
    item(Date.UTC(2026, 10, 20)), // 2026-W47
    item(Date.UTC(2026, 8, 1)), // 2026-W36
    item(Date.UTC(2026, 7, 31)), // 2026-W36 (Monday)
    item(Date.UTC(2026, 7, 30)), // 2026-W35 (Sunday)
    item(Date.UTC(2026, 7, 20)), // 2026-W34
  ];
  const ds = plan(items, { keepWeekly: 3 });
  assert.deepEqual(keptNames(ds), [
    "20261120_000000.manifest",
    "20260901_000000.manifest",
    "20260830_000000.manifest",
  ]);
  assert.deepEqual(deletedNames(ds), ["20260831_000000.manifest", "20260820_000000.manifest"]);
});

// --- keepMonthly / keepYearly -----------------------------------------------

Deno.test("planRetention keepMonthly keeps the newest of each of the last N months with backups", () => {
  const items = [
    item(Date.UTC(2026, 10, 21)),
    item(Date.UTC(2026, 10, 1)),
    item(Date.UTC(2026, 9, 31, 23, 59, 59, 999)),
    item(Date.UTC(2026, 9, 1)),
    // No backups from June to September.
    item(Date.UTC(2026, 4, 15)),
    item(Date.UTC(2026, 3, 30)),
  ];
  const ds = plan(items, { keepMonthly: 3 });
  assert.deepEqual(keptNames(ds), [
    "20261121_000000.manifest",
    "20261031_235959.manifest",
    "20260515_000000.manifest",
  ]);
  assert.deepEqual(deletedNames(ds), [
    "20261101_000000.manifest",
    "20261001_000000.manifest",
    "20260430_000000.manifest",
  ]);
  assert.deepEqual(decisionFor(ds, "20260515_000000.manifest").reasons, [
    "newest of month 2026-05 (--keep-monthly)",
  ]);
});

Deno.test("planRetention keepYearly keeps the newest of each of the last N years with backups", () => {
  const items = [
    item(Date.UTC(2026, 5, 1)),
    item(Date.UTC(2026, 0, 1)),
    item(Date.UTC(2024, 11, 31, 23, 59, 59, 999)),
    item(Date.UTC(2024, 0, 1)),
    item(Date.UTC(2019, 6, 1)),
    item(Date.UTC(2018, 6, 1)),
  ];
  const ds = plan(items, { keepYearly: 3 });
  assert.deepEqual(keptNames(ds), [
    "20260601_000000.manifest",
    "20241231_235959.manifest",
    "20190701_000000.manifest",
  ]);
  assert.deepEqual(deletedNames(ds), [
    "20260101_000000.manifest",
    "20240101_000000.manifest",
    "20180701_000000.manifest",
  ]);
  assert.deepEqual(decisionFor(ds, "20190701_000000.manifest").reasons, [
    "newest of year 2019 (--keep-yearly)",
  ]);
});

Deno.test("planRetention combines keep rules as a union and lists every reason", () => {
  // One backup a day at noon from 2026-09-01 to 2026-11-21.
  const items: RetentionItem[] = [];
  for (let t = Date.UTC(2026, 8, 1, 12); t <= NOW; t += DAY) items.push(item(t));
  const ds = plan(items, { keepLast: 2, keepDaily: 3, keepWeekly: 2, keepMonthly: 3 });
  assert.deepEqual(keptNames(ds), [
    "20261121_120000.manifest", // newest, last, day, week W47, month 11
    "20261120_120000.manifest", // last, day
    "20261119_120000.manifest", // day
    "20261115_120000.manifest", // week W46 (Sunday)
    "20261031_120000.manifest", // month 10
    "20260930_120000.manifest", // month 09
  ]);
  assert.deepEqual(decisionFor(ds, "20261121_120000.manifest").reasons, [
    "newest backup",
    "one of the 2 newest (--keep-last)",
    "newest of day 2026-11-21 (--keep-daily)",
    "newest of week 2026-W47 (--keep-weekly)",
    "newest of month 2026-11 (--keep-monthly)",
  ]);
  assert.deepEqual(decisionFor(ds, "20261120_120000.manifest").reasons, [
    "one of the 2 newest (--keep-last)",
    "newest of day 2026-11-20 (--keep-daily)",
  ]);
  assert.equal(deletedNames(ds).length, items.length - 6);
  for (const n of deletedNames(ds)) {
    assert.deepEqual(decisionFor(ds, n).reasons, ["kept by no --keep-* rule"], n);
  }
});

// --- how keep rules combine with the others ---------------------------------

Deno.test("planRetention with only keep rules deletes everything they do not keep", () => {
  const items = daysAgo(0, 0.5, 1, 2, 3, 4);
  const ds = plan(items, { keepDaily: 2 });
  // Days with backups: Nov 21 (two), Nov 20, 19, 18, 17; keep newest of Nov 21 and Nov 20.
  assert.deepEqual(keptNames(ds), [items[0]!.name, items[2]!.name]);
  assert.deepEqual(deletedNames(ds), [
    items[1]!.name,
    items[3]!.name,
    items[4]!.name,
    items[5]!.name,
  ]);
});

Deno.test("planRetention with only keep rules still honours minBackups and minRetentionDays", () => {
  const items = daysAgo(0, 1, 2, 3, 4, 5);
  const ds = plan(items, { keepLast: 1, minBackups: 2, minRetentionDays: 4 });
  // keepLast 1: day 0; minBackups 2: day 1; younger than 4 days: days 0-3.
  assert.deepEqual(keptNames(ds), items.slice(0, 4).map((i) => i.name));
  assert.deepEqual(deletedNames(ds), [items[4]!.name, items[5]!.name]);
  assert.deepEqual(decisionFor(ds, items[4]!.name).reasons, ["kept by no --keep-* rule"]);
  assert.deepEqual(decisionFor(ds, items[1]!.name).reasons, [
    "younger than --min-retention-days 4",
    "one of the 2 newest (--min-backups)",
  ]);
});

Deno.test("planRetention with keep rules and retentionDays only protects with the keep rules", () => {
  const items = daysAgo(0, 1, 2, 3, 10, 20, 40);
  const ds = plan(items, { keepLast: 1, keepMonthly: 2, retentionDays: 5 });
  // Young backups not matched by a keep rule stay: nothing deletes them.
  for (const k of [1, 2, 3]) {
    const d = decisionFor(ds, nameAt(NOW - k * DAY));
    assert.equal(d.delete, false, d.name);
    assert.deepEqual(d.reasons, ["no rule deletes it"], d.name);
  }
  // Months with backups: 2026-11 (days 0-20, newest day 0), 2026-10 (day 40: Oct 12).
  assert.deepEqual(deletedNames(ds), [nameAt(NOW - 10 * DAY), nameAt(NOW - 20 * DAY)]);
  assert.deepEqual(decisionFor(ds, nameAt(NOW - 40 * DAY)).reasons, [
    "newest of month 2026-10 (--keep-monthly)",
  ]);
  for (const k of [10, 20]) {
    assert.deepEqual(decisionFor(ds, nameAt(NOW - k * DAY)).reasons, [
      "older than --retention-days 5",
    ]);
  }
});

Deno.test("planRetention with keep rules and maxBackups only protects with the keep rules", () => {
  const items = daysAgo(0, 1, 2, 3, 4);
  const ds = plan(items, { keepDaily: 1, maxBackups: 3 });
  assert.deepEqual(keptNames(ds), items.slice(0, 3).map((i) => i.name));
  assert.deepEqual(decisionFor(ds, items[2]!.name).reasons, ["no rule deletes it"]);
  assert.deepEqual(deletedNames(ds), [items[3]!.name, items[4]!.name]);
});

Deno.test("planRetention keeps a backup by keep rules even when it is old and beyond maxBackups", () => {
  const items = daysAgo(0, 400, 800);
  const ds = plan(items, { retentionDays: 30, maxBackups: 1, keepYearly: 2 });
  assert.deepEqual(keptNames(ds), [items[0]!.name, items[1]!.name]);
  assert.deepEqual(deletedNames(ds), [items[2]!.name]);
  assert.equal(decisionFor(ds, items[2]!.name).reasons.length, 2);
});

// --- order --------------------------------------------------------------------

Deno.test("planRetention returns decisions newest first whatever the input order", () => {
  const items = daysAgo(0, 1, 2, 3, 4, 5, 6);
  const expected = items.map((i) => i.name);
  const orders = [
    items,
    [...items].reverse(),
    [items[3]!, items[0]!, items[6]!, items[2]!, items[5]!, items[1]!, items[4]!],
  ];
  for (const order of orders) {
    const ds = plan(order, { maxBackups: 3 });
    assert.deepEqual(ds.map((d) => d.name), expected);
    assert.deepEqual(deletedNames(ds), expected.slice(3));
  }
});

Deno.test("planRetention orders by time, not by name", () => {
  // Names that sort the other way from their times.
  const items = [
    { name: "a.manifest", timeMs: NOW },
    { name: "z.manifest", timeMs: NOW - DAY },
  ];
  const ds = plan(items, { maxBackups: 1 });
  assert.deepEqual(ds.map((d) => d.name), ["a.manifest", "z.manifest"]);
  assert.deepEqual(deletedNames(ds), ["z.manifest"]);
});

Deno.test("planRetention orders same-second backups by their _N suffix", () => {
  const t = Date.UTC(2026, 10, 21, 11, 0, 0);
  const items = [item(t), item(t, 2), item(t, 3)];
  for (const order of [items, [...items].reverse(), [items[1]!, items[0]!, items[2]!]]) {
    const ds = plan(order, { maxBackups: 1 });
    assert.deepEqual(ds.map((d) => d.name), [
      "20261121_110000_3.manifest",
      "20261121_110000_2.manifest",
      "20261121_110000.manifest",
    ]);
    assert.deepEqual(keptNames(ds), ["20261121_110000_3.manifest"]);
  }
});

Deno.test("planRetention orders same-second suffixes numerically (_10 after _9)", () => {
  const t = Date.UTC(2026, 10, 21, 11, 0, 0);
  const items = [item(t), item(t, 2), item(t, 9), item(t, 10), item(t, 11)];
  for (const order of [items, [...items].reverse()]) {
    const ds = plan(order, { maxBackups: 2 });
    assert.deepEqual(ds.map((d) => d.name), [
      "20261121_110000_11.manifest",
      "20261121_110000_10.manifest",
      "20261121_110000_9.manifest",
      "20261121_110000_2.manifest",
      "20261121_110000.manifest",
    ]);
    assert.deepEqual(keptNames(ds), ["20261121_110000_11.manifest", "20261121_110000_10.manifest"]);
  }
});

Deno.test("planRetention prefers the later time over the suffix within one second", () => {
  const base = Date.UTC(2026, 10, 21, 11, 0, 0);
  const items = [item(base + 900), item(base + 100, 2)];
  const ds = plan(items, { maxBackups: 1 });
  assert.deepEqual(keptNames(ds), ["20261121_110000.manifest"]);
  assert.deepEqual(deletedNames(ds), ["20261121_110000_2.manifest"]);
});

// --- validateRules ------------------------------------------------------------

const FLAGS: [keyof RetentionRules, string][] = [
  ["retentionDays", "--retention-days"],
  ["minRetentionDays", "--min-retention-days"],
  ["maxBackups", "--max-backups"],
  ["minBackups", "--min-backups"],
  ["keepLast", "--keep-last"],
  ["keepDaily", "--keep-daily"],
  ["keepWeekly", "--keep-weekly"],
  ["keepMonthly", "--keep-monthly"],
  ["keepYearly", "--keep-yearly"],
];

Deno.test("validateRules accepts whole numbers of at least 0 and absent rules", () => {
  validateRules({});
  // An explicit undefined (a flag not given) is skipped like an absent one.
  validateRules({ retentionDays: undefined } as unknown as RetentionRules);
  for (const [key] of FLAGS) {
    for (const v of [0, 1, 7, 365, Number.MAX_SAFE_INTEGER]) {
      assert.doesNotThrow(() => validateRules({ [key]: v }), `${key} = ${v}`);
    }
  }
  assert.doesNotThrow(() =>
    validateRules({
      retentionDays: 30,
      minRetentionDays: 1,
      maxBackups: 10,
      minBackups: 2,
      keepLast: 3,
      keepDaily: 7,
      keepWeekly: 4,
      keepMonthly: 12,
      keepYearly: 5,
    })
  );
});

Deno.test("validateRules rejects negative, fractional and non-number values naming the flag", () => {
  const bad: unknown[] = [-1, -0.5, 0.5, 1.5, Number.NaN, Infinity, -Infinity, "3", null, true, {}];
  for (const [key, flag] of FLAGS) {
    for (const v of bad) {
      const rules = { [key]: v } as unknown as RetentionRules;
      assert.throws(() => validateRules(rules), (e: unknown) => {
        assert.ok(e instanceof RangeError, `${key} = ${String(v)}: ${String(e)}`);
        assert.ok(
          e.message.startsWith(`${flag} `),
          `${key} = ${String(v)}: "${e.message}" names ${flag}`,
        );
        return true;
      });
    }
  }
});

Deno.test("validateRules names the offending flag when others are valid", () => {
  assert.throws(
    () => validateRules({ retentionDays: 30, keepWeekly: -2, maxBackups: 5 }),
    (e: unknown) =>
      e instanceof RangeError && /--keep-weekly\b/.test(e.message) && /-2/.test(e.message),
  );
});

Deno.test("planRetention validates the rules before planning", () => {
  assert.throws(
    () => planRetention(daysAgo(0, 1), { minBackups: 1.5 }, NOW),
    (e: unknown) => e instanceof RangeError && e.message.startsWith("--min-backups "),
  );
  assert.throws(
    () => planRetention([], { retentionDays: -1 }, NOW),
    (e: unknown) => e instanceof RangeError && e.message.startsWith("--retention-days "),
  );
});
