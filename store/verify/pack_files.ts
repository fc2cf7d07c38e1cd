/**
 * The pack step of `verify`: every pack the index files list exists, with
 * the size they give, and its trailer (read alone) lists the same entries.
 *
 * @module
 */
import type { BlobStore } from "../drivers/types.ts";
import type { PackEntry } from "../../formats/pack.ts";
import { loadPackTrailer } from "../pack_trailer.ts";
import type { RepoCrypto } from "../repo_crypto.ts";
import type { IndexedPack } from "./index_files.ts";
import type { Problem, Problems } from "./problems.ts";

/** The packs in the store, and the indexed ones found damaged or missing. */
export interface PackFiles {
  /** Every pack in the store: hex id to size. */
  readonly present: Map<string, number>;
  /** Damaged or missing indexed packs: hex id to the problem's message, in the order found. */
  readonly damaged: Map<string, string>;
}

/** Damaged packs, one problem each (the first message found for it). */
export class BadPacks {
  /** The problem of each damaged pack, by hex id. */
  readonly problems = new Map<string, Problem>();
  readonly #list: Problems;

  /** Damaged packs reported into `list`. */
  constructor(list: Problems) {
    this.#list = list;
  }

  /** Records a problem for pack `hex` unless it has one already. */
  report(hex: string, message: string): void {
    if (!this.problems.has(hex)) this.problems.set(hex, this.#list.add("pack", hex, message));
  }
}

/**
 * Checks every indexed pack's existence, size and trailer; returns what it
 * found without reporting it (the caller reports it in its place).
 */
export async function checkPackFiles(
  store: BlobStore,
  indexed: ReadonlyMap<string, IndexedPack>,
  /** An encrypted repository's: its packs' trailers are sealed. */
  crypto: RepoCrypto | null = null,
): Promise<PackFiles> {
  const present = new Map<string, number>();
  for await (const f of store.list("pack")) present.set(f.name, f.size);
  const damaged = new Map<string, string>();
  for (const [hex, rec] of indexed) {
    const size = present.get(hex);
    if (size === undefined) {
      damaged.set(hex, `pack ${hex} is missing: copy it back from another copy of the repository`);
      continue;
    }
    if (size !== rec.size) {
      damaged.set(
        hex,
        `pack ${hex} has ${size} bytes, the index says ${rec.size} (truncated or replaced)`,
      );
      continue;
    }
    try {
      const entries = await loadPackTrailer(store, hex, size, crypto);
      if (!sameEntries(entries, rec.entries)) {
        throw new SyntaxError("its trailer disagrees with the index");
      }
    } catch (e) {
      damaged.set(
        hex,
        `pack ${hex} is damaged (${(e as Error).message}): restore it from another copy`,
      );
    }
  }
  return { present, damaged };
}

/** A total order on entries: offset, lengths, kind, codec, then id bytes. */
function compareEntries(a: PackEntry, b: PackEntry): number {
  const d = a.offset - b.offset || a.storedLength - b.storedLength ||
    a.rawLength - b.rawLength || a.kind - b.kind || a.codec - b.codec;
  if (d !== 0) return d;
  for (let i = 0; i < a.id.length && i < b.id.length; i++) {
    if (a.id[i] !== b.id[i]) return a.id[i]! - b.id[i]!;
  }
  return a.id.length - b.id.length;
}

/**
 * True when `a` and `b` hold the same entries, in any order. Sorted by
 * numbers rather than by strings built for each entry: a pack holds
 * thousands of entries.
 */
export function sameEntries(a: readonly PackEntry[], b: readonly PackEntry[]): boolean {
  if (a.length !== b.length) return false;
  const sa = [...a].sort(compareEntries);
  const sb = [...b].sort(compareEntries);
  return sa.every((e, i) => compareEntries(e, sb[i]!) === 0);
}
