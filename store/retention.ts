/**
 * Retention: which backups a vacuum deletes. Pure logic over (name, time)
 * pairs and a clock, so every boundary can be tested.
 *
 * How the rules combine (README, "vacuum"):
 *
 * 1. Candidates for deletion:
 *    - `retentionDays`: backups older than N days;
 *    - `maxBackups`: backups beyond the N newest;
 *    - when only `keep*` rules of at least 1 are given (neither of the
 *      above), every backup that no `keep*` rule keeps.
 * 2. Protected (never deleted, whatever step 1 says):
 *    - the newest backup;
 *    - `minRetentionDays`: backups younger than N days;
 *    - `minBackups`: the N newest;
 *    - `keepLast`: the N newest;
 *    - `keepDaily` / `keepWeekly` / `keepMonthly` / `keepYearly`: the newest
 *      backup of each of the last N days / ISO weeks / months / years that
 *      have a backup (periods in UTC; periods without backups do not count,
 *      so a pause in backups never empties the history).
 * 3. Deleted = candidates minus protected. Protection wins over
 *    `maxBackups`, so more than N backups can remain.
 *
 * "Older than N days" means `time < now - N * 24 h`; "younger than N days"
 * means `time > now - N * 24 h`.
 *
 * The rules apply to each group on its own (items with the same `group`;
 * by default a group per source, see source_groups.ts): "the newest", "the N
 * newest" and "the newest of each day" are the newest of that group.
 *
 * @module
 */
import { compareManifestNames } from "../formats/manifest.ts";

/** The retention flags. All optional; none means nothing is deleted. */
export interface RetentionRules {
  readonly retentionDays?: number;
  readonly minRetentionDays?: number;
  readonly maxBackups?: number;
  readonly minBackups?: number;
  readonly keepLast?: number;
  readonly keepDaily?: number;
  readonly keepWeekly?: number;
  readonly keepMonthly?: number;
  readonly keepYearly?: number;
}

/** A backup as retention sees it. */
export interface RetentionItem {
  readonly name: string;
  readonly timeMs: number;
  /** The group the rules apply within (default: one group for all). */
  readonly group?: string;
}

/** The decision for one backup. */
export interface RetentionDecision {
  readonly name: string;
  readonly timeMs: number;
  /** The item's group ("" when none was given). */
  readonly group: string;
  readonly delete: boolean;
  /** Why it is kept (every rule that keeps it) or deleted. */
  readonly reasons: string[];
}

const DAY_MS = 24 * 60 * 60 * 1000;

function periodKey(kind: "daily" | "weekly" | "monthly" | "yearly", t: number): string {
  const d = new Date(t);
  const y = d.getUTCFullYear();
  switch (kind) {
    case "daily":
      return d.toISOString().slice(0, 10);
    case "monthly":
      return `${y}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
    case "yearly":
      return String(y);
    case "weekly": {
      // ISO week: the week belongs to the year of its Thursday.
      const day = (d.getUTCDay() + 6) % 7; // Monday = 0
      const thursday = new Date(Date.UTC(y, d.getUTCMonth(), d.getUTCDate() - day + 3));
      const jan4 = new Date(Date.UTC(thursday.getUTCFullYear(), 0, 4));
      const week = 1 +
        Math.round(
          ((thursday.getTime() - jan4.getTime()) / DAY_MS - 3 + ((jan4.getUTCDay() + 6) % 7)) / 7,
        );
      return `${thursday.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
    }
  }
}

/** The rule names, in the order the CLI lists them. */
export const RULE_KEYS: readonly (keyof RetentionRules)[] = [
  "retentionDays",
  "minRetentionDays",
  "maxBackups",
  "minBackups",
  "keepLast",
  "keepDaily",
  "keepWeekly",
  "keepMonthly",
  "keepYearly",
];

/** Checks that every given rule is a whole number of at least 0 (TypeError/RangeError otherwise). */
export function validateRules(r: RetentionRules): void {
  for (const k of RULE_KEYS) {
    const v: unknown = r[k];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      throw new RangeError(
        `--${
          k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())
        } must be a whole number of at least 0, not "${v}"`,
      );
    }
  }
}

