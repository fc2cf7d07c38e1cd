/**
 * The benchmark's results and their markdown rendering: one row per step,
 * one column per tool, and bendsave÷peer ratio columns.
 *
 * @module
 */

import type { ToolName } from "./tools.ts";
import type { TreeComparison } from "./tree.ts";

/** The steps measured for every tool, in table order. */
export const STEPS = [
  { id: "init", label: "init repository" },
  { id: "first", label: "backup (first)" },
  { id: "unchanged", label: "backup (unchanged)" },
  { id: "changed", label: "backup (after ~1% change)" },
  { id: "restore", label: "restore latest into empty dir" },
  { id: "verify", label: "verify, reading all data" },
] as const;

/** One of the step ids of {@linkcode STEPS}. */
export type StepId = typeof STEPS[number]["id"];

/** How a step ended. */
export type StepStatus = "ok" | "failed" | "skipped" | "n/a" | "not installed";

/** The outcome of one step of one tool. */
export interface StepResult {
  /** How it ended. */
  status: StepStatus;
  /** Wall-clock seconds (for `ok` and `failed`). */
  seconds?: number;
  /** Why it was skipped or not applicable, or the failure's exit status and output tail. */
  detail?: string;
  /** CPU seconds (user + system) of the tool and its descendants. */
  cpuSeconds?: number;
  /** Peak resident set size in KiB (GNU time's maximum resident set size). */
  peakRssKb?: number;
  /** Set when other processes or steal time competed with the tool during the step. */
  contended?: string;
  /** Each round's seconds, when several rounds were merged (`seconds` is their median). */
  samples?: number[];
}

/** Everything measured for one tool. */
export interface ToolResult {
  /** The tool. */
  name: ToolName;
  /** Version line, or null when not installed. */
  version: string | null;
  /** Per-step outcomes. */
  steps: Partial<Record<StepId, StepResult>>;
  /** Apparent bytes of the repository after all backups, if it exists. */
  repoBytes?: number;
  /** The restore check against the source, when a restore succeeded. */
  check?: TreeComparison;
  /** Which corpus state the restore was compared with. */
  checkAgainst?: string;
  /** Extra lines for the report (for example the listing check). */
  notes: string[];
}

/** Formats a count with thousands separators. */
export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

