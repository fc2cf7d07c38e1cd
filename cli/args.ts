/**
 * Command-line parsing on node:util's parseArgs, with bendsave's usage
 * errors.
 *
 * @module
 */
import fs from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./exit_codes.ts";
import { PASSPHRASE_OPTIONS, passphraseFromOptions } from "./passphrase.ts";
import { setPassphraseSource } from "../store/passphrase_source.ts";

/** Option specs as parseArgs takes them. */
export type Options = NonNullable<ParseArgsConfig["options"]>;

/** Options every command accepts. */
export const COMMON: Options = {
  help: { type: "boolean", short: "h" },
  json: { type: "boolean" },
  ...PASSPHRASE_OPTIONS,
};

/**
 * Parses `args` for `command`; unknown flags become UsageError naming the
 * command's help. Sets where an encrypted repository's passphrase comes
 * from (--password-file, --password-command, BENDSAVE_PASSWORD).
 */
export function parse(command: string, args: string[], options: Options) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...COMMON, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new UsageError(`${usageProblem(e, args)}: see bendsave ${command} --help`);
  }
  setPassphraseSource(passphraseFromOptions(parsed.values));
  return parsed;
}

/**
 * What parseArgs refused, in bendsave's words: its own messages quote
 * unevenly and put the useful hint on a later line.
 */
function usageProblem(e: unknown, args: string[]): string {
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: string }).code;
  const option = /^(?:Unknown option|Option) '(-[^' ]*)/.exec(message)?.[1]?.replace(/,$/, "");
  if (option !== undefined) {
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      return `unknown option ${option} (a value that starts with "-" goes after "--")`;
    }
    if (/argument missing/.test(message)) return `${option} needs a value`;
    if (/does not take an argument/.test(message)) return `${option} takes no value`;
    if (/ambiguous/.test(message)) {
      const next = args[args.indexOf(option) + 1];
      return `${option} needs a value, but is followed by the option ${
        next ?? "-"
      } (write ${option}=<value> for a value that starts with "-")`;
    }
  }
  return message.split("\n")[0]!.replace(/\.$/, "");
}

/** The value of a required string option. */
export function required(command: string, values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== "string" || v === "") {
    throw new UsageError(`bendsave ${command} needs --${name}: see bendsave ${command} --help`);
  }
  return v;
}

/** The single positional argument. */
export function onePositional(command: string, positionals: string[], what: string): string {
  if (positionals.length !== 1) {
    throw new UsageError(`bendsave ${command} takes one ${what}: see bendsave ${command} --help`);
  }
  return positionals[0]!;
}

/**
 * True when `p` names a Databend config rather than a directory: an existing
 * regular file, or a path ending in `.toml`.
 */
export function isConfigFile(p: string): boolean {
  if (p.endsWith(".toml")) return true;
  try {
    return fs.statSync(p, { throwIfNoEntry: false })?.isFile() === true;
  } catch {
    return false; // a path too long or not searchable: the command that opens it says why
  }
}
