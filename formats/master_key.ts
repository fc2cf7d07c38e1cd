/**
 * The master key of an encrypted repository (docs/ENCRYPTION.md, "Keys"):
 * 64 random bytes, drawn once when the repository is created. The first 32
 * are the AES-256-GCM key that seals every object; the last 32 are the
 * HMAC-SHA-256 key of block ids, so that an id says nothing about the
 * content it names to whoever lacks the key.
 *
 * @module
 */
import { createHmac } from "node:crypto";
import { AES_KEY_LENGTH, importSealKey, type SealKey } from "./seal.ts";

/** Length in bytes of a master key. */
export const MASTER_KEY_LENGTH = 64;

/** A master key split into its two halves. */
export interface MasterKey {
  /** The 64 bytes as stored (wrapped) in key files and exported on paper. */
  readonly raw: Uint8Array;
  /** Seals and opens every object of the repository. */
  readonly seal: SealKey;
  /** The HMAC-SHA-256 key of block ids. */
  readonly idKey: Uint8Array;
}

/** A new random master key. */
export function generateMasterKey(): Promise<MasterKey> {
  return masterKeyFrom(crypto.getRandomValues(new Uint8Array(MASTER_KEY_LENGTH)));
}

/** The master key of the 64 bytes `raw` (unwrapped from a key file or typed in from paper). */
export async function masterKeyFrom(raw: Uint8Array): Promise<MasterKey> {
  if (raw.length !== MASTER_KEY_LENGTH) {
    throw new RangeError(`a master key is ${MASTER_KEY_LENGTH} bytes, got ${raw.length}`);
  }
  const own = new Uint8Array(raw);
  return {
    raw: own,
    seal: await importSealKey(own.subarray(0, AES_KEY_LENGTH)),
    idKey: own.slice(AES_KEY_LENGTH),
  };
}

/**
 * The id of a block in an encrypted repository: HMAC-SHA-256 of its
 * uncompressed bytes under the master key's id key (RFC 2104), 32 bytes.
 *
 * @example
 * ```ts
 * import { keyedId } from "./master_key.ts";
 * keyedId(new Uint8Array(32), new Uint8Array(0)).length; // 32
 * ```
 */
export function keyedId(idKey: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", idKey).update(data).digest());
}

/**
 * An incremental {@linkcode keyedId}: the keyed id of bytes fed in pieces
 * (a WAL file larger than one block), the same as `keyedId` of them joined.
 */
export class KeyedHasher {
  readonly #h;
  /** A hasher under the id key `idKey`. */
  constructor(idKey: Uint8Array) {
    this.#h = createHmac("sha256", idKey);
  }
  /** Adds bytes. */
  update(data: Uint8Array): this {
    this.#h.update(data);
    return this;
  }
  /** The id as 32 bytes; the object cannot be used afterwards. */
  digest(): Uint8Array {
    return new Uint8Array(this.#h.digest());
  }
}
