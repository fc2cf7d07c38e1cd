/**
 * The bendsave command line: argv -> options -> one library call -> output.
 *
 * @module
 */
import { classify, ExitCode, UsageError } from "./exit_codes.ts";
import { Output } from "./output.ts";
import { backupCommand } from "./commands/backup.ts";
import { listCommand } from "./commands/list.ts";
import { restoreCommand } from "./commands/restore.ts";
import { versionText } from "./commands/version.ts";
import { verifyCommand } from "./commands/verify.ts";
import { repairCommand } from "./commands/repair.ts";
import { vacuumCommand } from "./commands/vacuum.ts";
import { copyCommand } from "./commands/copy.ts";
import { showCommand } from "./commands/show.ts";

/** Top-level help. */
export const HELP = `bendsave: disaster-recovery backups for databases and directories

Usage: bendsave <command> [options]

Commands:
  backup    back up a directory into a repository (created on first use)
  list      list the backups in a repository
  show      print one backup's manifest (source, parts, statistics, catalog)
  restore   restore a backup (a dry run unless --confirm)
  verify    audit a repository (--read-data re-hashes every byte)
  vacuum    delete old backups by retention rules and collect garbage
  copy      copy backups to another repository (only the blocks it lacks)
  repair    repair index: rebuild the index from the packs
  wal-push  archive a PostgreSQL WAL file (archive_command = 'bendsave wal-push %p --to REPO')
  wal-fetch restore an archived WAL file (restore_command = 'bendsave wal-fetch %f %p --from REPO')

Run bendsave <command> --help for a command's options.
  --version   print the version, the repository formats it reads and writes, and how it was built

Exit codes: 0 ok, 1 failure, 2 usage or bad input, 3 backup done but some files could not be read.`;

const COMMANDS: Record<string, (args: string[], out: Output) => Promise<number>> = {
  backup: backupCommand,
  list: listCommand,
  restore: restoreCommand,
  verify: verifyCommand,
  repair: repairCommand,
  vacuum: vacuumCommand,
  copy: copyCommand,
  show: showCommand,
  // Loaded on demand: PostgreSQL starts one process per WAL file.
  "wal-push": async (args, out) =>
    (await import("./commands/wal_push.ts")).walPushCommand(args, out),
  "wal-fetch": async (args, out) =>
    (await import("./commands/wal_fetch.ts")).walFetchCommand(args, out),
};

/** Runs the CLI and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const json = args.includes("--json");
  const out = new Output({ json });
  try {
    const [cmd, ...rest] = args;
    if (cmd === undefined || cmd === "help" || cmd === "--help" || cmd === "-h") {
      console.log(HELP);
      return cmd === undefined ? ExitCode.usage : ExitCode.ok;
    }
    if (cmd === "--version" || cmd === "version") {
      console.log(versionText());
      return ExitCode.ok;
    }
    const run = COMMANDS[cmd];
    if (!run) throw new UsageError(`unknown command "${cmd}": run bendsave --help for the list`);
    return await run(rest, out);
  } catch (e) {
    out.done();
    const { code, bug } = classify(e);
    const message = (e as Error)?.message ?? String(e);
    if (json) {
      out.result({
        type: "error",
        error: (e as { code?: string }).code ?? "internal",
        message,
        exit_code: code,
      });
    }
    if (bug) {
      console.error(`bendsave: internal error (please report it): ${message}`);
      console.error((e as Error)?.stack ?? "");
    } else {
      console.error(`bendsave: ${message}`);
    }
    return code;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
