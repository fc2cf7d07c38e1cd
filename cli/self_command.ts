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
  const { argv, env } = selfArgv();
  return [
    ...Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`),
    ...argv.map(shellQuote),
  ].join(" ");
}

/**
 * The same command as {@linkcode selfCommand} as an argument vector and the
 * environment it sets, for starting bendsave again without a shell (the
 * background pusher and prefetcher of `wal-push --async` and `wal-fetch
 * --prefetch`).
 *
 * @example
 * ```ts ignore
 * const { argv, env } = selfArgv();
 * spawn(argv[0]!, [...argv.slice(1), "--version"], { env: { ...process.env, ...env } });
 * ```
 */
export function selfArgv(): { argv: string[]; env: Record<string, string> } {
  const exe = process.execPath;
  const runtime = /^(deno|bun)(\.exe)?$/.test(path.basename(exe));
  const main = new URL("./main.ts", import.meta.url);
  if (!runtime || main.protocol !== "file:") return { argv: [exe], env: {} };
  const checkout = path.dirname(path.dirname(main.pathname));
  const denoDir = process.env.DENO_DIR;
  return {
    argv: [
      exe,
      "run",
      "--allow-all",
      "--quiet",
      "--config",
      path.join(checkout, "deno.json"),
      main.pathname,
    ],
    env: {
      ...(denoDir ? { DENO_DIR: path.resolve(denoDir) } : {}),
      DENO_NO_UPDATE_CHECK: "1",
    },
  };
}
