/**
 * The verify operation: an integrity audit of a repository.
 *
 * The structural check (always) parses the config and every manifest,
 * checks parent pointers, walks every tree of the selected manifests
 * (reading and hashing each tree), checks that every referenced block is
 * indexed, that every indexed pack exists with its indexed size, and that
 * each pack's trailer agrees with the index. `readData` also reads packs,
 * re-hashes them and every decompressed block. Every problem names what is
 * damaged and which manifests and files it affects.
 *
 * @module
 */
import type { BlobStore } from "./drivers/types.ts";
import { BendsaveError, InvalidInput, UnsupportedFormat } from "./errors.ts";
import { type ManifestRecord, Repository } from "./repository.ts";
import type { EventSink } from "./backup/events.ts";
import { type CancelOptions, checkpoint, throwIfCancelled } from "./cancel.ts";
import { checkPacks } from "./check_packs.ts";
import { reportStale, withLock } from "./lock.ts";
import { equalBytes, isHexId, sha256, toHex } from "../formats/hash.ts";
import { decodeIndexFile } from "../formats/index_file.ts";
import type { PackEntry } from "../formats/pack.ts";
import { loadPackTrailer } from "./pack_trailer.ts";
import { type TreeWalk, walkTree } from "./walker.ts";
import { NodeType } from "../formats/tree.ts";
import { listWal } from "./wal_archive.ts";

/** Which packs `--read-data-subset` selects. */
export type DataSubset = { kind: "slice"; n: number; t: number } | {
  kind: "percent";
  percent: number;
};

/** Options of {@linkcode verify} (a `signal` that aborts stops it between trees and packs). */
export interface VerifyOptions extends CancelOptions {
  /** Manifest names to check (default: all). */
  readonly manifests?: readonly string[];
  /** Read and re-hash pack contents. */
  readonly readData?: boolean;
  /** Read only a subset of the packs (implies reading data). */
  readonly subset?: DataSubset;
  readonly onEvent?: EventSink;
  /** Random source for percentage subsets (tests). */
  readonly random?: () => number;
}

/** What kind of thing is damaged. */
export type ProblemKind = "config" | "manifest" | "index" | "pack" | "tree" | "block" | "wal";

/** One problem found by verify. */
export interface Problem {
  readonly kind: ProblemKind;
  /** Name or hex id of the damaged thing. */
  readonly id: string;
  readonly message: string;
  /** Manifests affected (cannot restore in full). */
  manifests: string[];
  /** Some affected files, as `<manifest>:<path>`. */
  files: string[];
  /** Number of affected files in all. */
  filesTotal: number;
}

/** The audit report. */
export interface VerifyReport {
  readonly repositoryId: string;
  readonly time: string;
  readonly scope: {
    manifests: string[];
    readData: string;
    /** Packs the data read could cover (intact, and used by the selected backups). */
    packsInScope: number;
  };
  readonly checked: {
    manifests: number;
    trees: number;
    files: number;
    blocks: number;
    indexFiles: number;
    packs: number;
    packsRead: number;
    bytesRead: number;
    /** WAL archive records (since format 1.2; only when every manifest is checked). */
    walFiles: number;
  };
  readonly problems: Problem[];
  /** Manifests whose parent is no longer in the repository (not a problem). */
  readonly vacuumedParents: { manifest: string; parent: string }[];
  /** Manifests of a newer major format version: skipped, not checked (not damage). */
  readonly newerManifests: string[];
  /** Packs nothing references (space a vacuum can free; not damage). */
  readonly reclaimable: { packs: number; bytes: number } | null;
  readonly ok: boolean;
  /** An encrypted repository checked without its key: hashes and checksums only. */
  readonly keyless?: boolean;
}

const FILES_PER_PROBLEM = 20;

/** Parses `n/t` or `N%` (throws InvalidInput). */
export function parseSubset(s: string): DataSubset {
  const slice = /^(\d+)\/(\d+)$/.exec(s);
  if (slice) {
    const n = Number(slice[1]);
    const t = Number(slice[2]);
    if (t >= 1 && n >= 1 && n <= t) return { kind: "slice", n, t };
  }
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(s);
  if (pct) {
    const percent = Number(pct[1]);
    if (percent > 0 && percent <= 100) return { kind: "percent", percent };
  }
  throw new InvalidInput(
    `"${s}" is not a subset: use n/t (for example 2/7) or a percentage (for example 10%)`,
  );
}

