/**
 * The shell command that runs this same bendsave again, for the
 * `restore_command` a point-in-time restore writes: the single executable
 * itself, or, when run from source, this Deno with this checkout's entry
 * point (and the `DENO_DIR` in use, so another user such as `postgres`
 * finds the same cache).
 *
 * @module
 */
import { shellQuote } from "../formats/shell.ts";
import path from "node:path";
import process from "node:process";

/**
 * The command, to which a subcommand and its arguments are appended.
 *
 * @example
 * ```ts ignore
 * `${selfCommand()} wal-fetch %f %p --from /backups/pg`
 * ```
 */
export function selfCommand(): string {
  const exe = process.execPath;
  const runtime = /^(deno|bun)(\.exe)?$/.test(path.basename(exe));
  const main = new URL("./main.ts", import.meta.url);
  if (!runtime || main.protocol !== "file:") return shellQuote(exe);
  const checkout = path.dirname(path.dirname(main.pathname));
  const denoDir = process.env.DENO_DIR;
  return [
    ...(denoDir ? [`DENO_DIR=${shellQuote(path.resolve(denoDir))}`] : []),
    "DENO_NO_UPDATE_CHECK=1",
    shellQuote(exe),
    "run",
    "--allow-all",
    "--quiet",
    "--config",
    shellQuote(path.join(checkout, "deno.json")),
    shellQuote(main.pathname),
  ].join(" ");
}
