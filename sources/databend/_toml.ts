/**
 * TOML reading shared by the Databend config readers: messages name the
 * file, section and key, never a value (values may be secrets).
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { parse, TomlError } from "smol-toml";
import { InvalidInput } from "../../store/errors.ts";

/**
 * Reads a config file's text; a missing or unreadable file becomes
 * InvalidInput: "`<what> <file>` does not exist: `<fix>`".
 */
export async function readConfigText(file: string, what: string, fix: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    const why = (e as { code?: string }).code === "ENOENT" ? "does not exist" : "cannot be read";
    throw new InvalidInput(`${what} ${file} ${why}: ${fix}`, { cause: e });
  }
}

/**
 * Parses TOML text; a syntax error becomes InvalidInput naming the file, line
 * and column, without quoting the source (it may hold secrets).
 */
export function parseToml(
  text: string,
  file: string,
  options: { integersAsBigInt?: boolean } = {},
): Table {
  try {
    return parse(text, { integersAsBigInt: options.integersAsBigInt ?? false }) as Table;
  } catch (e) {
    if (e instanceof TomlError) {
      const reason = (e.message.split("\n")[0] ?? "").replace(/^Invalid TOML document:\s*/, "");
      throw new InvalidInput(
        `${file} is not valid TOML (line ${e.line}, column ${e.column}: ${reason}): fix the syntax`,
      );
    }
    throw e;
  }
}

/** A parsed TOML table. */
export type Table = Record<string, unknown>;

/** True for a TOML table (not an array or a date). */
export function isTable(v: unknown): v is Table {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Reads `[section] name` as a table, or fails naming the missing section. */
export function section(parent: Table, name: string, where: string, file: string): Table {
  const v = parent[name];
  if (v === undefined) {
    throw new InvalidInput(
      `${file} has no [${where}] section: add it to the databend-query config`,
    );
  }
  if (!isTable(v)) {
    throw new InvalidInput(`${where} in ${file} must be a table: write it as [${where}]`);
  }
  return v;
}

/** Reads an optional string; the message names the key, never the value. */
export function optString(t: Table, key: string, where: string, file: string): string | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") {
    throw new InvalidInput(`${where}.${key} in ${file} must be a string: quote its value`);
  }
  return v;
}

/** Reads a required, non-empty string. */
export function reqString(t: Table, key: string, where: string, file: string): string {
  const v = optString(t, key, where, file);
  if (v === undefined || v === "") {
    throw new InvalidInput(
      `${where}.${key} is missing in ${file}: set it in the [${where}] section`,
    );
  }
  return v;
}

/** Reads an optional boolean. */
export function optBool(t: Table, key: string, where: string, file: string): boolean | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") {
    throw new InvalidInput(`${where}.${key} in ${file} must be true or false: fix its value`);
  }
  return v;
}
