/**
 * The repository config file (FORMAT.md, "config"): JSON, written once at
 * init and never changed.
 *
 * @module
 */
import { type ChunkerParams, validateChunkerParams } from "./chunker.ts";
import { type CompressionOptions, parseCompressionName } from "./codec.ts";
import { isReadableVersion } from "./manifest.ts";
import { FORMAT_MINOR, FORMAT_VERSION } from "./version.ts";

/** The decoded config of a repository. */
export interface RepoConfig {
  /** Always "bendsave-repository". */
  readonly format: string;
  readonly version: number;
  readonly minor: number;
  /** Random repository id, 64 hex characters. */
  readonly id: string;
  /** Creation time, RFC 3339. */
  readonly created: string;
  readonly chunker: ChunkerParams;
  readonly compression: CompressionOptions;
  /** Target pack size in bytes. */
  readonly packSize: number;
}

/** Default pack target size (see bench/RESULTS.md for why). */
export const DEFAULT_PACK_SIZE = 32 * 1024 * 1024;

/** The format marker in every config. */
export const CONFIG_FORMAT = "bendsave-repository";

/** Thrown by `parseRepoConfig` when the config is of a newer major version. */
export class NewerFormatError extends Error {
  constructor(readonly version: number) {
    super(
      `repository format version ${version} is newer than this bendsave reads (${FORMAT_VERSION})`,
    );
  }
}

/** Encodes a config as pretty JSON. */
export function encodeRepoConfig(c: RepoConfig): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(c, null, 2) + "\n");
}

/** A new config with the current format version. */
export function newRepoConfig(
  id: string,
  options: { chunker: ChunkerParams; compression: CompressionOptions; packSize: number; now: Date },
): RepoConfig {
  return {
    format: CONFIG_FORMAT,
    version: FORMAT_VERSION,
    minor: FORMAT_MINOR,
    id,
    created: options.now.toISOString(),
    chunker: options.chunker,
    compression: options.compression,
    packSize: options.packSize,
  };
}

/**
 * Parses and validates a config. Throws NewerFormatError for a newer major
 * version and SyntaxError for anything malformed.
 */
export function parseRepoConfig(bytes: Uint8Array): RepoConfig {
  // deno-lint-ignore no-explicit-any
  let j: any;
  try {
    j = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new SyntaxError(`config is not valid JSON (${(e as Error).message})`);
  }
  if (typeof j !== "object" || j === null || j.format !== CONFIG_FORMAT) {
    throw new SyntaxError(`config does not say format "${CONFIG_FORMAT}"`);
  }
  if (typeof j.version !== "number" || !Number.isInteger(j.version)) {
    throw new SyntaxError("config has no valid format version");
  }
  if (j.version > FORMAT_VERSION) throw new NewerFormatError(j.version);
  if (!isReadableVersion(j.version)) {
    throw new SyntaxError(`config has invalid version ${j.version}`);
  }
  if (typeof j.id !== "string" || !/^[0-9a-f]{64}$/.test(j.id)) {
    throw new SyntaxError("config has no valid id");
  }
  const c = j.compression;
  if (typeof c !== "object" || c === null) {
    throw new SyntaxError("config has no compression settings");
  }
  const packSize = j.packSize;
  if (!Number.isInteger(packSize) || packSize < 1024 * 1024 || packSize > 1024 * 1024 * 1024) {
    throw new SyntaxError(`config has an invalid pack size ${packSize}`);
  }
  let chunker: ChunkerParams;
  let compression: CompressionOptions;
  try {
    chunker = validateChunkerParams(j.chunker);
    compression = {
      codec: parseCompressionName(String(c.codec)),
      level: Number(c.level),
      minSaving: Number(c.minSaving),
    };
  } catch (e) {
    throw new SyntaxError(`config is invalid: ${(e as Error).message}`);
  }
  if (!Number.isInteger(compression.level) || compression.level < 0 || compression.level > 22) {
    throw new SyntaxError(`config has an invalid compression level ${c.level}`);
  }
  if (!(compression.minSaving >= 0 && compression.minSaving < 1)) {
    throw new SyntaxError(`config has an invalid compression minSaving ${c.minSaving}`);
  }
  return {
    format: CONFIG_FORMAT,
    version: j.version,
    minor: typeof j.minor === "number" ? j.minor : 0,
    id: j.id,
    created: String(j.created ?? ""),
    chunker,
    compression,
    packSize,
  };
}
