/**
 * CRC-32C (Castagnoli), which node:crypto and node:zlib lack, through
 * hash-wasm. Used for the checksum of pack trailers, so an index can be
 * rebuilt from trailers alone with a check that they are intact.
 *
 * @module
 */
import { createCRC32 } from "hash-wasm";

const hasher = await createCRC32(0x82F63B78);

/**
 * CRC-32C of `data` as an unsigned 32-bit number.
 *
 * @example
 * ```ts
 * import { crc32c } from "./crc32c.ts";
 * crc32c(new TextEncoder().encode("123456789")); // 0xe3069283
 * ```
 */
export function crc32c(data: Uint8Array): number {
  hasher.init();
  hasher.update(data);
  const b = hasher.digest("binary");
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}
