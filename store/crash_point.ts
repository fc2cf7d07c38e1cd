/**
 * Crash points for the crash-safety tests: when the environment variable
 * `BENDSAVE_CRASH_AT` names a point (e.g. `pack:2`, `index`, `manifest`),
 * the process kills itself with SIGKILL when it reaches that point, as a
 * power cut would. Unset (always, outside tests), this does nothing.
 *
 * @module
 */
import process from "node:process";

let target: { name: string; count: number } | null | undefined;
const seen = new Map<string, number>();

function configured(): { name: string; count: number } | null {
  if (target !== undefined) return target;
  let v: string | undefined;
  try {
    v = process.env.BENDSAVE_CRASH_AT;
  } catch {
    v = undefined; // no env permission: never crash
  }
  if (!v) return (target = null);
  const [name, n] = v.split(":");
  return (target = { name: name!, count: Number(n ?? 1) || 1 });
}

/** Kills the process with SIGKILL if `BENDSAVE_CRASH_AT` names this point (on its n-th visit). */
export function crashPoint(name: string): void {
  const t = configured();
  if (!t || t.name !== name) return;
  const n = (seen.get(name) ?? 0) + 1;
  seen.set(name, n);
  if (n === t.count) process.kill(process.pid, "SIGKILL");
}
