/**
 * Test support: damages the stored bytes of a block in its pack, as a bad
 * disk or tape would.
 *
 * @module
 */
import type { Repository } from "../repository.ts";
import { toHex } from "../../formats/hash.ts";

/**
 * Flips `mask` into byte `at` of the stored first block of top-level file
 * `name` of backup `manifest` (part 0), rewriting its pack in place.
 */
export async function damageFirstBlock(
  repo: Repository,
  manifest: string,
  name: string,
  at: number,
  mask: number,
): Promise<void> {
  await repo.loadIndex();
  const root = (await repo.loadManifest(manifest)).manifest.parts[0]!.root;
  const node = (await repo.loadTree(root)).find((n) => n.name === name)!;
  await damageBlock(repo, node.blocks[0]!, at, mask);
}

/** Flips `mask` into byte `at` of block `id` as stored, rewriting its pack in place. */
export async function damageBlock(
  repo: Repository,
  id: Uint8Array,
  at: number,
  mask: number,
): Promise<void> {
  await repo.loadIndex();
  const loc = repo.locate(id, toHex(id));
  const h = { kind: "pack", name: toHex(loc.packId) } as const;
  const pack = (await repo.store.load(h)).slice();
  pack[loc.offset + at] = pack[loc.offset + at]! ^ mask;
  await repo.store.save(h, pack);
}
