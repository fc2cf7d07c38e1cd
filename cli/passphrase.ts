/**
 * Where the CLI takes an encrypted repository's passphrase from, in this
 * order: `--password-file FILE` (its first line), `--password-command CMD`
 * (the first line of its output), the `BENDSAVE_PASSWORD` variable. Never
 * from argv (it would show in `ps`), never printed.
 *
 * @module
 */
import fs from "node:fs";
import { execFileSync } from "node:child_process";
import process from "node:process";
import { UsageError } from "./exit_codes.ts";
import { PassphraseError } from "../store/errors.ts";
import type { PassphraseSource } from "../store/keys.ts";

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
  const file = values["password-file"];
  const command = values["password-command"];
  if (file !== undefined && command !== undefined) {
    throw new UsageError("give either --password-file or --password-command, not both");
  }
  let cached: Promise<string | null> | null = null;
  return () => cached ??= Promise.resolve().then(() => read(file, command));
}

function read(file: unknown, command: unknown): string | null {
  if (typeof file === "string") {
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      throw new PassphraseError(
        `cannot read --password-file ${file} (${
          (e as { code?: string }).code ?? "error"
        }): check the path`,
      );
    }
    return nonEmpty(firstLine(text), `--password-file ${file}`);
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
        `--password-command failed${
          status === undefined ? "" : ` (exit ${status})`
        }: run it by hand to see why`,
      );
    }
    return nonEmpty(firstLine(text), "--password-command's output");
  }
  const env = process.env["BENDSAVE_PASSWORD"];
  return env === undefined || env === "" ? null : env;
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
