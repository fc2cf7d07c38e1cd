/**
 * What a restore reads, walked rather than collected: the backup and part
 * chosen, and the entries `--include` selects, handed to a visitor one at a
 * time as one walk of the trees (store/walker.ts) finds them, so that what a
 * restore holds does not grow with the number of files. A directory is
 * given when the first entry below it is selected (parents first) and done
 * when its subtree is (deepest first). Hard links among the files are told
 * by {@linkcode HardLinks}, which keeps only files with more than one link.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { InvalidInput } from "../errors.ts";
import type { ManifestRecord, Repository } from "../repository.ts";
import type { ChunkerParams } from "../../formats/chunker.ts";
import { equalBytes } from "../../formats/hash.ts";
import { NodeType, type TreeNode } from "../../formats/tree.ts";
import { includeMatcher } from "./glob.ts";
import { latestBackup, readableManifests } from "../source_groups.ts";
import { walkTree } from "../walker.ts";
import type { PackPresence } from "./pack_presence.ts";
import type { RestoreOptions } from "./restore.ts";

/** One entry restored: its path below the target and its tree node. */
export interface Entry {
  readonly rel: string;
  readonly node: TreeNode;
}

/**
 * A name that is not valid UTF-8: its entry is restored under the
 * placeholder `seg` and renamed to its exact `bytes` when its directory is
 * done.
 */
export interface ExactName {
  readonly seg: string;
  readonly bytes: Uint8Array;
}

/** A directory a restore makes: the target itself (the root) or one below it. */
export interface SelectedDir {
  /** Its path below the target, with placeholders for names not valid UTF-8; "" for the root. */
  readonly rel: string;
  /** Its tree node; null for the root. */
  readonly node: TreeNode | null;
  readonly parent: SelectedDir | null;
  /** The names of its entries that are not valid UTF-8, with their placeholders. */
  readonly exact: ExactName[];
  /**
   * Left to the visitor: a plan sets it when nothing is at this directory's
   * place in the target (or something else, removed), so nothing below exists.
   */
  fresh: boolean;
}

/** What a walk of the selection does with each entry. */
export interface SelectionVisitor {
  /** Directory `d` is restored: called parents first, before any entry below it. */
  dir(d: SelectedDir): void | Promise<void>;
  /** A selected file of directory `d`. */
  file(f: Entry, d: SelectedDir): void | Promise<void>;
  /** A selected symlink of directory `d`. */
  symlink(s: Entry, d: SelectedDir): void | Promise<void>;
  /** Every entry below restored directory `d` was given (deepest first, the root last). */
  done(d: SelectedDir): void | Promise<void>;
}

/** The backup and part a restore reads. */
export interface Part {
  readonly record: ManifestRecord;
  readonly chunker: ChunkerParams;
  /** The root tree of the part. */
  readonly root: Uint8Array;
}

/** What a walk found besides the entries: the tree packs and the trees it could not read. */
export interface Walked {
  /** Packs (by index number) holding the trees of the walk, read or not. */
  readonly treePacks: Set<number>;
  /** Directories whose tree is in a missing pack (see {@linkcode RestorePlan.unlistedDirs}). */
  readonly unlistedDirs: string[];
}

/** The backup and part `options` name (the newest backup and its only tree part by default). */
export async function choosePart(repo: Repository, options: RestoreOptions): Promise<Part> {
  const record = options.manifest ? await repo.loadManifest(options.manifest) : latestBackup(
    await readableManifests(repo, (message) => options.onEvent?.({ type: "warning", message })),
    { source: options.source, location: repo.store.location },
  );
  const trees = record.manifest.parts.filter((p) => p.kind === "tree");
  const part = options.part
    ? record.manifest.parts.find((p) => p.name === options.part)
    : trees.length === 1
    ? trees[0]
    : record.manifest.parts.find((p) => p.name === "files");
  if (!part) {
    throw new InvalidInput(
      `backup ${record.name} has no part ${options.part ?? "files"} (it has ${
        record.manifest.parts.map((p) => p.name).join(", ")
      }): name one with --part`,
    );
  }
  return { record, chunker: part.chunker ?? repo.config.chunker, root: part.root };
}

/** A directory of the walk, with what the walk keeps of it. */
interface Dir extends SelectedDir {
  /** `rel` with the lossy names: what --include matches. */
  readonly shown: string;
  readonly parent: Dir | null;
  /** The placeholders of its entries with names that are not valid UTF-8. */
  readonly segs: Map<TreeNode, string>;
  made: boolean;
}

