/**
 * Sealing of one block of an encrypted repository (FORMAT.md section 21):
 * its stored (compressed) bytes under AES-256-GCM with the associated data
 * `"bendsave block" 0x00 <block id>`, so that a sealed block cannot be
 * passed off as another block, a trailer, an index or a manifest. Imports
 * nothing that awaits at its top level, so the reader threads load it.
 *
 * @module
 */
import { seal, sealContext, type SealKey, unseal, unsealSync } from "./seal.ts";
import { keyedId } from "./master_key.ts";
import { sha256 } from "./hash.ts";

/** Seals the stored bytes of block `id`. */
export function sealBlock(key: SealKey, id: Uint8Array, stored: Uint8Array): Promise<Uint8Array> {
  return seal(key, stored, sealContext("bendsave block", id));
}

/** Opens sealed block `id`; `SealError` naming `what` when it does not authenticate. */
export function openBlock(
  key: SealKey,
  id: Uint8Array,
  sealed: Uint8Array,
  what: string,
): Promise<Uint8Array> {
  return unseal(key, sealed, sealContext("bendsave block", id), what);
}

/**
 * {@linkcode openBlock} synchronously, under the 32 raw bytes of the seal
 * key (the first half of the master key).
 */
export function openBlockSync(
  rawSealKey: Uint8Array,
  id: Uint8Array,
  sealed: Uint8Array,
  what: string,
): Uint8Array {
  return unsealSync(rawSealKey, sealed, sealContext("bendsave block", id), what);
}

/**
 * The id of plaintext block `raw`: HMAC-SHA-256 under `idKey` in an
 * encrypted repository, SHA-256 without one.
 */
export function blockIdOf(raw: Uint8Array, idKey?: Uint8Array | null): Uint8Array {
  return idKey ? keyedId(idKey, raw) : sha256(raw);
}
