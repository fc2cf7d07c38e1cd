/**
 * The first step of `verify`: every index file must match its name and
 * parse; the pack records they hold are what later steps check the packs
 * against.
 *
 * @module
 */
import type { BlobStore } from "../drivers/types.ts";
import { isHexId, sha256Hex, toHex } from "../../formats/hash.ts";
import { decodeIndexFile } from "../../formats/index_file.ts";
import type { PackEntry } from "../../formats/pack.ts";
import type { Problems } from "./problems.ts";
import type { Repository } from "../repository.ts";

/** A pack as the index files list it (the first index file listing it wins). */
export interface IndexedPack {
  readonly size: number;
  readonly entries: PackEntry[];
}

/**
 * Reads and checks every index file; returns the packs they list, by hex
 * id, and how many index files there are. A damaged file is reported and
 * left out.
 */
export async function checkIndexFiles(
  store: BlobStore,
  problems: Problems,
  repo: Repository,
): Promise<{ indexed: Map<string, IndexedPack>; files: number }> {
  const indexed = new Map<string, IndexedPack>();
  let files = 0;
  for await (const f of store.list("index")) {
    if (!isHexId(f.name)) continue;
    const bytes = await store.load({ kind: "index", name: f.name });
    files++;
    if (sha256Hex(bytes) !== f.name) {
      problems.add(
        "index",
        f.name,
        `index file ${f.name} does not match its name (damaged): run bendsave repair index`,
      );
      continue;
    }
    try {
      for (const p of decodeIndexFile(await repo.openIndexFile(bytes, f.name))) {
        const hex = toHex(p.packId);
        if (!indexed.has(hex)) indexed.set(hex, { size: p.packSize, entries: [...p.entries] });
      }
    } catch (e) {
      problems.add(
        "index",
        f.name,
        `index file ${f.name} is damaged (${(e as Error).message}): run bendsave repair index`,
      );
    }
  }
  return { indexed, files };
}