function dirOf(rel: string, shown: string, node: TreeNode | null, parent: Dir | null): Dir {
  return { rel, shown, node, parent, exact: [], segs: new Map(), made: false, fresh: false };
}

/**
 * Walks the entries of `part` that `include` (globs) selects, handing each
 * to `visitor` as it is found: only the directories on the path from the
 * root to the current one are held. Trees are read through `presence`: one
 * in a missing pack is gone past and listed in `unlistedDirs`.
 */
export async function walkSelection(
  part: Part,
  include: readonly string[],
  presence: PackPresence,
  visitor: SelectionVisitor,
): Promise<Walked> {
  const matches = includeMatcher(include);
  const walked: Walked = { treePacks: new Set(), unlistedDirs: [] };
  const make = async (d: Dir): Promise<void> => {
    if (d.made) return;
    if (d.parent) await make(d.parent);
    d.made = true;
    await visitor.dir(d);
  };
  const root = dirOf("", "", null, null);
  // decodeTree refuses unsafe names ("..", "/", NUL), so every path stays under the target.
  await walkTree<Dir>(part.root, root, {
    load: async (id, d) => {
      const tree = await presence.tree(id, d.rel === "" ? `backup ${part.record.name}` : d.rel);
      walked.treePacks.add(tree.packIndex);
      if (tree.nodes === null) walked.unlistedDirs.push(d.rel);
      for (const n of tree.nodes ?? []) {
        if (!n.nameBytes) continue;
        const seg = `.${randomBytes(6).toString("hex")}.bendsave-name`;
        d.exact.push({ seg, bytes: n.nameBytes });
        d.segs.set(n, seg);
      }
      if (d === root) await make(root);
      return tree.nodes;
    },
    enter: async (node, d) => {
      const seg = d.segs.get(node) ?? node.name;
      const rel = d.rel === "" ? seg : `${d.rel}/${seg}`;
      const shown = d.shown === "" ? node.name : `${d.shown}/${node.name}`;
      if (node.type === NodeType.dir) {
        const inner = dirOf(rel, shown, node, d);
        if (node.subtree?.length) return inner;
        if (matches(shown)) { // an empty directory, selected
          await make(inner);
          await visitor.done(inner);
        }
      } else if (matches(shown)) {
        await make(d);
        if (node.type === NodeType.file) await visitor.file({ rel, node }, d);
        else await visitor.symlink({ rel, node }, d);
      }
      return undefined;
    },
    leave: async (d) => {
      // A directory nothing below was selected in is restored when it is selected itself.
      if (!d.made && matches(d.shown)) await make(d);
      if (d.made) await visitor.done(d);
    },
  });
  return walked;
}

/** A file restored as a hard link of a file the restore writes. */
export interface Link extends Entry {
  /** The written file it is a link of. */
  readonly of: Entry;
}

/**
 * The hard links among the files of a walk (format 1.2): files with `nlink`
 * above 1 and the same device, inode and blocks were one file under several
 * names. The first of them that the restore includes is written; the others
 * become links of it. Only files with more than one link are kept.
 */
export class HardLinks {
  readonly #firsts = new Map<string, Entry[]>();

  /** The written file `f` is a link of, or null when `f` is to be written (and remembered). */
  of(f: Entry): Entry | null {
    const n = f.node;
    if (!n.nlink || n.nlink < 2 || n.inode === 0) return null;
    const key = `${n.device}:${n.inode}`;
    const known = this.#firsts.get(key) ?? [];
    const of = known.find((k) =>
      k.node.size === n.size && k.node.blocks.length === n.blocks.length &&
      k.node.blocks.every((b, i) => equalBytes(b, n.blocks[i]!))
    );
    if (of) return of;
    known.push(f);
    this.#firsts.set(key, known);
    return null;
  }
}

/** `files` sorted by where their first block lives, so packs are read in order. */
export function readOrder(repo: Repository, files: readonly Entry[]): Entry[] {
  return files.map((f) => {
    const loc = f.node.blocks.length ? repo.locate(f.node.blocks[0]!, f.rel) : null;
    return { f, key: loc ? loc.packIndex * 2 ** 32 + loc.offset : -1 };
  }).sort((a, b) => a.key - b.key).map((x) => x.f);
}
