/**
 * Sealed objects of encrypted repositories (docs/ENCRYPTION.md, "Sealing"):
 * AES-256-GCM with a fresh random 96-bit nonce per object, and associated
 * data that binds the object to its role, so that a sealed block cannot be
 * passed off as a tree, an index or another block.
 *
 * Layout of a sealed object: `nonce (12 bytes) || ciphertext || tag (16
 * bytes)`; the ciphertext is as long as the plaintext, so a sealed object
 * is 28 bytes longer than what it seals.
 *
 * Two implementations of the same AES-256-GCM, chosen per call for speed:
 * under Deno, WebCrypto runs at 340-460 MB/s on one core of the development
 * VM against 180-200 MB/s for `node:crypto`, but each WebCrypto call is a
 * promise and a hop to a thread pool: 53-80 µs for a block of a few KiB,
 * against about 35 µs for node:crypto's; under bun node:crypto wins at every
 * size (4-6 µs against 13-17 µs for such a block; 870-1140 MB/s). So bun uses
 * node:crypto, and Deno node:crypto for objects up to
 * {@linkcode SMALL_OBJECT} bytes and WebCrypto above.
 *
 * @module
 */
import nodeCrypto from "node:crypto";
import process from "node:process";

/** Length of the nonce at the start of a sealed object. */
export const NONCE_LENGTH = 12;
/** Length of the GCM tag at the end of a sealed object. */
export const TAG_LENGTH = 16;
/** Bytes a sealed object adds to its plaintext. */
export const SEAL_OVERHEAD = NONCE_LENGTH + TAG_LENGTH;

/** Length in bytes of an AES-256 key. */
export const AES_KEY_LENGTH = 32;

/**
 * Thrown when a sealed object does not authenticate: it was changed, it is
 * truncated, it was sealed for another role, or the key is not the one that
 * sealed it.
 */
export class SealError extends SyntaxError {
  /** `what` names the object in the message (for example "pack 5f3a... block 3"). */
  constructor(what: string) {
    super(`${what} does not authenticate: it is damaged, or was sealed with another key`);
    this.name = "SealError";
  }
}

/** An AES-256-GCM key for `seal` and `unseal`: WebCrypto's form and the raw bytes. */
export interface SealKey {
  readonly web: CryptoKey;
  readonly raw: Uint8Array;
}

/** Objects up to this size are sealed and opened through node:crypto under Deno too. */
export const SMALL_OBJECT = 64 * 1024;

const BUN = typeof process.versions.bun === "string";

function viaNode(length: number): boolean {
  return BUN || length <= SMALL_OBJECT;
}

/** Imports 32 raw bytes as a key for `seal` and `unseal`. */
export async function importSealKey(raw: Uint8Array): Promise<SealKey> {
  if (raw.length !== AES_KEY_LENGTH) {
    throw new RangeError(`an AES-256 key is ${AES_KEY_LENGTH} bytes, got ${raw.length}`);
  }
  const own = copy(raw);
  const web = await crypto.subtle.importKey("raw", own, "AES-GCM", false, ["encrypt", "decrypt"]);
  return { web, raw: own };
}

/**
 * Seals `plaintext`: a random nonce, then AES-256-GCM of it with `aad` as
 * associated data. Each call draws a new nonce from the system's CSPRNG.
 *
 * @example
 * ```ts
 * import { importSealKey, seal, unseal } from "./seal.ts";
 * const key = await importSealKey(crypto.getRandomValues(new Uint8Array(32)));
 * const aad = new TextEncoder().encode("bendsave example");
 * const sealed = await seal(key, new TextEncoder().encode("hello"), aad);
 * await unseal(key, sealed, aad, "the example"); // the bytes of "hello"
 * ```
 */
export async function seal(
  key: SealKey,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Promise<Uint8Array> {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
  const out = new Uint8Array(NONCE_LENGTH + plaintext.length + TAG_LENGTH);
  out.set(nonce, 0);
  if (viaNode(plaintext.length)) {
    const c = nodeCrypto.createCipheriv("aes-256-gcm", key.raw, nonce, {
      authTagLength: TAG_LENGTH,
    });
    c.setAAD(aad);
    let at = NONCE_LENGTH;
    for (const part of [c.update(plaintext), c.final()]) {
      out.set(part, at);
      at += part.length;
    }
    out.set(c.getAuthTag(), at);
    return out;
  }
  const body = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: nonce, additionalData: copy(aad), tagLength: TAG_LENGTH * 8 },
      key.web,
      copy(plaintext),
    ),
  );
  out.set(body, NONCE_LENGTH);
  return out;
}

/**
 * Opens a sealed object; throws `SealError` (naming `what`) unless it
 * authenticates under `key` with exactly `aad`.
 */
export async function unseal(
  key: SealKey,
  sealed: Uint8Array,
  aad: Uint8Array,
  what: string,
): Promise<Uint8Array> {
  if (sealed.length < SEAL_OVERHEAD) throw new SealError(what);
  if (viaNode(sealed.length - SEAL_OVERHEAD)) return unsealSync(key.raw, sealed, aad, what);
  try {
    return new Uint8Array(
      await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: copy(sealed.subarray(0, NONCE_LENGTH)),
          additionalData: copy(aad),
          tagLength: TAG_LENGTH * 8,
        },
        key.web,
        copy(sealed.subarray(NONCE_LENGTH)),
      ),
    );
  } catch {
    throw new SealError(what);
  }
}

/**
 * {@linkcode unseal} through node:crypto, synchronously, under the 32 raw
 * key bytes: for threads that open objects between other synchronous work
 * (a restore's writer threads open each block before decompressing it).
 */
export function unsealSync(
  rawKey: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
  what: string,
): Uint8Array {
  if (sealed.length < SEAL_OVERHEAD) throw new SealError(what);
  try {
    const d = nodeCrypto.createDecipheriv(
      "aes-256-gcm",
      rawKey,
      sealed.subarray(0, NONCE_LENGTH),
      { authTagLength: TAG_LENGTH },
    );
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
    const out = new Uint8Array(sealed.length - SEAL_OVERHEAD);
    const head = d.update(sealed.subarray(NONCE_LENGTH, sealed.length - TAG_LENGTH));
    out.set(head, 0);
    const tail = d.final(); // throws unless the tag authenticates
    out.set(tail, head.length);
    return out;
  } catch {
    throw new SealError(what);
  }
}

/**
 * The associated data of a sealed object: the ASCII `role` (for example
 * `"bendsave block"`), a zero byte, then `context` (for example the block's
 * id), so that no two roles' associated data can be equal.
 */
export function sealContext(role: string, context: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (!/^[ -~]+$/.test(role)) throw new TypeError(`seal role must be printable ASCII: "${role}"`);
  const r = new TextEncoder().encode(role);
  const out = new Uint8Array(r.length + 1 + context.length);
  out.set(r, 0);
  out.set(context, r.length + 1);
  return out;
}

/** `bytes` as WebCrypto's BufferSource: itself, or a copy when it views shared memory. */
function copy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer
    ? bytes as Uint8Array<ArrayBuffer>
    : new Uint8Array(bytes);
}
