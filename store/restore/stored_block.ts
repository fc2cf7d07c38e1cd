/**
 * A block of a restored file as read from its pack (still compressed), and
 * the one check every restore output makes before it writes a byte of it:
 * decompressed, it must hash to its id. Pure (no I/O), so it runs on the
 * writer threads of a directory restore as well as on the main thread.
 *
 * @module
 */
import { decodeBlock } from "../../formats/codec.ts";
import { equalBytes, toHex } from "../../formats/hash.ts";
import { blockIdOf } from "../../formats/block_seal.ts";
import { IntegrityError } from "../errors.ts";

/** A stored block of a file, as read from its pack. */
export interface StoredBlock {
  /** The block's id: SHA-256 of its plaintext (HMAC-SHA-256 in an encrypted repository). */
  readonly id: Uint8Array;
  /** The pack it was read from (hex), for messages. */
  readonly pack: string;
  readonly codec: number;
  readonly rawLength: number;
  /** The stored (compressed) bytes (in an encrypted repository: opened already). */
  readonly data: Uint8Array;
  /** An encrypted repository's id key: the id is then the HMAC of the plaintext. */
  readonly idKey?: Uint8Array;
}

/**
 * The plaintext of `block`, a block of file `rel`, checked against its id;
 * an {@linkcode IntegrityError} naming the block, its pack and the file when
 * it cannot be decoded or does not match.
 *
 * @example
 * ```ts ignore
 * const raw = decodeChecked(block, "db/big.parquet");
 * ```
 */
export function decodeChecked(block: StoredBlock, rel: string): Uint8Array {
  let raw: Uint8Array;
  try {
    raw = decodeBlock(block.codec, block.data, block.rawLength);
    if (!equalBytes(blockIdOf(raw, block.idKey), block.id)) {
      throw new SyntaxError("does not match its hash");
    }
  } catch (e) {
    throw new IntegrityError(
      `block ${toHex(block.id)} in pack ${block.pack} needed by file ${rel} is damaged (${
        (e as Error).message
      }); nothing was written under that file's name`,
    );
  }
  return raw;
}
