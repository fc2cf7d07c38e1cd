/**
 * Where the CLI takes an encrypted repository's passphrase from, in this
 * order: `--password-file FILE` (its first line), `--password-command CMD`
 * (the first line of its output), the `BENDSAVE_PASSWORD` variable. Never
 * from argv (it would show in `ps`), never printed. A copy's destination has
 * its own: `--to-password-file`, `--to-password-command`,
 * `BENDSAVE_TO_PASSWORD`, else the source's.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import process from "node:process";
import { UsageError } from "./exit_codes.ts";
import { PassphraseError } from "../store/errors.ts";
import type { PassphraseSource } from "../store/passphrase_source.ts";

/** The passphrase options every command accepts (cli/args.ts adds them to each). */
export const PASSPHRASE_OPTIONS = {
  "password-file": { type: "string" },
  "password-command": { type: "string" },
} as const;

/**
 * The passphrase source of parsed options: read once, when a command first
 * opens an encrypted repository (an unencrypted one never asks).
 */
export function passphraseFromOptions(values: Record<string, unknown>): PassphraseSource {
  return lazySource(values, "password", "BENDSAVE_PASSWORD");
}

/** The options of `copy` for the destination's passphrase. */
export const TO_PASSPHRASE_OPTIONS = {
  "to-password-file": { type: "string" },
  "to-password-command": { type: "string" },
} as const;

/**
 * The passphrase of a copy's destination: `--to-password-file`,
 * `--to-password-command` or BENDSAVE_TO_PASSWORD, read once when first
 * needed; without them, `fallback` (the source's passphrase).
 */
export function toPassphraseFromOptions(
  values: Record<string, unknown>,
  fallback: PassphraseSource,
): PassphraseSource {
  const own = lazySource(values, "to-password", "BENDSAVE_TO_PASSWORD");
  return async () => (await own()) ?? (await fallback());
}

/** The passphrase of `--<flag>-file`, `--<flag>-command` or `env`, read once when first asked. */
function lazySource(
  values: Record<string, unknown>,
  flag: string,
  env: string,
): PassphraseSource {
  const file = values[`${flag}-file`];
  const command = values[`${flag}-command`];
  if (file !== undefined && command !== undefined) {
    throw new UsageError(`give either --${flag}-file or --${flag}-command, not both`);
  }
  let cached: Promise<string | null> | null = null;
  return () => cached ??= Promise.resolve().then(() => read(file, command, env, `--${flag}`));
}

/**
 * Where the passphrase comes from, as arguments for another bendsave that
 * must find it the same way (the background pusher and prefetcher, the
 * `restore_command` a PostgreSQL restore writes): `--password-file` with
 * the file's absolute path, or `--password-command` as given; none for
 * BENDSAVE_PASSWORD (a background process inherits the environment; the
 * server's does not hold it). Never the passphrase itself.
 */
export function passphraseArgs(values: Record<string, unknown>): PassphraseFlag | null {
  const file = values["password-file"];
  const command = values["password-command"];
  if (typeof file === "string") return { flag: "--password-file", value: path.resolve(file) };
  if (typeof command === "string") return { flag: "--password-command", value: command };
  return null;
}

/** A passphrase option for another bendsave: the flag and its value. */
export interface PassphraseFlag {
  readonly flag: "--password-file" | "--password-command";
  readonly value: string;
}

/**
 * The new passphrase of `key add`, `key passwd` and `key import`:
 * `--new-password-file`, `--new-password-command` or BENDSAVE_NEW_PASSWORD;
 * a PassphraseError when none is given.
 */
export function newPassphrase(values: Record<string, unknown>): string {
  const file = values["new-password-file"];
  const command = values["new-password-command"];
  if (file !== undefined && command !== undefined) {
    throw new UsageError("give either --new-password-file or --new-password-command, not both");
  }
  const p = read(file, command, "BENDSAVE_NEW_PASSWORD", "--new-password");
  if (p === null) {
    throw new PassphraseError(
      "no new passphrase: set BENDSAVE_NEW_PASSWORD, or give --new-password-file FILE or --new-password-command CMD",
    );
  }
  return p;
}

function read(file: unknown, command: unknown, env: string, flag: string): string | null {
  if (typeof file === "string") {
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      throw new PassphraseError(
        `cannot read ${flag}-file ${file} (${
          (e as { code?: string }).code ?? "error"
        }): check the path`,
      );
    }
    return nonEmpty(firstLine(text), `${flag}-file ${file}`);
  }
  if (typeof command === "string") {
    let text: string;
    try {
      text = execFileSync("/bin/sh", ["-c", command], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
      });
    } catch (e) {
      const status = (e as { status?: number }).status;
      throw new PassphraseError(
        `${flag}-command failed${
          status === undefined ? "" : ` (exit ${status})`
        }: run it by hand to see why`,
      );
    }
    return nonEmpty(firstLine(text), `${flag}-command's output`);
  }
  const v = process.env[env];
  return v === undefined || v === "" ? null : v;
}

function firstLine(text: string): string {
  const nl = text.search(/\r?\n/);
  return nl < 0 ? text : text.slice(0, nl);
}

function nonEmpty(p: string, where: string): string {
  if (p === "") {
    throw new PassphraseError(`the passphrase in ${where} is empty: put it on the first line`);
  }
  return p;
}
