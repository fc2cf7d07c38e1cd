/**
 * Words for a POSIX shell (`sh -c`): the commands bendsave writes for others
 * to run, such as PostgreSQL's `restore_command` or a `databend-metactl
 * import` line. Pure string work, no I/O.
 *
 * @module
 */

/**
 * Quotes `s` as one shell word: unchanged when it holds only characters the
 * shell never interprets, else in single quotes (a `'` inside as `'\''`).
 *
 * @example
 * ```ts
 * import { shellQuote } from "./shell.ts";
 * shellQuote("/backups/pg"); // "/backups/pg"
 * shellQuote("it's here"); // "'it'\\''s here'"
 * ```
 */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}
