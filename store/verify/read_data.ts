/**
 * The data read of `verify --read-data`: the selected packs are read and
 * checked on the worker pool (store/check_packs.ts); the results are kept
 * and applied once the tree walk is done, since a damaged block is a
 * damaged tree only if the walk met it. A read of every pack starts before
 * the walk and runs beside it, tree packs first, and hands the walk the
 * trees it checked (ReadTrees), so the walk does not read, decompress and
 * hash them a second time.
 *
 * @module
 */
import type { BlobStore } from "../drivers/types.ts";
import type { EventSink } from "../backup/events.ts";
import { checkpoint } from "../cancel.ts";
import { checkPacks } from "../check_packs.ts";
import type { PackCheck } from "../pack_check.ts";
import type { Repository } from "../repository.ts";
import { toHex } from "../../formats/hash.ts";
import { BlobKind } from "../../formats/pack.ts";
import type { IndexedPack } from "./index_files.ts";
import type { BadPacks, PackFiles } from "./pack_files.ts";
import type { Problems } from "./problems.ts";
import type { References } from "./references.ts";
import { type DataSubset, pickSubset } from "./subset.ts";

/** The packs a data read could cover and the ones it reads. */
export interface ReadScope {
  /** Packs in scope: intact, and (with a manifest selection) referenced by it. */
  readonly inScope: number;
  /** The packs to read: those holding trees first, each group largest first. */
  readonly selected: string[];
  /** The selected packs that hold trees. */
  readonly treePacks: ReadonlySet<string>;
}

/**
 * The trees a data read found good, handed to a tree walk that runs beside
 * it: a tree in a pack the read has yet to check waits for that pack; one
 * it does not hold (not read, or damaged) the walk reads itself.
 */
export class ReadTrees {
  readonly #trees = new Map<string, Uint8Array>();
  readonly #packs = new Map<string, { done: Promise<void>; resolve: () => void }>();

  /** Trees of `packs` (hex ids), all still to come. */
  constructor(packs: Iterable<string>) {
    for (const hex of packs) {
      let resolve!: () => void;
      const done = new Promise<void>((r) => (resolve = r));
      this.#packs.set(hex, { done, resolve });
    }
  }

  /** The content of tree `hex` in pack `packHex`, once; undefined when the read does not hold it. */
  async take(packHex: string, hex: string): Promise<Uint8Array | undefined> {
    const pack = this.#packs.get(packHex);
    if (!pack) return undefined;
    await pack.done;
    const bytes = this.#trees.get(hex);
    this.#trees.delete(hex);
    return bytes;
  }

  /** Pack `packHex` is checked; `trees` are its good tree blocks. */
  packDone(packHex: string, trees: readonly { id: Uint8Array; bytes: Uint8Array }[]): void {
    for (const t of trees) this.#trees.set(toHex(t.id), t.bytes);
    this.#packs.get(packHex)?.resolve();
  }

  /**
   * The read is over: nothing more is waited for. After a read that failed
   * what is left is dropped; after one that completed, the trees not taken
   * yet stay for the walk, which may still be behind the read.
   */
  close(completed = false): void {
    for (const p of this.#packs.values()) p.resolve();
    if (completed) return;
    this.#packs.clear();
    this.#trees.clear();
  }
}

/**
 * The packs to read: every intact indexed pack, or (when `refs` is given,
 * for a manifest selection) those it references; then the subset's share.
 */
export function readScope(
  repo: Repository,
  indexed: ReadonlyMap<string, IndexedPack>,
  packFiles: PackFiles,
  refs: References | null,
  subset: DataSubset | undefined,
  random: () => number,
): ReadScope {
  const packNumber = new Map<string, number>();
  for (const p of repo.index.packs()) packNumber.set(toHex(p.id), p.index);
  const inScope = [...indexed.keys()].filter((hex) => {
    if (packFiles.damaged.has(hex)) return false;
    return refs === null || refs.packs.has(packNumber.get(hex) ?? -1);
  }).sort();
  const picked = subset ? pickSubset(inScope, subset, random) : inScope;
  const holdsTrees = (hex: string) =>
    indexed.get(hex)?.entries.some((e) => e.kind === BlobKind.tree) === true;
  // Largest first within each group, so that the last pack the lanes take
  // is a small one and neither core waits long for the other at the end.
  const bySize = (a: string, b: string) =>
    (indexed.get(b)?.size ?? 0) - (indexed.get(a)?.size ?? 0) || (a < b ? -1 : 1);
  const treePacks = picked.filter(holdsTrees).sort(bySize);
  return {
    inScope: inScope.length,
    selected: [...treePacks, ...picked.filter((hex) => !holdsTrees(hex)).sort(bySize)],
    treePacks: new Set(treePacks),
  };
}

/** A finished data read: the checks of the packs read, in completion order. */
export interface DataRead {
  readonly checks: { check: PackCheck; size: number }[];
}

/**
 * Reads and checks the packs of `scope` (emitting read progress); `stop`
 * ends it early (the promise then rejects).
 */
export async function readData(
  store: BlobStore,
  indexed: ReadonlyMap<string, IndexedPack>,
  scope: ReadScope,
  options: {
    signal?: AbortSignal | undefined;
    stop: AbortSignal;
    emit: EventSink;
    /** Where the good trees of the scope's tree packs go. */
    trees?: ReadTrees;
    /** An encrypted repository's master key: its packs are sealed. */
    masterKey?: Uint8Array;
  },
): Promise<DataRead> {
  const { selected } = scope;
  const checks: { check: PackCheck; size: number }[] = [];
  const totalBytes = selected.reduce((a, hex) => a + (indexed.get(hex)?.size ?? 0), 0);
  let bytes = 0;
  const readStart = Date.now();
  const loadPack = async (hex: string) => {
    await checkpoint(options.signal, "verify");
    options.stop.throwIfAborted();
    return await store.load({ kind: "pack", name: hex });
  };
  const trees = options.trees;
  let completed = false;
  try {
    await checkPacks(selected, loadPack, (check, size) => {
      checks.push({ check, size });
      trees?.packDone(check.name, check.trees);
      bytes += size;
      options.emit({
        type: "progress",
        operation: "verify",
        phase: "read",
        files: checks.length,
        totalFiles: selected.length,
        bytes,
        totalBytes,
        elapsedMs: Date.now() - readStart,
      });
    }, {
      onWarning: (message) => options.emit({ type: "warning", message }),
      ...(trees ? { keepTrees: scope.treePacks } : {}),
      ...(options.masterKey ? { masterKey: options.masterKey } : {}),
    });
    completed = true;
  } finally {
    trees?.close(completed);
  }
  return { checks };
}

/** Records the damage a data read found. */
export function applyDataRead(
  read: DataRead,
  badPacks: BadPacks,
  refs: References,
  problems: Problems,
): void {
  for (const { check: c } of read.checks) {
    if (!c.nameMatches) {
      badPacks.report(
        c.name,
        `pack ${c.name} does not match its name (damaged): restore it from another copy`,
      );
    }
    if (c.layoutError !== null) {
      badPacks.report(c.name, `pack ${c.name} is damaged (${c.layoutError})`);
    }
    for (const b of c.badBlocks) {
      const p = problems.add(
        "block",
        b.id,
        `block ${b.id} in pack ${c.name} is damaged (${b.message})`,
      );
      refs.badBlocks.set(b.id, p);
      if (refs.trees.has(b.id)) refs.badTrees.set(b.id, p);
    }
  }
}
