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
 * The steps live in store/verify/: index files, manifests, pack files,
 * the tree walk and WAL references, the data read, attribution and the
 * reclaimable count. A read of every pack runs on the worker pool beside
 * the tree walk; its results are applied after it.
 *
 * @module
 */
import type { BlobStore } from "./drivers/types.ts";
import type { EventSink } from "./backup/events.ts";
import { type CancelOptions, throwIfCancelled } from "./cancel.ts";
import { reportStale, withLock } from "./lock.ts";
import { Repository } from "./repository.ts";
import { attributeProblems, spreadPackDamage } from "./verify/attribution.ts";
import { checkIndexFiles } from "./verify/index_files.ts";
import { checkManifests } from "./verify/manifests.ts";
import { BadPacks, checkPackFiles } from "./verify/pack_files.ts";
import { type Problem, Problems } from "./verify/problems.ts";
import { applyDataRead, readData, readScope, ReadTrees } from "./verify/read_data.ts";
import { findReclaimable } from "./verify/reclaimable.ts";
import { References, scanWal, walkBackups } from "./verify/references.ts";
import { type DataSubset, describeSubset } from "./verify/subset.ts";

export type { Problem, ProblemKind } from "./verify/problems.ts";
export { type DataSubset, parseSubset } from "./verify/subset.ts";

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
  const problems = new Problems();
  const { indexed, files: indexFiles } = await checkIndexFiles(store, problems, repo);
  await repo.loadIndex(() => {}); // same files; damaged ones were reported above
  const scan = await checkManifests(repo, store, options.manifests, problems);
  const selection = options.manifests?.length ? options.manifests : null;
  // Pack files are checked before the walk so that a read of every pack can
  // run beside it; their damage is reported after the walk's, as it always was.
  const packFiles = await checkPackFiles(store, indexed, repo.crypto);
  const readsData = options.readData === true || options.subset !== undefined;
  const random = options.random ?? Math.random;
  const stop = new AbortController();
  /** Starts the data read; one beside the walk (`refs` null) hands it the trees it checks. */
  const startRead = (refs: References | null) => {
    const scope = readScope(repo, indexed, packFiles, refs, options.subset, random);
    const trees = refs === null ? new ReadTrees(scope.treePacks) : undefined;
    const read = readData(store, indexed, scope, {
      signal: options.signal,
      stop: stop.signal,
      emit,
      ...(trees ? { trees } : {}),
      ...(repo.crypto ? { masterKey: repo.crypto.key.raw } : {}),
    });
    return { scope, read: settled(read), trees };
  };
  let reading = readsData && selection === null ? startRead(null) : null;

  const refs = new References(repo, problems);
  try {
    await walkBackups(repo, scan.records, refs, problems, {
      signal: options.signal,
      emit,
      trees: reading?.trees,
    });
    if (selection === null) await scanWal(repo, refs, problems);
  } catch (e) {
    if (reading) {
      stop.abort(e);
      await reading.read;
    }
    throw e;
  }
  const badPacks = new BadPacks(problems);
  for (const [hex, message] of packFiles.damaged) badPacks.report(hex, message);
  if (readsData) {
    reading ??= startRead(refs); // a selection reads only the packs it references
    applyDataRead(unwrap(await reading.read), badPacks, refs, problems);
  }
  spreadPackDamage(badPacks, indexed, refs);
  await attributeProblems(repo, scan.records, refs);
  // Not known for a selection, nor when a newer manifest was skipped: its packs look unreferenced.
  const reclaimable = selection === null && scan.newerManifests.length === 0
    ? await findReclaimable(store, repo, packFiles, refs, badPacks)
    : null;

  const read = reading === null ? null : unwrap(await reading.read);
  return {
    repositoryId: repo.config.id,
    time: new Date().toISOString(),
    scope: {
      manifests: scan.wanted,
      readData: !readsData ? "none" : options.subset ? describeSubset(options.subset) : "all",
      packsInScope: reading?.scope.inScope ?? 0,
    },
    checked: {
      manifests: scan.wanted.length,
      trees: refs.trees.size,
      files: refs.files,
      blocks: refs.blockCount,
      indexFiles,
      packs: indexed.size,
      packsRead: read?.checks.length ?? 0,
      bytesRead: read?.checks.reduce((a, c) => a + c.size, 0) ?? 0,
      walFiles: refs.walFiles,
    },
    problems: problems.list,
    vacuumedParents: scan.vacuumedParents,
    newerManifests: scan.newerManifests,
    reclaimable,
    ok: problems.list.length === 0,
  };
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** A promise that never rejects (so one awaited later is never an unhandled rejection). */
function settled<T>(p: Promise<T>): Promise<Settled<T>> {
  return p.then((value) => ({ ok: true, value }), (error) => ({ ok: false, error }));
}

function unwrap<T>(s: Settled<T>): T {
  if (!s.ok) throw s.error;
  return s.value;
}
