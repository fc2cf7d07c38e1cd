/**
 * Key files of encrypted repositories (docs/ENCRYPTION.md, "Key files"):
 * one per passphrase (a key slot), each holding the master key wrapped with
 * a key derived from that passphrase by Argon2id (RFC 9106: the runtime's
 * node:crypto `argon2` where it has one, as bun does, else hash-wasm), the
 * KDF's parameters and salt recorded beside it.
 *
 * A key file is UTF-8 JSON:
 *
 * ```json
 * {
 *   "format": "bendsave-key",
 *   "version": 1,
 *   "repository": "<the config's id>",
 *   "created": "2026-12-01T22:30:00.000Z",
 *   "label": "dr-site",
 *   "kdf": { "name": "argon2id", "memoryKiB": 65536, "iterations": 3,
 *            "parallelism": 1, "salt": "<32 random bytes, base64>" },
 *   "wrapped": "<base64 of the sealed master key>"
 * }
 * ```
 *
 * `wrapped` is the 64-byte master key sealed (formats/seal.ts) under the
 * derived key, with the associated data `sealContext("bendsave key",
 * repository id as ASCII)`: a key file of another repository, or one whose
 * passphrase is wrong, does not open.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import crypto from "node:crypto";
import { argon2id } from "hash-wasm";
import { MASTER_KEY_LENGTH } from "./master_key.ts";
import { importSealKey, seal, sealContext, SealError, unseal } from "./seal.ts";

/** The format marker of key files. */
export const KEY_FILE_FORMAT = "bendsave-key";
/** The key file layout version this code writes and reads. */
export const KEY_FILE_VERSION = 1;

/** Argon2id parameters, as recorded in a key file. */
export interface KdfParams {
  readonly name: "argon2id";
  /** Memory in KiB (m). */
  readonly memoryKiB: number;
  /** Passes over the memory (t). */
  readonly iterations: number;
  /** Lanes (p). */
  readonly parallelism: number;
  /** Random salt, base64 in the file. */
  readonly salt: Uint8Array;
}

/**
 * Default KDF cost: 64 MiB, 3 passes, one lane (0.25 s on the development
 * VM under Deno), above RFC 9106's second recommended option (64 MiB, t=3,
 * p=4) in passes per lane.
 */
export const DEFAULT_KDF = { memoryKiB: 65536, iterations: 3, parallelism: 1 } as const;

/** Bounds a reader accepts, so that a damaged file cannot ask for terabytes. */
const KDF_LIMITS = {
  memoryKiB: [8, 4 * 1024 * 1024],
  iterations: [1, 64],
  parallelism: [1, 16],
} as const;

/** A decoded key file. */
export interface KeyFile {
  readonly format: typeof KEY_FILE_FORMAT;
  readonly version: number;
  /** The repository's id (its config's `id`). */
  readonly repository: string;
  /** RFC 3339 creation time. */
  readonly created: string;
  /** A label chosen by the operator (host, person, site); may be empty. */
  readonly label: string;
  readonly kdf: KdfParams;
  /** The sealed master key. */
  readonly wrapped: Uint8Array;
}

/** Thrown when a passphrase does not open a key file. */
export class WrongPassphrase extends Error {
  constructor() {
    super("the passphrase does not open this repository's key: check it and try again");
    this.name = "WrongPassphrase";
  }
}

/** Options of `wrapMasterKey`. */
export interface WrapOptions {
  /** KDF cost (defaults: `DEFAULT_KDF`). */
  readonly kdf?: Partial<Pick<KdfParams, "memoryKiB" | "iterations" | "parallelism">>;
  readonly label?: string;
  readonly now?: Date;
}

/** A new key file holding `masterKey` (64 bytes), opened by `passphrase`. */
export async function wrapMasterKey(
  masterKey: Uint8Array,
  passphrase: string,
  repositoryId: string,
  options: WrapOptions = {},
): Promise<KeyFile> {
  if (masterKey.length !== MASTER_KEY_LENGTH) {
    throw new RangeError(`a master key is ${MASTER_KEY_LENGTH} bytes, got ${masterKey.length}`);
  }
  if (passphrase.length === 0) throw new TypeError("the passphrase is empty: give one");
  const kdf: KdfParams = {
    name: "argon2id",
    memoryKiB: options.kdf?.memoryKiB ?? DEFAULT_KDF.memoryKiB,
    iterations: options.kdf?.iterations ?? DEFAULT_KDF.iterations,
    parallelism: options.kdf?.parallelism ?? DEFAULT_KDF.parallelism,
    salt: crypto.getRandomValues(new Uint8Array(32)),
  };
  checkKdf(kdf);
  const kek = await importSealKey(await deriveKey(passphrase, kdf));
  return {
    format: KEY_FILE_FORMAT,
    version: KEY_FILE_VERSION,
    repository: repositoryId,
    created: (options.now ?? new Date()).toISOString(),
    label: options.label ?? "",
    kdf,
    wrapped: await seal(kek, masterKey, keyContext(repositoryId)),
  };
}

/** The master key in `file`; throws `WrongPassphrase` when `passphrase` does not open it. */
export async function unwrapMasterKey(file: KeyFile, passphrase: string): Promise<Uint8Array> {
  const kek = await importSealKey(await deriveKey(passphrase, file.kdf));
  let raw: Uint8Array;
  try {
    raw = await unseal(kek, file.wrapped, keyContext(file.repository), "key file");
  } catch (e) {
    if (e instanceof SealError) throw new WrongPassphrase();
    throw e;
  }
  if (raw.length !== MASTER_KEY_LENGTH) {
    throw new SyntaxError(`key file holds ${raw.length} bytes instead of a master key (damaged)`);
  }
  return raw;
}

