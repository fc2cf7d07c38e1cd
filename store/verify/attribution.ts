/**
 * The last step of `verify`: which backups and files each problem affects.
 * The blocks of a damaged pack are damaged blocks; a file is affected by
 * each problem of its blocks, a directory by its tree's. Only when there is
 * damage are the trees read again, to find the paths.
 *
 * @module
 */
import { BendsaveError } from "../errors.ts";
import type { ManifestRecord, Repository } from "../repository.ts";
import { NodeType } from "../../formats/tree.ts";
import { toHex } from "../../formats/hash.ts";
import type { IndexedPack } from "./index_files.ts";
import type { BadPacks } from "./pack_files.ts";
import { addAffectedFile, attachProblem, type Problem } from "./problems.ts";
import type { References } from "./references.ts";

/** Marks the blocks (and trees) of every damaged pack as damaged by the pack's problem. */
export function spreadPackDamage(
  badPacks: BadPacks,
  indexed: ReadonlyMap<string, IndexedPack>,
  refs: References,
): void {
  for (const [hex, p] of badPacks.problems) {
    for (const e of indexed.get(hex)?.entries ?? []) {
      const bh = toHex(e.id);
      if (!refs.badBlocks.has(bh)) refs.badBlocks.set(bh, p);
      if (refs.trees.has(bh) && !refs.badTrees.has(bh)) refs.badTrees.set(bh, p);
    }
  }
}

/** Names the backups and files (and WAL files) each damaged tree and block affects. */
export async function attributeProblems(
  repo: Repository,
  records: readonly ManifestRecord[],
  refs: References,
): Promise<void> {
  if (refs.badBlocks.size > 0 || refs.badTrees.size > 0) {
    const listings = new TreeListings(repo, refs.unreadTrees);
    for (const r of records) {
      for (const part of r.manifest.parts) {
        await attributeTree(
          refs,
          listings,
          part.root,
          r.manifest.parts.length > 1 ? part.name : "",
          r.name,
        );
      }
    }
  }
  for (const [bh, labels] of refs.walOfBlock) {
    const p = refs.badBlocks.get(bh);
    if (!p) continue;
    for (const label of labels) addAffectedFile(p, label);
  }
}

/** The files and subdirectories of a tree. */
interface Listing {
  readonly files: { path: string; blocks: readonly Uint8Array[] }[];
  readonly dirs: { id: Uint8Array; name: string }[];
}

/**
 * The trees of the backups, read again for attribution (only when there is
 * damage), each once; a tree the walk could not read has no listing.
 */
class TreeListings {
  readonly #repo: Repository;
  readonly #unread: ReadonlySet<string>;
  readonly #listings = new Map<string, Listing | null>();

  constructor(repo: Repository, unread: ReadonlySet<string>) {
    this.#repo = repo;
    this.#unread = unread;
  }

  async get(id: Uint8Array, hex: string): Promise<Listing | null> {
    const known = this.#listings.get(hex);
    if (known !== undefined) return known;
    let listing: Listing | null = null;
    if (!this.#unread.has(hex)) {
      try {
        const nodes = await this.#repo.loadTree(id);
        listing = { files: [], dirs: [] };
        for (const n of nodes) {
          if (n.type === NodeType.file) listing.files.push({ path: n.name, blocks: n.blocks });
          else if (n.type === NodeType.dir && n.subtree) {
            listing.dirs.push({ id: n.subtree, name: n.name });
          }
        }
      } catch (e) {
        if (!(e instanceof BendsaveError)) throw e; // read once by the walk: not expected
      }
    }
    this.#listings.set(hex, listing);
    return listing;
  }
}

/**
 * Depth first with a stack of its own, not recursion: a tree thousands of
 * directories deep must not overflow the call stack.
 */
async function attributeTree(
  refs: References,
  listings: TreeListings,
  root: Uint8Array,
  rootPrefix: string,
  manifest: string,
): Promise<void> {
  const seen = new Set<string>();
  const stack: { id: Uint8Array; prefix: string }[] = [{ id: root, prefix: rootPrefix }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const { id, prefix } = top;
    const treeHex = toHex(id);
    if (seen.has(treeHex)) continue;
    seen.add(treeHex);
    const tp = refs.badTrees.get(treeHex);
    if (tp) attachProblem(tp, manifest, prefix === "" ? "/" : prefix);
    const listing = await listings.get(id, treeHex);
    if (listing === null) continue;
    for (const f of listing.files) {
      const fpath = prefix === "" ? f.path : `${prefix}/${f.path}`;
      const hit = new Set<Problem>();
      for (const b of f.blocks) {
        const p = refs.badBlocks.get(toHex(b));
        if (p) hit.add(p);
      }
      for (const p of hit) attachProblem(p, manifest, fpath);
    }
    for (let i = listing.dirs.length - 1; i >= 0; i--) { // reversed: popped in tree order
      const d = listing.dirs[i]!;
      stack.push({ id: d.id, prefix: prefix === "" ? d.name : `${prefix}/${d.name}` });
    }
  }
}
