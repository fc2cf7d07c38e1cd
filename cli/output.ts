/**
 * Rendering for the CLI: a progress line on a terminal, NDJSON with
 * `--json`, sizes and durations for humans, and tables.
 *
 * Every JSON value the CLI prints goes through {@linkcode toJsonCase}: one
 * casing, snake_case, for events, summaries, plans, reports and errors (the
 * library's objects are camelCase TypeScript; the conversion happens here,
 * at the boundary, and nowhere else). Progress is throttled here too, in
 * {@linkcode ProgressThrottle}, for the terminal line and NDJSON alike.
 *
 * @module
 */
import type { OperationEvent, ProgressEvent } from "../store/backup/events.ts";

/**
 * Keys whose values are maps keyed by data (labels, settings, paths), not by
 * field names: their own keys are left as they are.
 */
const OPAQUE_KEYS = new Set(["labels", "settings", "include", "sparse"]);

/** A camelCase field name (`filesNew`, `packsRead`); anything else is left alone. */
const CAMEL = /^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+$/;

/** `filesNew` -> `files_new`; `packsInScope` -> `packs_in_scope`. */
export function snakeCase(key: string): string {
  if (!CAMEL.test(key)) return key;
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * The JSON form of a value the CLI prints: every camelCase field name
 * becomes snake_case, recursively (arrays and plain objects; keys of
 * `labels`, `settings`, `include` and `sparse`, which are data, are kept);
 * a Uint8Array becomes hex and a Date its ISO string.
 *
 * @example
 * ```ts
 * import { toJsonCase } from "./output.ts";
 * const v = toJsonCase({ filesNew: 2, checked: { packsRead: 1 }, labels: { myKey: "x" } });
 * // { files_new: 2, checked: { packs_read: 1 }, labels: { myKey: "x" } }
 * console.log(JSON.stringify(v));
 * ```
 */
export function toJsonCase(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toJsonCase);
  if (value instanceof Uint8Array) {
    return Array.from(value, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Map) return toJsonCase(Object.fromEntries(value));
  if (value instanceof Set) return [...value].map(toJsonCase);
  if (value === null || typeof value !== "object") return value;
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    out[snakeCase(k)] = OPAQUE_KEYS.has(k) ? v : toJsonCase(v);
  }
  return out;
}

/**
 * Lets through at most one progress event per operation every `intervalMs`
 * (200 ms), and always the first of a phase and the one that completes it
 * (files and bytes at their totals). Warnings always pass.
 */
export class ProgressThrottle {
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #last = new Map<string, { at: number; phase: string }>();

  constructor(options: { intervalMs?: number; now?: () => number } = {}) {
    this.#intervalMs = options.intervalMs ?? 200;
    this.#now = options.now ?? Date.now;
  }

  /** True when `e` should be shown. */
  pass(e: ProgressEvent): boolean {
    const t = this.#now();
    const last = this.#last.get(e.operation);
    const complete = e.totalFiles > 0 && e.files >= e.totalFiles && e.bytes >= e.totalBytes;
    if (last && last.phase === e.phase && !complete && t - last.at < this.#intervalMs) {
      return false;
    }
    this.#last.set(e.operation, { at: t, phase: e.phase });
    return true;
  }
}

/** Formats a byte count with binary units ("1.5 MiB"). */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

/** Formats milliseconds as "1.2 s" or "1:02:03". */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** Throughput in bytes per second as "123 MiB/s". */
export function formatRate(bytes: number, ms: number): string {
  return ms <= 0 ? "-" : `${formatBytes(Math.round(bytes / (ms / 1000)))}/s`;
}

/** Left-aligned text table with a header row. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

const enc = new TextEncoder();

/** Where a command's output goes. */
export class Output {
  readonly json: boolean;
  /** Aborted by SIGINT or SIGTERM: pass it to every long operation. */
  readonly signal: AbortSignal;
  readonly #tty: boolean;
  readonly #throttle = new ProgressThrottle();
  #lineShown = false;
  #warnings = 0;

  constructor(options: { json: boolean; tty?: boolean; signal?: AbortSignal }) {
    this.json = options.json;
    this.signal = options.signal ?? new AbortController().signal;
    this.#tty = options.tty ?? Deno.stderr.isTerminal();
  }

  /** Reports a warning (bound, so it can be passed as a callback). */
  readonly warn = (message: string): void => this.event({ type: "warning", message });

  /** Number of warnings reported. */
  get warnings(): number {
    return this.#warnings;
  }

  /** Prints a line of human output on stdout (ignored with --json). */
  print(text: string): void {
    if (this.json) return;
    this.#clearLine();
    console.log(text);
  }

  /** Prints a line of human output on stderr (ignored with --json: the result carries it). */
  error(text: string): void {
    if (this.json) return;
    this.#clearLine();
    console.error(text);
  }

  /** Prints one JSON value on stdout (a line with --json), in snake_case ({@linkcode toJsonCase}). */
  result(value: unknown): void {
    if (this.json) this.#line(value);
  }

  #line(value: unknown): void {
    Deno.stdout.writeSync(enc.encode(JSON.stringify(toJsonCase(value)) + "\n"));
  }

  /** Renders a library event (progress throttled by {@linkcode ProgressThrottle}). */
  event(e: OperationEvent): void {
    if (e.type === "progress" && !this.#throttle.pass(e)) return;
    if (this.json) {
      this.#line(e);
      if (e.type === "warning") this.#warnings++;
      return;
    }
    if (e.type === "warning") {
      this.#warnings++;
      this.#clearLine();
      console.error(`warning: ${e.path ? e.path + ": " : ""}${e.message}`);
      return;
    }
    if (!this.#tty) return;
    let text: string;
    if (e.operation === "copy") {
      text = `copy: ${e.files}/${e.totalFiles} backups, ${e.blocks ?? 0} blocks, ${
        formatBytes(e.bytes)
      } copied (${formatRate(e.bytes, e.elapsedMs)}), ${e.blocksPresent ?? 0} already present`;
    } else if (e.phase === "scan" || e.totalBytes === 0) {
      const what = e.phase === "scan" ? "scanning, " : "";
      text = `${e.operation}: ${what}${e.files} files, ${formatBytes(e.bytes)}`;
    } else {
      const pct = e.totalBytes > 0 ? Math.floor((e.bytes / e.totalBytes) * 100) : 100;
      const rate = e.elapsedMs > 0 ? e.bytes / (e.elapsedMs / 1000) : 0;
      const eta = rate > 0 ? formatDuration(((e.totalBytes - e.bytes) / rate) * 1000) : "-";
      const unit = e.operation === "vacuum" ? "steps" : "files";
      text = `${e.operation}: ${formatBytes(e.bytes)} / ${formatBytes(e.totalBytes)} (${pct}%), ` +
        `${e.files}/${e.totalFiles} ${unit}, ${formatRate(e.bytes, e.elapsedMs)}, ETA ${eta}`;
    }
    const cols = (() => {
      try {
        return Deno.consoleSize().columns;
      } catch {
        return 100;
      }
    })();
    Deno.stderr.writeSync(enc.encode(`\r\x1b[K${text.slice(0, cols - 1)}`));
    this.#lineShown = true;
  }

  #clearLine(): void {
    if (this.#lineShown) {
      Deno.stderr.writeSync(enc.encode("\r\x1b[K"));
      this.#lineShown = false;
    }
  }

  /** Ends the progress line. */
  done(): void {
    this.#clearLine();
  }
}
