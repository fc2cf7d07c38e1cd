/**
 * `repair index`: rebuilds the index from the pack trailers alone, under
 * the exclusive lock. The new index file is written before the old ones
 * are removed, so a crash leaves at worst duplicate (harmless) entries.
 *
 * @module
 */
import type { BlobStore } from "./drivers/types.ts";
import { Repository } from "./repository.ts";
import { reportStale, RepositoryLock } from "./lock.ts";
import type { EventSink } from "./backup/events.ts";
import { type CancelOptions, checkpoint, throwIfCancelled } from "./cancel.ts";
import { fromHex, sha256, toHex } from "../formats/hash.ts";
import { encodeIndexFile, type IndexedPack } from "../formats/index_file.ts";
import { parsePack } from "../formats/pack.ts";
import { loadPackTrailer } from "./pack_trailer.ts";

/** What a repair did. */
export interface RepairResult {
  readonly packs: number;
  readonly blocks: number;
  /** Packs whose trailer (and content) could not be read: their blocks are not indexed. */
  readonly damagedPacks: { id: string; reason: string }[];
  readonly indexFile: string | null;
  readonly removedIndexFiles: number;
}

/**
 * Rebuilds the index of the repository in `store` from its packs. A
 * `signal` that aborts stops it while it reads pack trailers, before it
 * writes the new index (then it finishes: the old index files go quickly).
 */
export async function repairIndex(
  store: BlobStore,
  options: { onEvent?: EventSink } & CancelOptions = {},
): Promise<RepairResult> {
  const emit: EventSink = options.onEvent ?? (() => {});
  throwIfCancelled(options.signal, "repair");
  // Checks config and format version (and unlocks an encrypted repository: its trailers are sealed).
  const crypto = (await Repository.open(store)).crypto;
  const lock = await RepositoryLock.acquire(store, "exclusive", {
    operation: "repair index",
    onStale: reportStale(emit),
  });
  try {
    const oldIndex: string[] = [];
    for await (const f of store.list("index")) oldIndex.push(f.name);
    const packs: IndexedPack[] = [];
    const damagedPacks: { id: string; reason: string }[] = [];
    let blocks = 0;
    for await (const f of store.list("pack")) {
      await checkpoint(options.signal, "repair");
      const h = { kind: "pack" as const, name: f.name };
      try {
        let entries;
        try {
          entries = await loadPackTrailer(store, f.name, f.size, crypto);
        } catch {
          // Read the whole pack: a hash mismatch tells damage from a trailer-only problem.
          const bytes = await store.load(h);
          if (toHex(sha256(bytes)) !== f.name) {
            throw new SyntaxError("content does not match its name");
          }
          entries = crypto ? await crypto.packEntries(bytes, f.name) : parsePack(bytes);
        }
        packs.push({ packId: fromHex(f.name), packSize: f.size, entries });
        blocks += entries.length;
      } catch (e) {
        damagedPacks.push({ id: f.name, reason: (e as Error).message });
        emit({
          type: "warning",
          message: `pack ${f.name} is damaged and was left out of the index: ${
            (e as Error).message
          }`,
        });
      }
    }
    await checkpoint(options.signal, "repair");
    let indexFile: string | null = null;
    if (packs.length > 0) {
      const plain = encodeIndexFile(packs);
      const bytes = crypto ? await crypto.sealIndexFile(plain) : plain;
      indexFile = toHex(sha256(bytes));
      await store.save({ kind: "index", name: indexFile }, bytes);
    }
    let removed = 0;
    for (const name of oldIndex) {
      if (name === indexFile) continue;
      await store.remove({ kind: "index", name });
      removed++;
    }
    return { packs: packs.length, blocks, damagedPacks, indexFile, removedIndexFiles: removed };
  } finally {
    await lock.release().catch(() => {});
  }
}
