/**
 * What a restore reads, worked out before anything is written: the backup
 * and part chosen, the entries selected by `--include` (one walk of the
 * trees, store/walker.ts), the hard links among the files, the packs read
 * and the order files are read in.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { InvalidInput } from "../errors.ts";
import type { ManifestRecord, Repository } from "../repository.ts";
import type { ChunkerParams } from "../../formats/chunker.ts";
import { equalBytes, toHex } from "../../formats/hash.ts";
import { NodeType, type TreeNode } from "../../formats/tree.ts";
import { includeMatcher } from "./glob.ts";
import { latestBackup, readableManifests } from "../source_groups.ts";
import { walkTree } from "../walker.ts";
import { PackPresence } from "./pack_presence.ts";
import type { RestoreOptions } from "./restore.ts";

/** One entry restored: its path below the target and its tree node. */
export interface Entry {
  readonly rel: string;
  readonly node: TreeNode;
}

/** The entries a restore writes and what it reads them from. */
export interface Collected {
  readonly record: ManifestRecord;
  readonly chunker: ChunkerParams;
  readonly files: Entry[];
  readonly dirs: Entry[];
  readonly symlinks: Entry[];
  /** Packs (by index number) holding the trees of the walk, read or not. */
  readonly treePacks: Set<number>;
  /** Directories whose tree is in a missing pack (see {@linkcode RestorePlan.unlistedDirs}). */
  readonly unlistedDirs: string[];
  /**
   * Names that are not valid UTF-8, by the `rel` of their directory: such an
   * entry is restored under the placeholder `seg` (its `rel` ends in it) and
   * renamed to its exact bytes last ({@linkcode renameExact}).
   */
  readonly exact: Map<string, { seg: string; bytes: Uint8Array }[]>;
}

/**
 * The backup and part `options` name, and the entries of it `--include`
 * selects, in one walk of its trees; a tree in a missing pack is listed in
 * `unlistedDirs` (see {@linkcode PackPresence.tree}).
 */
export async function collect(
  repo: Repository,
  options: RestoreOptions,
  presence: PackPresence,
): Promise<Collected> {
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
  const include = includeMatcher(options.include ?? []);
  // decodeTree refuses unsafe names ("..", "/", NUL), so every path stays under the target.
  const out: Collected = {
    record,
    chunker: part.chunker ?? repo.config.chunker,
    files: [],
    dirs: [],
    symlinks: [],
    treePacks: new Set(),
    unlistedDirs: [],
    exact: new Map(),
  };
  // `shown` is `rel` with the lossy names: what --include matches. `any`
  // says whether anything below was selected; `at` is the directory's place
  // in `out.dirs`, which it leaves when nothing below it was.
  interface Dir {
    readonly rel: string;
    readonly shown: string;
    readonly parent: Dir | null;
    readonly at: number;
    any: boolean;
  }
  const selected = (d: Dir | null) => {
    for (let p = d; p !== null && !p.any; p = p.parent) p.any = true;
  };
  await walkTree<Dir>(part.root, { rel: "", shown: "", parent: null, at: -1, any: false }, {
    load: async (id, d) => {
      const tree = await presence.tree(id, d.rel === "" ? `backup ${record.name}` : d.rel);
      out.treePacks.add(tree.packIndex);
      if (tree.nodes === null) out.unlistedDirs.push(d.rel);
      return tree.nodes;
    },
    enter: (node, d) => {
      const seg = node.nameBytes ? placeholder(out.exact, d.rel, node.nameBytes) : node.name;
      const r = d.rel === "" ? seg : `${d.rel}/${seg}`;
      const s = d.shown === "" ? node.name : `${d.shown}/${node.name}`;
      if (node.type === NodeType.dir) {
        out.dirs.push({ rel: r, node });
        const inner: Dir = { rel: r, shown: s, parent: d, at: out.dirs.length - 1, any: false };
        if (node.subtree?.length) return inner;
        if (include(s)) selected(d);
        else out.dirs.pop(); // an empty directory not selected
      } else if (include(s)) {
        (node.type === NodeType.file ? out.files : out.symlinks).push({ rel: r, node });
        selected(d);
      }
      return undefined;
    },
    leave: (d) => {
      if (d.parent === null) return;
      if (d.any || include(d.shown)) selected(d.parent);
      else out.dirs.splice(d.at, 1); // nothing below was selected: its entries left already
    },
  });
  return out;
}