/** Encodes a key file as pretty JSON with a final newline. */
export function encodeKeyFile(f: KeyFile): Uint8Array {
  const json = {
    format: f.format,
    version: f.version,
    repository: f.repository,
    created: f.created,
    label: f.label,
    kdf: { ...f.kdf, salt: toBase64(f.kdf.salt) },
    wrapped: toBase64(f.wrapped),
  };
  return new TextEncoder().encode(JSON.stringify(json, null, 2) + "\n");
}

/** Parses a key file; throws SyntaxError naming the first field that is wrong. */
export function parseKeyFile(bytes: Uint8Array): KeyFile {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new SyntaxError("key file is not UTF-8 JSON (damaged)");
  }
  const o = record(v, "key file");
  if (o.format !== KEY_FILE_FORMAT) throw new SyntaxError("not a bendsave key file");
  if (typeof o.version !== "number" || !Number.isInteger(o.version) || o.version < 1) {
    throw new SyntaxError("key file version is not a positive integer (damaged)");
  }
  if (o.version > KEY_FILE_VERSION) {
    throw new SyntaxError(
      `key file version ${o.version} is newer than this bendsave reads (${KEY_FILE_VERSION}): use a newer bendsave`,
    );
  }
  if (typeof o.repository !== "string" || !/^[0-9a-f]{64}$/.test(o.repository)) {
    throw new SyntaxError("key file repository id is not 64 hex digits (damaged)");
  }
  const k = record(o.kdf, "key file kdf");
  if (k.name !== "argon2id") throw new SyntaxError(`key file KDF "${String(k.name)}" is unknown`);
  const kdf: KdfParams = {
    name: "argon2id",
    memoryKiB: integer(k.memoryKiB, "kdf.memoryKiB"),
    iterations: integer(k.iterations, "kdf.iterations"),
    parallelism: integer(k.parallelism, "kdf.parallelism"),
    salt: fromBase64(k.salt, "kdf.salt"),
  };
  try {
    checkKdf(kdf);
  } catch (e) {
    throw new SyntaxError(`key file ${(e as Error).message} (damaged)`);
  }
  return {
    format: KEY_FILE_FORMAT,
    version: o.version,
    repository: o.repository,
    created: typeof o.created === "string" ? o.created : "",
    label: typeof o.label === "string" ? o.label : "",
    kdf,
    wrapped: fromBase64(o.wrapped, "wrapped"),
  };
}

/** The 32-byte key Argon2id derives from `passphrase` with `kdf`. */
export async function deriveKey(passphrase: string, kdf: KdfParams): Promise<Uint8Array> {
  const native = (crypto as unknown as { argon2?: NativeArgon2 }).argon2;
  if (typeof native === "function") {
    // The runtime's own Argon2 (bun; Node 24.7+), off the main thread: 0.26 s here for
    // the default parameters against 0.34-0.43 s through hash-wasm. The same function
    // (RFC 9106, version 0x13), so the same key.
    return await new Promise<Uint8Array>((resolve, reject) =>
      native("argon2id", {
        message: Buffer.from(passphrase.normalize("NFC"), "utf8"),
        nonce: kdf.salt,
        parallelism: kdf.parallelism,
        tagLength: 32,
        memory: kdf.memoryKiB,
        passes: kdf.iterations,
      }, (e, key) => e ? reject(e) : resolve(new Uint8Array(key)))
    );
  }
  return await argon2id({
    password: passphrase.normalize("NFC"),
    salt: kdf.salt,
    memorySize: kdf.memoryKiB,
    iterations: kdf.iterations,
    parallelism: kdf.parallelism,
    hashLength: 32,
    outputType: "binary",
  });
}

/** node:crypto's `argon2` where the runtime has it. */
type NativeArgon2 = (
  algorithm: "argon2id",
  parameters: {
    message: Uint8Array;
    nonce: Uint8Array;
    parallelism: number;
    tagLength: number;
    memory: number;
    passes: number;
  },
  callback: (error: Error | null, key: Uint8Array) => void,
) => void;

function keyContext(repositoryId: string): Uint8Array {
  return sealContext("bendsave key", new TextEncoder().encode(repositoryId));
}

function checkKdf(k: KdfParams): void {
  for (const f of ["memoryKiB", "iterations", "parallelism"] as const) {
    const [lo, hi] = KDF_LIMITS[f];
    if (!Number.isInteger(k[f]) || k[f] < lo || k[f] > hi) {
      throw new RangeError(`kdf.${f} must be an integer in [${lo}, ${hi}], got ${k[f]}`);
    }
  }
  if (k.memoryKiB < 8 * k.parallelism) {
    throw new RangeError(`kdf.memoryKiB must be at least 8 KiB per lane, got ${k.memoryKiB}`);
  }
  if (k.salt.length < 16) throw new RangeError("kdf.salt must be at least 16 bytes");
}

function record(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new SyntaxError(`${what} is not a JSON object (damaged)`);
  }
  return v as Record<string, unknown>;
}

function integer(v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new SyntaxError(`key file ${field} is not an integer (damaged)`);
  }
  return v;
}

function toBase64(b: Uint8Array): string {
  return Buffer.from(b).toString("base64");
}

function fromBase64(v: unknown, field: string): Uint8Array {
  if (typeof v !== "string") throw new SyntaxError(`key file ${field} is not base64 (damaged)`);
  // Buffer skips characters outside the alphabet: check the text first.
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) {
    throw new SyntaxError(`key file ${field} is not base64 (damaged)`);
  }
  return new Uint8Array(Buffer.from(v, "base64"));
}
