/**
 * Starts this same bendsave again as a detached background process (the
 * pusher of `wal-push --async`, the prefetcher of `wal-fetch --prefetch`):
 * its own session, no terminal, standard streams closed, not waited for, so
 * PostgreSQL's archiver or startup process sees the foreground exit at once.
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { selfArgv } from "./self_command.ts";

/** Spawns `bendsave <args...>` detached, in the working directory. */
export function startBackground(args: readonly string[]): void {
  const { argv, env } = selfArgv();
  const child = spawn(argv[0]!, [...argv.slice(1), ...args], {
    detached: true,
    stdio: "ignore",
    cwd: process.cwd(),
    env: { ...process.env, ...env },
  });
  child.on("error", () => {}); // the foreground notices: no status comes, it times out
  child.unref();
}
