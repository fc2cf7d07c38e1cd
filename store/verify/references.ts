/**
 * The tree step of `verify`: walks every tree of the selected backups
 * (reading, and so hashing, each tree once) and the WAL archive's records,
 * noting every block and pack they reference; a tree or block the index
 * lacks, or a tree that does not read, is damage.
 *
 * @module
 */
import { BendsaveError } from "../errors.ts";
import type { ManifestRecord, Repository } from "../repository.ts";
import type { EventSink } from "../backup/events.ts";
import { checkpoint } from "../cancel.ts";
import { type TreeWalk, walkTree } from "../walker.ts";
import { listWal } from "../wal_archive.ts";
import { toHex } from "../../formats/hash.ts";
import { NodeType } from "../../formats/tree.ts";
import type { Problem, Problems } from "./problems.ts";
import type { ReadTrees } from "./read_data.ts";

/** What the backups and the WAL archive reference, and the damage found on the way. */
export class References {
  /** Trees walked, by hex id. */
  readonly trees = new Set<string>();
  /** Numbers of the packs (BlockIndex) holding a referenced tree or block. */
  readonly packs = new Set<number>();
  /** Indexed blocks referenced, by BlockIndex position (1: referenced). */
  readonly #indexed: Uint8Array;
  /** Referenced blocks the index lacks, by hex id. */
  readonly #missing = new Set<string>();
  /** Blocks referenced. */
  blockCount = 0;
  /**
   * Trees the walk could not read (missing from the index, or damaged).
   * The walk keeps no file lists: attribution, needed only when there is
   * damage, walks the trees again, so that memory does not grow with the
   * number of files.
   */
  readonly unreadTrees = new Set<string>();
  /** The WAL files (as `wal:<system>/<name>`) each WAL block belongs to. */
  readonly walOfBlock = new Map<string, string[]>();
  /** Damaged or missing trees, by hex id. */
  readonly badTrees = new Map<string, Problem>();
  /** Damaged or missing blocks, by hex id. */
  readonly badBlocks = new Map<string, Problem>();
  /** Files walked. */
  files = 0;
  /** WAL records read (damaged ones included). */
  walFiles = 0;

  readonly #repo: Repository;
  readonly #problems: Problems;

  /** Empty references into `repo`'s index; damage goes to `problems`. */
  constructor(repo: Repository, problems: Problems) {
    this.#repo = repo;
    this.#problems = problems;
    this.#indexed = new Uint8Array(repo.index.size);
  }

  /**
   * Counts a block a backup or WAL file needs, once; one the index lacks is
   * damage. Keyed by index position, not by hex id: a backup references
   * one block per small file, and an id string each was most of the walk's
   * garbage.
   */
  referenceBlock(b: Uint8Array): void {
    const i = this.#repo.index.position(b);
    if (i >= 0) {
      if (this.#indexed[i] === 1) return;
      this.#indexed[i] = 1;
      this.blockCount++;
      this.packs.add(this.#repo.index.packOfPosition(i));
      return;
    }
    const bh = toHex(b);
    if (this.#missing.has(bh)) return;
    this.#missing.add(bh);
    this.blockCount++;
    this.badBlocks.set(
      bh,
      this.#problems.add(
        "block",
        bh,
        `block ${bh} is not in the index (its pack or index file is lost)`,
      ),
    );
  }
}

interface Dir {
  readonly what: string;
  readonly hex: string;
}

function dirOf(id: Uint8Array, what: string): Dir {
  return { what, hex: toHex(id) };
}

/** Walks every part of every manifest in `records` into `refs`. */
export async function walkBackups(
  repo: Repository,
  records: readonly ManifestRecord[],
  refs: References,
  problems: Problems,
  options: {
    signal?: AbortSignal | undefined;
    emit: EventSink;
    /** Trees a data read beside the walk checked already. */
    trees?: ReadTrees | undefined;
  },
): Promise<void> {
  const loadTree = async (id: Uint8Array, hex: string, what: string, packId: Uint8Array) => {
    const bytes = await options.trees?.take(toHex(packId), hex);
    return bytes ? repo.parseTree(id, bytes, what) : await repo.loadTree(id, what);
  };
  const treeWalk: TreeWalk<Dir> = {
    load: async (id, d) => {
      await checkpoint(options.signal, "verify");
      if (refs.trees.has(d.hex)) return null;
      refs.trees.add(d.hex);
      const loc = repo.index.lookup(id);
      if (!loc) {
        refs.unreadTrees.add(d.hex);
        refs.badTrees.set(
          d.hex,
          problems.add(
            "tree",
            d.hex,
            `tree ${d.hex} (${d.what}) is not in the index: run bendsave repair index, then verify again`,
          ),
        );
        return null;
      }
      refs.packs.add(loc.packIndex);
      try {
        return await loadTree(id, d.hex, d.what, loc.packId);
      } catch (e) {
        if (!(e instanceof BendsaveError)) throw e;
        refs.unreadTrees.add(d.hex);
        refs.badTrees.set(d.hex, problems.add("tree", d.hex, e.message));
        return null;
      }
    },
    enter: (n, d) => {
      if (n.type === NodeType.file) {
        refs.files++;
        for (const b of n.blocks) refs.referenceBlock(b);
      } else if (n.type === NodeType.dir && n.subtree) {
        return dirOf(n.subtree, `${d.what}/${n.name}`);
      }
      return undefined;
    },
  };
  for (const r of records) {
    for (const part of r.manifest.parts) {
      await walkTree(part.root, dirOf(part.root, `${r.name}:${part.name}`), treeWalk);
    }
    options.emit({
      type: "progress",
      operation: "verify",
      phase: "scan",
      files: refs.files,
      totalFiles: 0,
      bytes: 0,
      totalBytes: 0,
      elapsedMs: 0,
    });
  }
}

/**
 * WAL archive (since 1.2): every record's envelope holds and its blocks are
 * indexed; the packs holding them are referenced (never reclaimable).
 */
export async function scanWal(
  repo: Repository,
  refs: References,
  problems: Problems,
): Promise<void> {
  const records = await listWal(repo, {
    onDamaged: (name, e) => {
      refs.walFiles++;
      problems.add("wal", name, e.message);
    },
  });
  for (const w of records) {
    refs.walFiles++;
    const label = `wal:${w.systemId}/${w.name}`;
    for (const b of w.blocks) {
      const bh = toHex(b);
      refs.walOfBlock.set(bh, [...(refs.walOfBlock.get(bh) ?? []), label]);
      refs.referenceBlock(b);
    }
  }
}