/** Registers a name that is not valid UTF-8 in directory `dir`; returns its placeholder. */
function placeholder(
  exact: Collected["exact"],
  dir: string,
  bytes: Uint8Array,
): string {
  const seg = `.${randomBytes(6).toString("hex")}.bendsave-name`;
  const list = exact.get(dir) ?? [];
  list.push({ seg, bytes });
  exact.set(dir, list);
  return seg;
}

/**
 * Renames the entries of directory `dir` (relative to `abs`) whose names are
 * not valid UTF-8 from their placeholders to their exact names. Called for
 * each directory, deepest first, before its own metadata is set (a rename
 * changes the directory's mtime). Like every restore write, it replaces a


/** Loads the index and collects what the restore reads. */
export async function loadAndCollect(
  repo: Repository,
  options: RestoreOptions,
): Promise<{ c: Collected; presence: PackPresence }> {
  await repo.loadIndex();
  const presence = new PackPresence(repo);
  return { c: await collect(repo, options, presence), presence };
}

/** A file restored as a hard link of a file the restore writes. */
export interface Link extends Entry {
  /** The written file it is a link of. */
  readonly of: Entry;
}

/**
 * Splits the files into those to write and hard links (format 1.2): files
 * with `nlink` above 1 and the same device, inode and blocks were one file
 * under several names. The first of them that the restore includes is
 * written; the others become links of it.
 */
export function splitHardLinks(files: readonly Entry[]): { write: Entry[]; links: Link[] } {
  const firsts = new Map<string, Entry[]>();
  const write: Entry[] = [];
  const links: Link[] = [];
  for (const f of files) {
    const n = f.node;
    if (!n.nlink || n.nlink < 2 || n.inode === 0) {
      write.push(f);
      continue;
    }
    const key = `${n.device}:${n.inode}`;
    const known = firsts.get(key) ?? [];
    const of = known.find((k) =>
      k.node.size === n.size && k.node.blocks.length === n.blocks.length &&
      k.node.blocks.every((b, i) => equalBytes(b, n.blocks[i]!))
    );
    if (of) {
      links.push({ ...f, of });
    } else {
      known.push(f);
      firsts.set(key, known);
      write.push(f);
    }
  }
  return { write, links };
}

/** The packs a restore reads (for trees and file data), with their sizes, sorted by name. */
export function packsOf(repo: Repository, c: Collected): { id: string; size: number }[] {
  const seen = new Map<number, { id: string; size: number }>();
  for (const p of c.treePacks) {
    const { id, size } = repo.index.pack(p);
    seen.set(p, { id: toHex(id), size });
  }
  for (const f of c.files) {
    for (const b of f.node.blocks) {
      const loc = repo.locate(b, f.rel);
      if (!seen.has(loc.packIndex)) {
        const p = repo.index.pack(loc.packIndex);
        seen.set(loc.packIndex, { id: toHex(p.id), size: p.size });
      }
    }
  }
  return [...seen.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** `files` sorted by where their first block lives, so packs are read in order. */
export function readOrder(repo: Repository, files: readonly Entry[]): Entry[] {
  return files.map((f) => {
    const loc = f.node.blocks.length ? repo.locate(f.node.blocks[0]!, f.rel) : null;
    return { f, key: loc ? loc.packIndex * 2 ** 32 + loc.offset : -1 };
  }).sort((a, b) => a.key - b.key).map((x) => x.f);
}
