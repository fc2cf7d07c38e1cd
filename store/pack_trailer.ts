/**
 * Reading a pack's trailer (FORMAT.md, "Packs") without reading its blocks:
 * two range reads, the footer and then the entries it counts.
 *
 * @module
 */
import type { BlobStore } from "./drivers/types.ts";
import {
  PACK_FOOTER_SIZE,
  type PackEntry,
  parseFooter,
  parseTrailer,
  storedTrailerLength,
} from "../formats/pack.ts";
import type { RepoCrypto } from "./repo_crypto.ts";

/**
 * The entries of pack `name` of `size` bytes, read from its trailer.
 * Throws `SyntaxError` when the footer or trailer is damaged.
 *
 * @example
 * ```ts ignore
 * const entries = await loadPackTrailer(store, "b4e4...", 16_777_216);
 * ```
 */
export async function loadPackTrailer(
  store: BlobStore,
  name: string,
  size: number,
  /** An encrypted repository's: its packs' trailers are sealed. */
  crypto: RepoCrypto | null = null,
): Promise<PackEntry[]> {
  const h = { kind: "pack" as const, name };
  const footer = parseFooter(
    await store.load(h, { offset: size - PACK_FOOTER_SIZE, length: PACK_FOOTER_SIZE }),
  );
  const tlen = storedTrailerLength(footer.count, crypto !== null);
  if (crypto && size - PACK_FOOTER_SIZE - tlen < 8) {
    throw new SyntaxError("pack trailer is longer than the pack");
  }
  const stored = await store.load(h, { offset: size - PACK_FOOTER_SIZE - tlen, length: tlen });
  if (!crypto) return parseTrailer(stored, footer, size);
  const trailer = await crypto.openTrailer(stored, `pack ${name} trailer`);
  return parseTrailer(trailer, footer, size, stored);
}
