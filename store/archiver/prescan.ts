/**
 * Listing and stat'ing a tree ahead of the archiver while something else
 * holds the backup up: an encrypted repository's key derivation (Argon2id,
 * about 0.2 s on the runtime's thread pool) does not need the main thread,
 * and a walk of a large tree is mostly `readdir` and `lstat` on it. The
 * wrapper returned by {@linkcode prescanTree} answers the archiver's
 * `list` and `stat` calls from what it read ahead (each answer once, then
 * forgotten) and from the tree itself for the rest.
 *
 * The scan runs in slices of a few milliseconds until `until` settles or
 * it holds `maxEntries` answers, whichever is first; it walks in the
 * archiver's order (depth first, a directory's entries as listed). What it
 * read is as the tree was a moment earlier than the archiver would have
 * read it, as with any walk of a live tree: the file bytes are read later
 * either way. A directory whose listing reported a problem is not kept
 * (the archiver lists it again and reports it), nor is an entry whose
 * `stat` threw.
 *
 * @module
 */
import type { EntryName, ListProblem, TreeEntry, TreeSource } from "./tree_source.ts";

/** Answers a scan keeps at most by default (about 300 bytes each). */
export const DEFAULT_PRESCAN_ENTRIES = 100_000;

/** How long one slice of the scan runs before it lets the event loop go on. */
const SLICE_MS = 4;

/** Options of {@linkcode prescanTree}. */
export interface PrescanOptions {
  /** Answers kept at most (default {@linkcode DEFAULT_PRESCAN_ENTRIES}). */
  readonly maxEntries?: number;
}

/** A tree read ahead: the wrapper, and the scan's end with what it found. */
export interface Prescanned<D> {
  readonly tree: TreeSource<D>;
  /** Settles when the scan stops: the answers it holds (taken or not) then. */
  readonly done: Promise<{ readonly lists: number; readonly stats: number }>;
}

/**
 * Starts a scan of `tree` that stops when `until` settles; see the module
 * documentation. Only directories whose handle is a string are kept (the
 * handles of a local tree are paths; a name that is not UTF-8 is left to
 * the archiver).
 */
export function prescanTree<D>(
  tree: TreeSource<D>,
  until: Promise<unknown>,
  options: PrescanOptions = {},
): Prescanned<D> {
  const max = options.maxEntries ?? DEFAULT_PRESCAN_ENTRIES;
  const lists = new Map<string, EntryName[]>();
  const stats = new Map<string, TreeEntry>();
  let stopped = false;
  until.then(() => (stopped = true), () => (stopped = true));
  const keyOf = (dir: D): string | null => (typeof dir === "string" ? dir : null);
  const statKey = (dir: string, name: EntryName) =>
    name.nameBytes ? null : `${dir}\u0000${name.name}`;

  const scan = async () => {
    // Depth first, in listing order: a stack of directories and their next entry.
    const stack: { dir: D; key: string; names: EntryName[]; next: number }[] = [];
    const enter = async (dir: D): Promise<void> => {
      const key = keyOf(dir);
      if (key === null) return;
      let troubled = false;
      const noted: ListProblem = () => (troubled = true);
      let names: EntryName[];
      try {
        const listed = tree.list(dir, noted); // a local tree answers at once: no await then
        names = listed instanceof Promise ? await listed : listed;
      } catch {
        return; // the archiver lists it again and reports why
      }
      if (troubled) return;
      lists.set(key, names);
      stack.push({ dir, key, names, next: 0 });
    };
    await enter(tree.root);
    let sliceEnd = performance.now() + SLICE_MS;
    while (stack.length > 0 && !stopped && lists.size + stats.size < max) {
      if (performance.now() > sliceEnd) {
        await new Promise((r) => setTimeout(r, 0));
        sliceEnd = performance.now() + SLICE_MS;
        continue;
      }
      const frame = stack[stack.length - 1]!;
      const name = frame.names[frame.next++];
      if (name === undefined) {
        stack.pop();
        continue;
      }
      const key = statKey(frame.key, name);
      if (key === null) continue;
      let entry: TreeEntry;
      try {
        const stat = tree.stat(frame.dir, name);
        entry = stat instanceof Promise ? await stat : stat;
      } catch {
        continue; // the archiver stats it again and reports why
      }
      stats.set(key, entry);
      if (entry.type === "dir") await enter(tree.child(frame.dir, entry));
    }
    return { lists: lists.size, stats: stats.size };
  };
  const done = scan();

  const wrapper: TreeSource<D> = {
    location: tree.location,
    root: tree.root,
    list(dir, problem) {
      const key = keyOf(dir);
      const kept = key === null ? undefined : lists.get(key);
      if (kept === undefined) return tree.list(dir, problem);
      lists.delete(key!);
      return kept;
    },
    stat(dir, name) {
      const dirKey = keyOf(dir);
      const key = dirKey === null ? null : statKey(dirKey, name);
      const kept = key === null ? undefined : stats.get(key);
      if (kept === undefined) return tree.stat(dir, name);
      stats.delete(key!);
      return kept;
    },
    child: (dir, entry) => tree.child(dir, entry),
    open: (dir, entry) => tree.open(dir, entry),
    display: (dir, name) => tree.display(dir, name),
  };
  return { tree: wrapper, done };
}