/** Formats bytes as decimal megabytes with one decimal (kilobytes below 1 MB). */
export function formatMB(bytes: number): string {
  return bytes < 1e6 ? `${(bytes / 1e3).toFixed(1)} kB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

function cell(result: StepResult | undefined): string {
  if (result === undefined) return "—";
  switch (result.status) {
    case "ok": {
      const star = result.contended ? "*" : "";
      const samples = result.samples ?? [];
      if (samples.length < 2) return (result.seconds ?? 0).toFixed(2) + star;
      const range = `${Math.min(...samples).toFixed(2)}–${Math.max(...samples).toFixed(2)}`;
      return `${(result.seconds ?? 0).toFixed(2)}${star} (${range})`;
    }
    case "failed":
      return "FAILED";
    default:
      return result.status;
  }
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || b <= 0) return "—";
  return `${(a / b).toFixed(2)}`;
}

function okSeconds(result: StepResult | undefined): number | undefined {
  return result?.status === "ok" ? result.seconds : undefined;
}

/**
 * Renders the results table: rows are steps (plus repository size), columns
 * are the tools' seconds and, when bendsave and a peer were both run,
 * bendsave÷peer ratios (below 1 means bendsave is faster or smaller).
 */
export function renderTable(results: readonly ToolResult[]): string {
  const bendsave = results.find((r) => r.name === "bendsave");
  const peers = bendsave === undefined ? [] : results.filter((r) => r.name !== "bendsave");
  const header = [
    "step",
    ...results.map((r) => `${r.name} (s)`),
    ...peers.map((p) => `bendsave÷${p.name}`),
  ];
  const lines = headLines(header);
  for (const step of STEPS) {
    const row = [step.label, ...results.map((r) => cell(r.steps[step.id]))];
    for (const peer of peers) {
      row.push(ratio(okSeconds(bendsave?.steps[step.id]), okSeconds(peer.steps[step.id])));
    }
    lines.push(`| ${row.join(" | ")} |`);
  }
  const sizeRow = [
    "repository size (MB)",
    ...results.map((r) => (r.repoBytes === undefined ? "—" : (r.repoBytes / 1e6).toFixed(1))),
    ...peers.map((p) => ratio(bendsave?.repoBytes, p.repoBytes)),
  ];
  lines.push(`| ${sizeRow.join(" | ")} |`);
  return lines.join("\n");
}

/** A markdown table's head: the names, then the step column left-aligned and the others right. */
function headLines(header: readonly string[]): string[] {
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
  ];
}

/**
 * Renders the CPU table: CPU seconds (user + system, all threads and child
 * processes) of each tool per step, and CPU÷wall, the average cores it kept busy.
 */
export function renderCpuTable(results: readonly ToolResult[]): string {
  const header = ["step", ...results.map((r) => `${r.name} CPU s (cores)`)];
  const lines = headLines(header);
  for (const step of STEPS) {
    const row: string[] = [step.label];
    for (const r of results) {
      const s = r.steps[step.id];
      if (s?.status !== "ok" || s.cpuSeconds === undefined || s.seconds === undefined) {
        row.push("—");
        continue;
      }
      const cores = s.seconds > 0 ? s.cpuSeconds / s.seconds : 0;
      row.push(`${s.cpuSeconds.toFixed(2)} (${cores.toFixed(2)})`);
    }
    lines.push(`| ${row.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** A peak RSS of `kb` KiB (GNU time's unit) in MB of 10^6 bytes, as the reports print it. */
export function rssMB(kb: number): number {
  return kb * 1024 / 1e6;
}

/**
 * Renders the memory table: peak resident set size (MB, 10^6 bytes) of each
 * tool per step, and bendsave's ÷ each peer's when both were measured.
 */
export function renderMemoryTable(results: readonly ToolResult[]): string {
  const mb = (s: StepResult | undefined) =>
    s?.status === "ok" && s.peakRssKb !== undefined ? rssMB(s.peakRssKb) : undefined;
  const base = results.find((r) => r.name === "bendsave");
  const peers = results.filter((r) => r !== base);
  const header = [
    "step",
    ...results.map((r) => `${r.name} peak RSS (MB)`),
    ...(base ? peers.map((p) => `bendsave÷${p.name}`) : []),
  ];
  const lines = headLines(header);
  for (const step of STEPS) {
    const row: string[] = [step.label];
    for (const r of results) {
      const v = mb(r.steps[step.id]);
      row.push(v === undefined ? "—" : v.toFixed(0));
    }
    if (base) {
      const b = mb(base.steps[step.id]);
      for (const p of peers) {
        const v = mb(p.steps[step.id]);
        row.push(b === undefined || v === undefined || v === 0 ? "—" : (b / v).toFixed(2));
      }
    }
    lines.push(`| ${row.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** Renders the footnotes of steps marked `*` (contended by other processes). */
export function renderContention(results: readonly ToolResult[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    for (const step of STEPS) {
      const s = r.steps[step.id];
      if (s?.contended) lines.push(`- \\* ${r.name}, ${step.label}: ${s.contended}`);
    }
  }
  return lines;
}

/** Renders one line per tool saying whether its restored tree matched the source. */
export function renderChecks(results: readonly ToolResult[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    const c = r.check;
    if (c === undefined) {
      if (r.version !== null) {
        lines.push(`- ${r.name}: restore not checked (no successful restore)`);
      }
      continue;
    }
    const against = r.checkAgainst ? ` (${r.checkAgainst})` : "";
    const meta = `${c.modeDiffers} mode and ${c.mtimeDiffers} file-mtime differences`;
    if (c.identical) {
      lines.push(
        `- ${r.name}: restored tree is byte-identical to the source${against}: same file list, ` +
          `SHA-256 of all ${formatCount(c.files)} files (${formatMB(c.bytes)}) match; ${meta}`,
      );
    } else {
      const sample = [
        ...c.missing.slice(0, 3).map((p) => `missing ${p}`),
        ...c.extra.slice(0, 3).map((p) => `extra ${p}`),
        ...c.differing.slice(0, 3).map((p) => `differs ${p}`),
      ].join(", ");
      lines.push(
        `- ${r.name}: restored tree DIFFERS from the source${against}: ${c.missing.length} missing, ` +
          `${c.extra.length} extra, ${c.differing.length} differing entries (e.g. ${sample}); ${meta}`,
      );
    }
  }
  return lines;
}

/** Renders the failures with their output tails, as markdown. */
export function renderFailures(results: readonly ToolResult[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    for (const step of STEPS) {
      const s = r.steps[step.id];
      if (s?.status !== "failed") continue;
      lines.push(`#### ${r.name}: ${step.label} FAILED`, "", "```", s.detail ?? "", "```", "");
    }
  }
  return lines;
}
