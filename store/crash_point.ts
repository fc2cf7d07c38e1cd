/**
 * Crash points for the crash-safety tests: when the environment variable
 * `BENDSAVE_CRASH_AT` names a point (e.g. `pack:2`, `index`, `manifest`),
 * the process kills itself with SIGKILL when it reaches that point, as a
 * power cut would. `BENDSAVE_SIGNAL_AT` names a point the same way where
 * the process gets SIGINT instead, as Ctrl-C at that instant would (the
 * cancellation tests): its SIGINT listeners run at once, or without one, it
 * sends itself the signal. Unset (always, outside tests), this does nothing.
 *
 * @module
 */
import process from "node:process";

type Point = { name: string; count: number } | null;
let target: Point | undefined;
let signalTarget: Point | undefined;
const seen = new Map<string, number>();

function point(variable: string): Point {
  let v: string | undefined;
  try {
    v = process.env[variable];
  } catch {
    v = undefined; // no env permission: never crash
  }
  if (!v) return null;
  const [name, n] = v.split(":");
  return { name: name!, count: Number(n ?? 1) || 1 };
}

function configured(): Point {
  if (target === undefined) target = point("BENDSAVE_CRASH_AT");
  if (signalTarget === undefined) signalTarget = point("BENDSAVE_SIGNAL_AT");
  return target;
}

/** Kills the process with SIGKILL if `BENDSAVE_CRASH_AT` names this point (on its n-th visit). */
export function crashPoint(name: string): void {
  const t = configured();
  const s = signalTarget;
  if (t?.name !== name && s?.name !== name) return;
  const n = (seen.get(name) ?? 0) + 1;
  seen.set(name, n);
  if (t?.name === name && n === t.count) process.kill(process.pid, "SIGKILL");
  if (s?.name === name && n === s.count) {
    // The CLI's SIGINT handler, run right here as if Ctrl-C came at this instant: a real
    // signal to itself is delivered through the event loop, which may turn only after the
    // next commit point on a busy machine, so the test would not hit the point it names.
    if (process.listenerCount("SIGINT") > 0) process.emit("SIGINT", "SIGINT");
    else process.kill(process.pid, "SIGINT");
  }
}
