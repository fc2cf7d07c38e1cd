/**
 * The last step of `verify`: which backups and files each problem affects.
 * The blocks of a damaged pack are damaged blocks; a file is affected by
 * each problem of its blocks, a directory by its tree's.
 *
 * @module
 */
import type { ManifestRecord } from "../repository.ts";
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
export function attributeProblems(records: readonly ManifestRecord[], refs: References): void {
  if (refs.badBlocks.size > 0 || refs.badTrees.size > 0) {
    for (const r of records) {
      for (const part of r.manifest.parts) {
        attributeTree(
          refs,
          toHex(part.root),
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

/**
 * Depth first with a stack of its own, not recursion: a tree thousands of
 * directories deep must not overflow the call stack.
 */
function attributeTree(refs: References, rootHex: string, rootPrefix: string, manifest: string) {
  const seen = new Set<string>();
  const stack: { treeHex: string; prefix: string }[] = [{ treeHex: rootHex, prefix: rootPrefix }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const { treeHex, prefix } = top;
    if (seen.has(treeHex)) continue;
    seen.add(treeHex);
    const tp = refs.badTrees.get(treeHex);
    if (tp) attachProblem(tp, manifest, prefix === "" ? "/" : prefix);
    for (const f of refs.treeFiles.get(treeHex) ?? []) {
      const fpath = prefix === "" ? f.path : `${prefix}/${f.path}`;
      const hit = new Set<Problem>();
      for (const b of f.blocks) {
        const p = refs.badBlocks.get(toHex(b));
        if (p) hit.add(p);
      }
      for (const p of hit) attachProblem(p, manifest, fpath);
    }
    const dirs = refs.subtrees.get(treeHex) ?? [];
    for (let i = dirs.length - 1; i >= 0; i--) { // reversed: popped in tree order
      const d = dirs[i]!;
      stack.push({ treeHex: d.id, prefix: prefix === "" ? d.name : `${prefix}/${d.name}` });
    }
  }
}
