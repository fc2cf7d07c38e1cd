/**
 * Machine-wide CPU accounting from `/proc/stat`, so the harness can wait for
 * a quiet machine before a timed step and tell afterwards whether other
 * processes (or the hypervisor, as steal time) competed with the tool.
 *
 * @module
 */

import { readFileSync } from "node:fs";

/** Cumulative machine-wide CPU seconds (all cores). */
export interface CpuTimes {
  /** Busy time: user, nice, system, irq and softirq. */
  busy: number;
  /** Idle time, including I/O wait. */
  idle: number;
  /** Time the hypervisor gave to other guests. */
  steal: number;
}

/** Clock ticks per second of `/proc/stat` (USER_HZ, 100 on Linux). */
const TICKS = 100;

/** Reads the machine-wide CPU times, or null where `/proc/stat` is missing. */
export function readCpuTimes(): CpuTimes | null {
  let text: string;
  try {
    text = readFileSync("/proc/stat", "utf8");
  } catch {
    return null;
  }
  const line = text.split("\n").find((l) => l.startsWith("cpu "));
  if (line === undefined) return null;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const at = (i: number) => f[i] ?? 0;
  return {
    busy: (at(0) + at(1) + at(2) + at(5) + at(6)) / TICKS,
    idle: (at(3) + at(4)) / TICKS,
    steal: at(7) / TICKS,
  };
}

/** The difference `after - before`. */
export function cpuDelta(before: CpuTimes, after: CpuTimes): CpuTimes {
  return {
    busy: after.busy - before.busy,
    idle: after.idle - before.idle,
    steal: after.steal - before.steal,
  };
}

/** The outcome of {@linkcode waitForQuiet}. */
export interface QuietResult {
  /** True when a quiet sample was seen before the deadline. */
  quiet: boolean;
  /** Seconds spent waiting. */
  waitedS: number;
  /** Cores busy (busy + steal) in the last sample. */
  busyCores: number;
}

/**
 * Samples the machine for `sampleMs` at a time until fewer than
 * `maxBusyCores` cores are busy (the caller must itself be idle), or until
 * `maxWaitS` seconds have passed.
 *
 * @example
 * ```ts
 * const q = await waitForQuiet({ maxBusyCores: 0.15, maxWaitS: 60 });
 * if (!q.quiet) console.warn("the machine stayed busy");
 * ```
 */
export async function waitForQuiet(
  options: { maxBusyCores: number; maxWaitS: number; sampleMs?: number },
): Promise<QuietResult> {
  const sampleMs = options.sampleMs ?? 1000;
  const start = performance.now();
  let busyCores = 0;
  for (;;) {
    const before = readCpuTimes();
    await new Promise((resolve) => setTimeout(resolve, sampleMs));
    const after = readCpuTimes();
    const waitedS = (performance.now() - start) / 1000;
    if (before === null || after === null) return { quiet: true, waitedS, busyCores: 0 };
    const d = cpuDelta(before, after);
    busyCores = (d.busy + d.steal) / (sampleMs / 1000);
    if (busyCores < options.maxBusyCores) return { quiet: true, waitedS, busyCores };
    if (waitedS >= options.maxWaitS) return { quiet: false, waitedS, busyCores };
  }
}