function inSubset(packHex: string, s: DataSubset, random: () => number): boolean {
  if (s.kind === "percent") return random() * 100 < s.percent;
  return parseInt(packHex.slice(0, 8), 16) % s.t === s.n - 1;
}

/**
 * The packs of `sorted` a subset reads: never none when there are packs, so
 * a subset of a small repository cannot report OK without reading anything
 * (an empty slice or an unlucky draw reads one pack, chosen the same way).
 */
function pickSubset(sorted: string[], s: DataSubset, random: () => number): string[] {
  const picked = sorted.filter((hex) => inSubset(hex, s, random));
  if (picked.length > 0 || sorted.length === 0) return picked;
  const i = s.kind === "slice" ? (s.n - 1) % sorted.length : Math.floor(random() * sorted.length);
  return [sorted[Math.min(i, sorted.length - 1)]!];
}

/**
 * Audits a repository under a shared lock (so a vacuum cannot remove what
 * is being checked). Never throws for damage: damage is reported.
 */
export async function verify(store: BlobStore, options: VerifyOptions = {}): Promise<VerifyReport> {
  const emit: EventSink = options.onEvent ?? (() => {});
  throwIfCancelled(options.signal, "verify");
  // A missing or newer repository fails before any lock is written.
  const repo = await Repository.open(store, { keyOptional: true });
  if (repo.encrypted && !repo.crypto) {
    const { verifyKeyless } = await import("./verify_keyless.ts");
    return await withLock(
      store,
      "shared",
      "verify",
      reportStale(emit),
      () => verifyKeyless(repo, store, options, emit),
    );
  }
  return await withLock(
    store,
    "shared",
    "verify",
    reportStale(emit),
    () => verifyLocked(repo, store, options, emit),
  );
}

