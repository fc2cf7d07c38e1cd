/**
 * Reading a pack's trailer (FORMAT.md, "Packs") without reading its blocks:
 * two range reads, the footer and then the entries it counts.
 *
 * @module
 */
import type { BlobStore } from "./drivers/types.ts";
import {
  ENTRY_SIZE,
  PACK_FOOTER_SIZE,
  type PackEntry,
  parseFooter,
  parseTrailer,
} from "../formats/pack.ts";

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
): Promise<PackEntry[]> {
  const h = { kind: "pack" as const, name };
  const footer = parseFooter(
    await store.load(h, { offset: size - PACK_FOOTER_SIZE, length: PACK_FOOTER_SIZE }),
  );
  const tlen = footer.count * ENTRY_SIZE;
  return parseTrailer(
    await store.load(h, { offset: size - PACK_FOOTER_SIZE - tlen, length: tlen }),
    footer,
    size,
  );
}
