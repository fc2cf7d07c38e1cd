/**
 * Space a vacuum can free: packs no checked backup references (only known
 * when every manifest was checked and none was skipped as newer).
 *
 * @module
 */
import type { BlobStore } from "../drivers/types.ts";
import type { Repository } from "../repository.ts";
import { toHex } from "../../formats/hash.ts";
import { loadPackTrailer } from "../pack_trailer.ts";
import type { BadPacks, PackFiles } from "./pack_files.ts";
import type { References } from "./references.ts";

/**
 * Counts the packs in the store that nothing references. A pack no index
 * lists but that holds blocks the backups need is damage (reported), never
 * reclaimable.
 */
export async function findReclaimable(
  store: BlobStore,
  repo: Repository,
  packFiles: PackFiles,
  refs: References,
  badPacks: BadPacks,
): Promise<{ packs: number; bytes: number }> {
  const reclaimable = { packs: 0, bytes: 0 };
  const indexedByHex = new Map<string, number>();
  for (const p of repo.index.packs()) indexedByHex.set(toHex(p.id), p.index);
  for (const [hex, size] of packFiles.present) {
    const i = indexedByHex.get(hex);
    if (i !== undefined && refs.packs.has(i)) continue;
    // A pack no index lists may still hold blocks the backups need (its
    // index file was lost): then it is damage to repair, never reclaimable.
    if (
      i === undefined &&
      await holdsNeededBlocks(store, hex, size, repo, refs.badBlocks, refs.badTrees)
    ) {
      badPacks.report(
        hex,
        `pack ${hex} holds blocks that backups need but no index file lists it: run bendsave repair index, then verify again`,
      );
      continue;
    }
    reclaimable.packs++;
    reclaimable.bytes += size;
  }
  return reclaimable;
}

/**
 * True when the trailer of unindexed pack `hex` lists a block the walk found
 * missing from the index; a pack whose trailer cannot be read counts as
 * holding them (it is not safe to call it reclaimable).
 */
async function holdsNeededBlocks(
  store: BlobStore,
  hex: string,
  size: number,
  repo: Repository,
  ...missing: ReadonlyMap<string, unknown>[]
): Promise<boolean> {
  if (missing.every((m) => m.size === 0)) return false;
  try {
    const entries = await loadPackTrailer(store, hex, size, repo.crypto);
    return entries.some((e) => missing.some((m) => m.has(toHex(e.id))));
  } catch {
    return true;
  }
}