async function verifyLocked(
  repo: Repository,
  store: BlobStore,
  options: VerifyOptions,
  emit: EventSink,
): Promise<VerifyReport> {
  const problems: Problem[] = [];
  const add = (kind: ProblemKind, id: string, message: string): Problem => {
    const p: Problem = { kind, id, message, manifests: [], files: [], filesTotal: 0 };
    problems.push(p);
    return p;
  };
  const checked = {
    manifests: 0,
    trees: 0,
    files: 0,
    blocks: 0,
    indexFiles: 0,
    packs: 0,
    packsRead: 0,
    bytesRead: 0,
    walFiles: 0,
  };

  // Index files: each must match its name and parse; keep their pack records.
  const indexed = new Map<string, { size: number; entries: PackEntry[] }>();
  for await (const f of store.list("index")) {
    if (!isHexId(f.name)) continue;
    const bytes = await store.load({ kind: "index", name: f.name });
    checked.indexFiles++;
    if (toHex(sha256(bytes)) !== f.name) {
      add(
        "index",
        f.name,
        `index file ${f.name} does not match its name (damaged): run bendsave repair index`,
      );
      continue;
    }
    try {
      for (const p of decodeIndexFile(await repo.openIndexFile(bytes, f.name))) {
        const hex = toHex(p.packId);
        if (!indexed.has(hex)) indexed.set(hex, { size: p.packSize, entries: [...p.entries] });
      }
    } catch (e) {
      add(
        "index",
        f.name,
        `index file ${f.name} is damaged (${(e as Error).message}): run bendsave repair index`,
      );
    }
  }
  await repo.loadIndex(() => {}); // same files; damaged ones were reported above

  // Manifests.
  const allNames = await repo.manifestNames();
  const wanted = options.manifests?.length ? [...options.manifests] : allNames;
  for (const n of wanted) {
    if (!allNames.includes(n)) {
      throw new InvalidInput(
        `no manifest ${n} in ${store.location}: run bendsave list to see the backups`,
      );
    }
  }
  const records: ManifestRecord[] = [];
  const vacuumedParents: { manifest: string; parent: string }[] = [];
  const newerManifests: string[] = [];
  for (const name of wanted) {
    checked.manifests++;
    let bytes: Uint8Array;
    try {
      bytes = await store.load({ kind: "manifest", name });
      const r = await repo.parseManifest(name, bytes);
      records.push(r);
      const parent = r.manifest.parentName;
      if (parent && !allNames.includes(parent)) vacuumedParents.push({ manifest: name, parent });
    } catch (e) {
      if (!(e instanceof BendsaveError)) throw e;
      if (e instanceof UnsupportedFormat) newerManifests.push(name); // newer, skipped: not damage
      else add("manifest", name, e.message).manifests.push(name);
    }
  }
  // Parent ids must match the parent's bytes when the parent is present.
  for (const r of records) {
    const parent = r.manifest.parentName;
    const parentRec = parent ? records.find((x) => x.name === parent) : undefined;
    if (parentRec && r.manifest.parentId && !equalBytes(parentRec.id, r.manifest.parentId)) {
      add(
        "manifest",
        parent!,
        `manifest ${parent} does not match the id its child ${r.name} recorded (replaced or damaged)`,
      )
        .manifests.push(parent!);
    }
  }

  // Trees: walk every selected manifest, reading (and so hashing) each tree once.
  const badTrees = new Map<string, Problem>();
  const badBlocks = new Map<string, Problem>();
  const seenTrees = new Set<string>();
  const referencedPacks = new Set<number>();
  const referencedBlocks = new Set<string>();
  const treeChildren = new Map<string, { blocks: Uint8Array[]; path: string }[]>();
  const subtrees = new Map<string, { id: string; name: string }[]>();
  /** Counts a block a backup or WAL file needs, once; one the index lacks is damage. */
  const referenceBlock = (b: Uint8Array): void => {
    const bh = toHex(b);
    if (referencedBlocks.has(bh)) return;
    referencedBlocks.add(bh);
    checked.blocks++;
    const bl = repo.index.lookup(b);
    if (!bl) {
      badBlocks.set(
        bh,
        add("block", bh, `block ${bh} is not in the index (its pack or index file is lost)`),
      );
    } else referencedPacks.add(bl.packIndex);
  };
  interface Dir {
    readonly what: string;
    readonly hex: string;
    readonly files: { blocks: Uint8Array[]; path: string }[];
    readonly dirs: { id: string; name: string }[];
  }
  const dirOf = (id: Uint8Array, what: string): Dir => ({
    what,
    hex: toHex(id),
    files: [],
    dirs: [],
  });
  const treeWalk: TreeWalk<Dir> = {
    load: async (id, d) => {
      await checkpoint(options.signal, "verify");
      if (seenTrees.has(d.hex)) return null;
      seenTrees.add(d.hex);
      checked.trees++;
      const loc = repo.index.lookup(id);
      if (!loc) {
        badTrees.set(
          d.hex,
          add(
            "tree",
            d.hex,
            `tree ${d.hex} (${d.what}) is not in the index: run bendsave repair index, then verify again`,
          ),
        );
        return null;
      }
      referencedPacks.add(loc.packIndex);
      try {
        return await repo.loadTree(id, d.what);
      } catch (e) {
        if (!(e instanceof BendsaveError)) throw e;
        badTrees.set(d.hex, add("tree", d.hex, e.message));
        return null;
      }
    },
    enter: (n, d) => {
      if (n.type === NodeType.file) {
        checked.files++;
        d.files.push({ blocks: n.blocks, path: n.name });
        for (const b of n.blocks) referenceBlock(b);
      } else if (n.type === NodeType.dir && n.subtree) {
        d.dirs.push({ id: toHex(n.subtree), name: n.name });
        return dirOf(n.subtree, `${d.what}/${n.name}`);
      }
      return undefined;
    },
    leave: (d, nodes) => {
      if (nodes === null) return;
      treeChildren.set(d.hex, d.files);
      subtrees.set(d.hex, d.dirs);
    },
  };
  const walk = (id: Uint8Array, what: string) => walkTree(id, dirOf(id, what), treeWalk);
  for (const r of records) {
    for (const part of r.manifest.parts) await walk(part.root, `${r.name}:${part.name}`);
    emit({
      type: "progress",
      operation: "verify",
      phase: "scan",
      files: checked.files,
      totalFiles: 0,
      bytes: 0,
      totalBytes: 0,
      elapsedMs: 0,
    });
  }

  // WAL archive (since 1.2): every record's envelope holds and its blocks are
  // indexed; the packs holding them are referenced (never reclaimable).
  const walOfBlock = new Map<string, string[]>();
  if (!options.manifests?.length) {
    const records = await listWal(store, {
      onDamaged: (name, e) => {
        checked.walFiles++;
        add("wal", name, e.message);
      },
    });
    for (const w of records) {
      checked.walFiles++;
      const label = `wal:${w.systemId}/${w.name}`;
      for (const b of w.blocks) {
        const bh = toHex(b);
        walOfBlock.set(bh, [...(walOfBlock.get(bh) ?? []), label]);
        referenceBlock(b);
      }
    }
  }

  // Packs: existence, size, trailer against index.
  const present = new Map<string, number>();
  for await (const f of store.list("pack")) present.set(f.name, f.size);
  const badPacks = new Map<string, Problem>();
  const packProblem = (hex: string, message: string) => {
    if (!badPacks.has(hex)) badPacks.set(hex, add("pack", hex, message));
  };
  for (const [hex, rec] of indexed) {
    checked.packs++;
    const size = present.get(hex);
    if (size === undefined) {
      packProblem(hex, `pack ${hex} is missing: copy it back from another copy of the repository`);
      continue;
    }
    if (size !== rec.size) {
      packProblem(
        hex,
        `pack ${hex} has ${size} bytes, the index says ${rec.size} (truncated or replaced)`,
      );
      continue;
    }
    try {
      const entries = await loadPackTrailer(store, hex, size, repo.crypto);
      if (!sameEntries(entries, rec.entries)) {
        throw new SyntaxError("its trailer disagrees with the index");
      }
    } catch (e) {
      packProblem(
        hex,
        `pack ${hex} is damaged (${(e as Error).message}): restore it from another copy`,
      );
    }
  }

  // Read data.
  const readData = options.readData || options.subset !== undefined;
  let packsInScope = 0;
  const random = options.random ?? Math.random;
  if (readData) {
    const packNumber = new Map<string, number>();
    for (const p of repo.index.packs()) packNumber.set(toHex(p.id), p.index);
    const inScope = [...indexed.keys()].filter((hex) => {
      if (badPacks.has(hex)) return false;
      return !options.manifests?.length || referencedPacks.has(packNumber.get(hex) ?? -1);
    }).sort();
    packsInScope = inScope.length;
    const selected = options.subset ? pickSubset(inScope, options.subset, random) : inScope;
    let done = 0;
    const totalBytes = selected.reduce((a, hex) => a + (indexed.get(hex)?.size ?? 0), 0);
    const readStart = Date.now();
    const loadPack = async (hex: string) => {
      await checkpoint(options.signal, "verify");
      return await store.load({ kind: "pack", name: hex });
    };
    await checkPacks(selected, loadPack, (c, size) => {
      checked.packsRead++;
      checked.bytesRead += size;
      if (!c.nameMatches) {
        packProblem(
          c.name,
          `pack ${c.name} does not match its name (damaged): restore it from another copy`,
        );
      }
      if (c.layoutError !== null) {
        packProblem(c.name, `pack ${c.name} is damaged (${c.layoutError})`);
      }
      for (const b of c.badBlocks) {
        const p = add("block", b.id, `block ${b.id} in pack ${c.name} is damaged (${b.message})`);
        badBlocks.set(b.id, p);
        if (seenTrees.has(b.id)) badTrees.set(b.id, p);
      }
      done++;
      emit({
        type: "progress",
        operation: "verify",
        phase: "read",
        files: done,
        totalFiles: selected.length,
        bytes: checked.bytesRead,
        totalBytes,
        elapsedMs: Date.now() - readStart,
      });
    }, {
      onWarning: (message) => emit({ type: "warning", message }),
      ...(repo.crypto ? { masterKey: repo.crypto.key.raw } : {}),
    });
  }

  // Blocks of bad packs are bad blocks.
  for (const [hex, p] of badPacks) {
    for (const e of indexed.get(hex)?.entries ?? []) {
      const bh = toHex(e.id);
      if (!badBlocks.has(bh)) badBlocks.set(bh, p);
      if (seenTrees.has(bh) && !badTrees.has(bh)) badTrees.set(bh, p);
    }
  }

  // Attribution: which manifests and files each problem affects.
  const attach = (p: Problem, manifest: string, file: string | null) => {
    if (!p.manifests.includes(manifest)) p.manifests.push(manifest);
    if (file !== null) {
      p.filesTotal++;
      if (p.files.length < FILES_PER_PROBLEM) p.files.push(`${manifest}:${file}`);
    }
  };
  // Depth first with a stack of its own, not recursion: a tree thousands of
  // directories deep must not overflow the call stack.
  const attribute = (rootHex: string, rootPrefix: string, manifest: string, seen: Set<string>) => {
    const stack: { treeHex: string; prefix: string }[] = [{ treeHex: rootHex, prefix: rootPrefix }];
    for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
      const { treeHex, prefix } = top;
      if (seen.has(treeHex)) continue;
      seen.add(treeHex);
      const tp = badTrees.get(treeHex);
      if (tp) attach(tp, manifest, prefix === "" ? "/" : prefix);
      for (const f of treeChildren.get(treeHex) ?? []) {
        const fpath = prefix === "" ? f.path : `${prefix}/${f.path}`;
        const hit = new Set<Problem>();
        for (const b of f.blocks) {
          const p = badBlocks.get(toHex(b));
          if (p) hit.add(p);
        }
        for (const p of hit) attach(p, manifest, fpath);
      }
      const dirs = subtrees.get(treeHex) ?? [];
      for (let i = dirs.length - 1; i >= 0; i--) { // reversed: popped in tree order
        const d = dirs[i]!;
        stack.push({ treeHex: d.id, prefix: prefix === "" ? d.name : `${prefix}/${d.name}` });
      }
    }
  };
  if (badBlocks.size > 0 || badTrees.size > 0) {
    for (const r of records) {
      for (const part of r.manifest.parts) {
        attribute(
          toHex(part.root),
          r.manifest.parts.length > 1 ? part.name : "",
          r.name,
          new Set(),
        );
      }
    }
  }

  for (const [bh, labels] of walOfBlock) {
    const p = badBlocks.get(bh);
    if (!p) continue;
    for (const label of labels) {
      p.filesTotal++;
      if (p.files.length < FILES_PER_PROBLEM) p.files.push(label);
    }
  }

  // Reclaimable: packs no selected manifest references (only meaningful for a full check).
  let reclaimable: { packs: number; bytes: number } | null = null;
  // Not known when a newer manifest was skipped: its packs look unreferenced.
  if (!options.manifests?.length && newerManifests.length === 0) {
    reclaimable = { packs: 0, bytes: 0 };
    const indexedByHex = new Map<string, number>();
    for (const p of repo.index.packs()) indexedByHex.set(toHex(p.id), p.index);
    for (const [hex, size] of present) {
      const i = indexedByHex.get(hex);
      if (i !== undefined && referencedPacks.has(i)) continue;
      // A pack no index lists may still hold blocks the backups need (its
      // index file was lost): then it is damage to repair, never reclaimable.
      if (
        i === undefined && await holdsNeededBlocks(store, hex, size, repo, badBlocks, badTrees)
      ) {
        packProblem(
          hex,
          `pack ${hex} holds blocks that backups need but no index file lists it: run bendsave repair index, then verify again`,
        );
        continue;
      }
      reclaimable.packs++;
      reclaimable.bytes += size;
    }
  }

  return {
    repositoryId: repo.config.id,
    time: new Date().toISOString(),
    scope: {
      manifests: wanted,
      readData: !readData
        ? "none"
        : options.subset
        ? options.subset.kind === "slice"
          ? `subset ${options.subset.n}/${options.subset.t}`
          : `subset ${options.subset.percent}%`
        : "all",
      packsInScope,
    },
    checked,
    problems,
    vacuumedParents,
    newerManifests,
    reclaimable,
    ok: problems.length === 0,
  };
}

/**
 * True when the trailer of unindexed pack `hex` lists a block the walk found
 * missing from the index; a pack whose trailer cannot be read counts as
 * holding them (it is not safe to call it reclaimable).
 */
async function holdsNeededBlocks(
  store: BlobStore,
  hex: string,
  size: number,
  repo: Repository,
  ...missing: ReadonlyMap<string, unknown>[]
): Promise<boolean> {
  if (missing.every((m) => m.size === 0)) return false;
  try {
    const entries = await loadPackTrailer(store, hex, size, repo.crypto);
    return entries.some((e) => missing.some((m) => m.has(toHex(e.id))));
  } catch {
    return true;
  }
}

function sameEntries(a: readonly PackEntry[], b: readonly PackEntry[]): boolean {
  if (a.length !== b.length) return false;
  const key = (e: PackEntry) =>
    `${toHex(e.id)}:${e.kind}:${e.codec}:${e.offset}:${e.storedLength}:${e.rawLength}`;
  const sa = a.map(key).sort();
  const sb = b.map(key).sort();
  return sa.every((k, i) => k === sb[i]);
}
