/**
 * `--read-data-subset`: which packs a partial data read covers, a
 * deterministic slice `n/t` or a random percentage.
 *
 * @module
 */
import { InvalidInput } from "../errors.ts";

/** Which packs `--read-data-subset` selects. */
export type DataSubset = { kind: "slice"; n: number; t: number } | {
  kind: "percent";
  percent: number;
};

/** Parses `n/t` or `N%` (throws InvalidInput). */
export function parseSubset(s: string): DataSubset {
  const slice = /^(\d+)\/(\d+)$/.exec(s);
  if (slice) {
    const n = Number(slice[1]);
    const t = Number(slice[2]);
    if (t >= 1 && n >= 1 && n <= t) return { kind: "slice", n, t };
  }
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(s);
  if (pct) {
    const percent = Number(pct[1]);
    if (percent > 0 && percent <= 100) return { kind: "percent", percent };
  }
  throw new InvalidInput(
    `"${s}" is not a subset: use n/t (for example 2/7) or a percentage (for example 10%)`,
  );
}

/** How the report names a subset: `subset 2/7`, `subset 10%`. */
export function describeSubset(s: DataSubset): string {
  return s.kind === "slice" ? `subset ${s.n}/${s.t}` : `subset ${s.percent}%`;
}

function inSubset(packHex: string, s: DataSubset, random: () => number): boolean {
  if (s.kind === "percent") return random() * 100 < s.percent;
  return parseInt(packHex.slice(0, 8), 16) % s.t === s.n - 1;
}

/**
 * The packs of `sorted` a subset reads: never none when there are packs, so
 * a subset of a small repository cannot report OK without reading anything
 * (an empty slice or an unlucky draw reads one pack, chosen the same way).
 */
export function pickSubset(sorted: string[], s: DataSubset, random: () => number): string[] {
  const picked = sorted.filter((hex) => inSubset(hex, s, random));
  if (picked.length > 0 || sorted.length === 0) return picked;
  const i = s.kind === "slice" ? (s.n - 1) % sorted.length : Math.floor(random() * sorted.length);
  return [sorted[Math.min(i, sorted.length - 1)]!];
}