const newestFirst = (a: RetentionItem, b: RetentionItem) =>
  b.timeMs - a.timeMs || compareManifestNames(b.name, a.name);

/**
 * Decides which backups to delete, applying the rules within each group.
 * Items may come in any order; decisions are newest first.
 */
export function planRetention(
  items: readonly RetentionItem[],
  rules: RetentionRules,
  nowMs: number,
): RetentionDecision[] {
  validateRules(rules);
  const groups = new Map<string, RetentionItem[]>();
  for (const it of items) {
    const g = groups.get(it.group ?? "") ?? [];
    g.push(it);
    groups.set(it.group ?? "", g);
  }
  const all: RetentionDecision[] = [];
  for (const [group, members] of groups) all.push(...planGroup(members, group, rules, nowMs));
  return all.sort(newestFirst);
}

function planGroup(
  items: readonly RetentionItem[],
  group: string,
  rules: RetentionRules,
  nowMs: number,
): RetentionDecision[] {
  const sorted = [...items].sort(newestFirst);
  const keep = new Map<string, string[]>();
  const why = (name: string, reason: string) => {
    const l = keep.get(name) ?? [];
    l.push(reason);
    keep.set(name, l);
  };
  if (sorted.length > 0) why(sorted[0]!.name, "newest backup");
  sorted.forEach((it, i) => {
    if (
      rules.minRetentionDays !== undefined && it.timeMs > nowMs - rules.minRetentionDays * DAY_MS
    ) {
      why(it.name, `younger than --min-retention-days ${rules.minRetentionDays}`);
    }
    if (rules.minBackups !== undefined && i < rules.minBackups) {
      why(it.name, `one of the ${rules.minBackups} newest (--min-backups)`);
    }
    if (rules.keepLast !== undefined && i < rules.keepLast) {
      why(it.name, `one of the ${rules.keepLast} newest (--keep-last)`);
    }
  });
  const periods: ["daily" | "weekly" | "monthly" | "yearly", number | undefined][] = [
    ["daily", rules.keepDaily],
    ["weekly", rules.keepWeekly],
    ["monthly", rules.keepMonthly],
    ["yearly", rules.keepYearly],
  ];
  for (const [kind, n] of periods) {
    if (!n) continue;
    const seen = new Set<string>();
    for (const it of sorted) {
      const k = periodKey(kind, it.timeMs);
      if (seen.has(k)) continue;
      if (seen.size >= n) break;
      seen.add(k);
      why(
        it.name,
        `newest of ${kind === "daily" ? "day" : kind.replace("ly", "")} ${k} (--keep-${kind})`,
      );
    }
  }
  const keepOnly = rules.retentionDays === undefined && rules.maxBackups === undefined &&
    [rules.keepLast, rules.keepDaily, rules.keepWeekly, rules.keepMonthly, rules.keepYearly].some((
      v,
    ) => v !== undefined && v > 0); // a keep rule of 0 is no rule
  return sorted.map((it, i) => {
    const candidate: string[] = [];
    if (rules.retentionDays !== undefined && it.timeMs < nowMs - rules.retentionDays * DAY_MS) {
      candidate.push(`older than --retention-days ${rules.retentionDays}`);
    }
    if (rules.maxBackups !== undefined && i >= rules.maxBackups) {
      candidate.push(`beyond --max-backups ${rules.maxBackups}`);
    }
    if (keepOnly && !keep.has(it.name)) candidate.push("kept by no --keep-* rule");
    const kept = keep.get(it.name);
    if (candidate.length > 0 && !kept) {
      return { name: it.name, timeMs: it.timeMs, group, delete: true, reasons: candidate };
    }
    return {
      name: it.name,
      timeMs: it.timeMs,
      group,
      delete: false,
      reasons: kept ?? ["no rule deletes it"],
    };
  });
}
