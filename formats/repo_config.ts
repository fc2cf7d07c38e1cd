/**
 * The repository config file (FORMAT.md, "config"): JSON, written once at
 * init and never changed.
 *
 * @module
 */
import { type ChunkerParams, validateChunkerParams } from "./chunker.ts";
import { type CompressionOptions, parseCompressionName } from "./codec.ts";
import { isReadableVersion } from "./manifest.ts";
import {
  ENCRYPTED_FORMAT_MINOR,
  ENCRYPTED_FORMAT_VERSION,
  FORMAT_MINOR,
  FORMAT_VERSION,
  NEWEST_READABLE_FORMAT,
} from "./version.ts";

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
  /** Present in encrypted repositories (format 2) only: how objects are sealed and keys made. */
  readonly encryption?: EncryptionConfig;
}

/**
 * The `encryption` object of an encrypted repository's config (FORMAT.md
 * section 21): the AEAD sealing every object, the MAC of block ids, and
 * the KDF defaults new key slots use (each key file records its own).
 */
export interface EncryptionConfig {
  readonly aead: "aes-256-gcm";
  readonly idMac: "hmac-sha256";
  readonly kdf: {
    readonly name: "argon2id";
    readonly memoryKiB: number;
    readonly iterations: number;
    readonly parallelism: number;
  };
}

/** Default pack target size (see bench/RESULTS.md for why). */
export const DEFAULT_PACK_SIZE = 32 * 1024 * 1024;

/** The format marker in every config. */
export const CONFIG_FORMAT = "bendsave-repository";

/** Thrown by `parseRepoConfig` when the config is of a newer major version. */
export class NewerFormatError extends Error {
  constructor(readonly version: number) {
    super(
      `repository format version ${version} is newer than this bendsave reads (${NEWEST_READABLE_FORMAT})`,
    );
  }
}

/** Encodes a config as pretty JSON. */
export function encodeRepoConfig(c: RepoConfig): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(c, null, 2) + "\n");
}

/**
 * A new config: format 1.x (unchanged) without `encryption`, format 2.0
 * with it.
 */
export function newRepoConfig(
  id: string,
  options: {
    chunker: ChunkerParams;
    compression: CompressionOptions;
    packSize: number;
    now: Date;
    encryption?: EncryptionConfig;
  },
): RepoConfig {
  const base = {
    format: CONFIG_FORMAT,
    version: options.encryption ? ENCRYPTED_FORMAT_VERSION : FORMAT_VERSION,
    minor: options.encryption ? ENCRYPTED_FORMAT_MINOR : FORMAT_MINOR,
    id,
    created: options.now.toISOString(),
    chunker: options.chunker,
    compression: options.compression,
    packSize: options.packSize,
  };
  return options.encryption ? { ...base, encryption: options.encryption } : base;
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
  if (j.version > NEWEST_READABLE_FORMAT) throw new NewerFormatError(j.version);
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
  const base = {
    format: CONFIG_FORMAT,
    version: j.version,
    minor: typeof j.minor === "number" ? j.minor : 0,
    id: j.id,
    created: String(j.created ?? ""),
    chunker,
    compression,
    packSize,
  };
  if (j.version < ENCRYPTED_FORMAT_VERSION) return base;
  return { ...base, encryption: parseEncryption(j.encryption) };
}

/** The `encryption` object of a format 2 config; SyntaxError naming what is wrong. */
function parseEncryption(e: unknown): EncryptionConfig {
  if (typeof e !== "object" || e === null) {
    throw new SyntaxError("config of format 2 has no encryption settings");
  }
  const o = e as Record<string, unknown>;
  if (o.aead !== "aes-256-gcm") throw new SyntaxError(`config has an unknown AEAD "${o.aead}"`);
  if (o.idMac !== "hmac-sha256") throw new SyntaxError(`config has an unknown id MAC "${o.idMac}"`);
  const k = o.kdf as Record<string, unknown> | null;
  if (typeof k !== "object" || k === null || k.name !== "argon2id") {
    throw new SyntaxError("config has no argon2id KDF settings");
  }
  const int = (v: unknown, f: string): number => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
      throw new SyntaxError(`config has an invalid kdf.${f}`);
    }
    return v;
  };
  return {
    aead: "aes-256-gcm",
    idMac: "hmac-sha256",
    kdf: {
      name: "argon2id",
      memoryKiB: int(k.memoryKiB, "memoryKiB"),
      iterations: int(k.iterations, "iterations"),
      parallelism: int(k.parallelism, "parallelism"),
    },
  };
}
