/**
 * A block of a restored file as read from its pack (still compressed, and
 * in an encrypted repository still sealed), and the one check every restore
 * output makes before it writes a byte of it: opened (which authenticates
 * it) and decompressed, it must hash to its id. Pure (no I/O), so it runs on
 * the writer threads of a directory restore, which share the cost of
 * opening and decompressing, as well as on the main thread.
 *
 * @module
 */
import { decodeBlock, decodeBlockTransient } from "../../formats/codec.ts";
import { equalBytes, toHex } from "../../formats/hash.ts";
import { blockIdOf, openBlockSync } from "../../formats/block_seal.ts";
import { AES_KEY_LENGTH, SealError } from "../../formats/seal.ts";
import { IntegrityError } from "../errors.ts";

/** A stored block of a file, as read from its pack. */
export interface StoredBlock {
  /** The block's id: SHA-256 of its plaintext (HMAC-SHA-256 in an encrypted repository). */
  readonly id: Uint8Array;
  /** The pack it was read from (hex), for messages. */
  readonly pack: string;
  readonly codec: number;
  readonly rawLength: number;
  /** The stored (compressed) bytes (in an encrypted repository: sealed). */
  readonly data: Uint8Array;
  /**
   * An encrypted repository's master key (64 bytes: seal key, then id key):
   * `data` is then opened with the first half, and the id is the HMAC of the
   * plaintext under the second.
   */
  readonly masterKey?: Uint8Array;
}

/**
 * The plaintext of `block`, a block of file `rel`, checked against its id;
 * an {@linkcode IntegrityError} naming the block, its pack and the file when
 * it cannot be decoded or does not match. With `transient` the result is
 * valid only until the next call on this thread (a writer that writes it at
 * once: no buffer per block).
 *
 * @example
 * ```ts ignore
 * const raw = decodeChecked(block, "db/big.parquet");
 * ```
 */
export function decodeChecked(
  block: StoredBlock,
  rel: string,
  options: { transient?: boolean } = {},
): Uint8Array {
  const key = block.masterKey;
  // Built only for a message: not on the path of every good block.
  const where = () => `block ${toHex(block.id)} in pack ${block.pack} needed by file ${rel}`;
  const nothing = "nothing was written under that file's name";
  let stored = block.data;
  if (key) {
    try {
      stored = openBlockSync(key.subarray(0, AES_KEY_LENGTH), block.id, stored, "");
    } catch {
      throw new IntegrityError(`${new SealError(where()).message}; ${nothing}`);
    }
  }
  let raw: Uint8Array;
  try {
    raw = options.transient
      ? decodeBlockTransient(block.codec, stored, block.rawLength)
      : decodeBlock(block.codec, stored, block.rawLength);
    if (!equalBytes(blockIdOf(raw, key?.subarray(AES_KEY_LENGTH)), block.id)) {
      throw new SyntaxError("does not match its hash");
    }
  } catch (e) {
    throw new IntegrityError(`${where()} is damaged (${(e as Error).message}); ${nothing}`);
  }
  return raw;
}
