/**
 * Rendering for the CLI: a progress line on a terminal, NDJSON with
 * `--json`, sizes and durations for humans, and tables.
 *
 * @module
 */
import type { OperationEvent } from "../store/backup/events.ts";

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
  readonly #tty: boolean;
  #lineShown = false;
  #warnings = 0;

  constructor(options: { json: boolean; tty?: boolean }) {
    this.json = options.json;
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

  /** Prints one JSON value on stdout (a line with --json). */
  result(value: unknown): void {
    if (this.json) Deno.stdout.writeSync(enc.encode(JSON.stringify(value) + "\n"));
  }

  /** Renders a library event. */
  event(e: OperationEvent): void {
    if (this.json) {
      Deno.stdout.writeSync(enc.encode(JSON.stringify(e) + "\n"));
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
    if (e.phase === "scan") {
      text = `${e.operation}: scanning, ${e.files} files, ${formatBytes(e.bytes)}`;
    } else {
      const pct = e.totalBytes > 0 ? Math.floor((e.bytes / e.totalBytes) * 100) : 100;
      const rate = e.elapsedMs > 0 ? e.bytes / (e.elapsedMs / 1000) : 0;
      const eta = rate > 0 ? formatDuration(((e.totalBytes - e.bytes) / rate) * 1000) : "-";
      text = `${e.operation}: ${formatBytes(e.bytes)} / ${formatBytes(e.totalBytes)} (${pct}%), ` +
        `${e.files}/${e.totalFiles} files, ${formatRate(e.bytes, e.elapsedMs)}, ETA ${eta}`;
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
