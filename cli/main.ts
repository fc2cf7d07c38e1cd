/**
 * The bendsave command line: argv -> options -> one library call -> output.
 *
 * @module
 */
import { classify, ExitCode, UsageError } from "./exit_codes.ts";
import { Output } from "./output.ts";
import { cancelledLine, CancelScope } from "./cancel.ts";
import { Cancelled } from "../store/errors.ts";
import { versionText } from "./commands/version.ts";

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
  key       key slots of an encrypted repository: list, add, passwd, remove, export, import

Run bendsave <command> --help for a command's options.
  --version   print the version, the repository formats it reads and writes, and how it was built

Encrypted repositories (backup --encrypt): the passphrase comes from BENDSAVE_PASSWORD,
--password-file FILE or --password-command CMD (any command), never from the command line.
copy --encrypt encrypts an existing repository's backups into a new one (or rotates a master key).

Exit codes: 0 ok, 1 failure, 2 usage or bad input, 3 backup done but some files could not be read,
4 encrypted repository and no passphrase or a wrong one, 130 cancelled (SIGINT, SIGTERM).`;

type Command = (args: string[], out: Output) => Promise<number>;

// Each command is loaded when it runs, so a process imports only what its
// command needs (PostgreSQL starts one wal-push process per WAL file).
const COMMANDS: Record<string, Command> = {
  backup: async (a, o) => (await import("./commands/backup.ts")).backupCommand(a, o),
  list: async (a, o) => (await import("./commands/list.ts")).listCommand(a, o),
  restore: async (a, o) => (await import("./commands/restore.ts")).restoreCommand(a, o),
  verify: async (a, o) => (await import("./commands/verify.ts")).verifyCommand(a, o),
  repair: async (a, o) => (await import("./commands/repair.ts")).repairCommand(a, o),
  vacuum: async (a, o) => (await import("./commands/vacuum.ts")).vacuumCommand(a, o),
  copy: async (a, o) => (await import("./commands/copy.ts")).copyCommand(a, o),
  show: async (a, o) => (await import("./commands/show.ts")).showCommand(a, o),
  "wal-push": async (a, o) => (await import("./commands/wal_push.ts")).walPushCommand(a, o),
  "wal-fetch": async (a, o) => (await import("./commands/wal_fetch.ts")).walFetchCommand(a, o),
  key: async (a, o) => (await import("./commands/key.ts")).keyCommand(a, o),
};

/** Runs the CLI and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const json = args.includes("--json");
  const cancel = new CancelScope().install();
  const out = new Output({ json, signal: cancel.signal });
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
  } catch (thrown) {
    out.done();
    // A failure after a signal is the cancellation's doing (a child process that got it, say).
    const e = !(thrown instanceof Cancelled) && cancel.received !== null
      ? new Cancelled(`cancelled (${cancel.received})`, {
        cause: thrown,
        committed: `stopped with: ${(thrown as Error)?.message ?? String(thrown)}`,
      })
      : thrown;
    const { code, bug } = classify(e);
    const message = e instanceof Cancelled
      ? cancelledLine(e, cancel.received)
      : (e as Error)?.message ?? String(e);
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
  } finally {
    cancel.uninstall();
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
