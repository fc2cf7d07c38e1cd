/**
 * The restore precheck: which packs the store holds with the size the index
 * records, and the one-line error naming every pack a restore lacks.
 *
 * @module
 */
import { MissingPacks, NotFound } from "../errors.ts";
import type { Repository } from "../repository.ts";
import { toHex } from "../../formats/hash.ts";
import type { TreeNode } from "../../formats/tree.ts";
import type { RestorePlan } from "./restore.ts";

/** How many pack `stat` calls the restore precheck runs at once. */
const STAT_CONCURRENCY = 8;

/**
 * The restore precheck: which packs the store holds with the size the index
 * records, asked once per pack (a `stat`), a few at a time. A restore from a
 * partly staged repository learns here, before it writes anything, which
 * packs are still to be staged.
 */
export class PackPresence {
  readonly #repo: Repository;
  readonly #known = new Map<string, Promise<boolean>>();
  /** Packs the store holds with another size than the index records. */
  readonly #incomplete = new Set<string>();

  /** A precheck of the packs of `repo`. */
  constructor(repo: Repository) {
    this.#repo = repo;
  }

  /** True when the store holds pack `id` with `size` bytes. */
  has(id: string, size: number): Promise<boolean> {
    let known = this.#known.get(id);
    if (known === undefined) {
      known = this.#repo.store.stat({ kind: "pack", name: id }).then(
        (info) => {
          if (info.size === size) return true;
          this.#incomplete.add(id);
          return false;
        },
        (e: unknown) => {
          if (e instanceof NotFound) return false;
          throw e;
        },
      );
      this.#known.set(id, known);
    }
    return known;
  }

  /** The names of the `packs` the store lacks (or holds incomplete), sorted. */
  async missing(packs: readonly { id: string; size: number }[]): Promise<string[]> {
    const out: string[] = [];
    let next = 0;
    const lane = async () => {
      while (next < packs.length) {
        const p = packs[next++]!;
        if (!(await this.has(p.id, p.size))) out.push(p.id);
      }
    };
    await Promise.all(Array.from({ length: Math.min(STAT_CONCURRENCY, packs.length) }, lane));
    return out.sort();
  }

  /**
   * Tree `id` and the pack that holds it; `nodes` is null when that pack is
   * missing, so a partly staged repository still yields a plan.
   */
  async tree(
    id: Uint8Array,
    what: string,
  ): Promise<{ packIndex: number; nodes: TreeNode[] | null }> {
    const loc = this.#repo.locate(id, what);
    const size = this.#repo.index.pack(loc.packIndex).size;
    if (!(await this.has(toHex(loc.packId), size))) {
      return { packIndex: loc.packIndex, nodes: null };
    }
    return { packIndex: loc.packIndex, nodes: await this.#repo.loadTree(id, what) };
  }

  /** The error of a restore whose plan names missing packs: every one of them, in one line. */
  error(plan: RestorePlan): MissingPacks {
    const store = this.#repo.store;
    const staged = !store.capabilities.writable;
    const say = (names: string[], state: string) =>
      names.length === 1
        ? `pack ${names[0]} needed by this restore is ${state}`
        : `${names.length} packs needed by this restore are ${state}: ${names.join(", ")}`;
    const absent = plan.missingPacks.filter((n) => !this.#incomplete.has(n));
    const short = plan.missingPacks.filter((n) => this.#incomplete.has(n));
    const clauses: string[] = [];
    if (absent.length > 0) {
      clauses.push(
        say(
          absent,
          staged ? `not in ${store.location}` : `missing from the repository ${store.location}`,
        ),
      );
    }
    if (short.length > 0) {
      clauses.push(say(short, `incomplete in ${store.location} (the size differs from the index)`));
    }
    const them = plan.missingPacks.length === 1 ? "it" : "them";
    clauses.push(
      staged
        ? `stage ${them} and run again`
        : `copy ${them} back from another copy of the repository (bendsave verify lists every affected backup)`,
    );
    const more = plan.unlistedDirs.length > 0
      ? ` (${plan.unlistedDirs.length} of the directories to restore are listed in these packs, so more packs may be needed)`
      : "";
    return new MissingPacks(clauses.join("; ") + more, plan.missingPacks);
  }
}
