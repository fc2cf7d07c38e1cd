/**
 * The vacuum operation: retention, then garbage collection, under the
 * exclusive lock.
 *
 * Order (FORMAT.md, "Vacuum"), chosen so a crash at any instant leaves every
 * kept manifest restorable and the next vacuum finishes the job:
 * 1. delete the manifests retention drops (the reverse of a backup's commit);
 * 2. copy the live blocks of sparse packs into new packs;
 * 3. write one new index file listing every surviving pack and the new ones;
 * 4. delete the old index files;
 * 5. delete packs with no live block, the repacked packs, and packs no
 *    index lists (left by interrupted backups);
 * 6. remove stray temporary files.
 *
 * @module
 */
import type { BlobStore } from "./drivers/types.ts";
import { FsStore } from "./drivers/fs.ts";
import { IntegrityError } from "./errors.ts";
import { type ManifestRecord, Repository } from "./repository.ts";
import { listWal, walHandle } from "./wal_archive.ts";
import { planWalExpiry } from "./wal_expiry.ts";
import type { WalRecord } from "../formats/wal.ts";
import { reportStale, RepositoryLock } from "./lock.ts";
import { BlockIndex } from "./block_index.ts";
import { PackWriter } from "./pack_writer.ts";
import { crashPoint } from "./crash_point.ts";
import { walkTree } from "./walker.ts";
import { loadPackTrailer } from "./pack_trailer.ts";
import type { EventSink } from "./backup/events.ts";
import { type CancelOptions, checkpoint, throwIfCancelled } from "./cancel.ts";
import { Cancelled } from "./errors.ts";
import { planRetention, type RetentionDecision, type RetentionRules } from "./retention.ts";
import { type GroupBy, groupOf } from "./source_groups.ts";
import { isHexId, sha256, toHex } from "../formats/hash.ts";
import { encodeIndexFile, type IndexedPack } from "../formats/index_file.ts";
import {
  ENTRY_SIZE,
  PACK_FOOTER_SIZE,
  PACK_HEADER_SIZE,
  type PackEntry,
  parsePack,
} from "../formats/pack.ts";
import { NodeType } from "../formats/tree.ts";

/**
 * Options of {@linkcode vacuum}. A `signal` that aborts stops it with
 * `Cancelled` before it deletes anything, or between two steps of its write
 * order, which keeps every kept backup restorable at any point; the next
 * vacuum finishes the job.
 */
export interface VacuumOptions extends RetentionRules, CancelOptions {
  /** Only plan: change nothing. */
  readonly dryRun?: boolean;
  /** Packs whose live fraction (by bytes) is below this are repacked. */
  readonly repackBelow?: number;
  /** What the retention rules apply within (default "source": each source on its own). */
  readonly groupBy?: GroupBy;
  readonly onEvent?: EventSink;
  /** Clock (tests). */
  readonly now?: () => number;
}

/** Default live fraction under which a pack is repacked (bench/RESULTS.md, "vacuum"). */
export const DEFAULT_REPACK_BELOW = 0.5;

/** What a vacuum will do or did. */
export interface VacuumPlan {
  readonly dryRun: boolean;
  /** What the retention rules applied within. */
  readonly groupBy: GroupBy;
  /** The groups, each with what it holds and what retention does to it. */
  readonly groups: VacuumGroup[];
  readonly manifests: RetentionDecision[];
  readonly deleteManifests: string[];
  /**
   * Archived WAL files no kept base backup needs (`<system id>/<name>`),
   * deleted right after the manifests.
   */
  readonly deleteWal: string[];
  /** Packs with no live block. */
  readonly deletePacks: string[];
  /** Packs whose live blocks are copied into new packs, then deleted. */
  readonly repackPacks: string[];
  /** Packs no index file lists (left by an interrupted backup). */
  readonly unindexedPacks: string[];
  /** Stored bytes copied by repacking. */
  readonly repackBytes: number;
  /** Bytes the packs and manifests shrink by (exact for a clean repository). */
  readonly freeBytes: number;
  readonly packsBefore: number;
  readonly packBytesBefore: number;
}

/** One group of backups retention applied to on its own. */
export interface VacuumGroup {
  /** The group's key (a source key, `host:<name>`, or `repository`). */
  readonly group: string;
  /** What its backups are of (their source descriptions, distinct). */
  readonly sources: string[];
  readonly backups: number;
  readonly deleted: number;
}

/** What a vacuum did. */
export interface VacuumResult extends VacuumPlan {
  readonly newPacks: number;
  readonly indexFile: string | null;
  readonly removedIndexFiles: number;
  readonly temporaryFilesRemoved: number;
  readonly durationMs: number;
}

/**
 * Hex ids of every block (trees included) the kept manifests reach. Every
 * one must be indexed: a block the index does not list (its index file was
 * lost) would make its pack look dead, so the vacuum stops with the fix.
 */
async function markLive(
  repo: Repository,
  kept: ManifestRecord[],
  wal: readonly WalRecord[],
): Promise<Set<string>> {
  const live = new Set<string>();
  const unindexed: string[] = [];
  const need = (id: Uint8Array, what: string): boolean => {
    const hex = toHex(id);
    if (live.has(hex)) return false;
    live.add(hex);
    if (repo.index.lookup(id)) return true;
    unindexed.push(`${hex} (${what})`);
    return false;
  };
  const roots: { id: Uint8Array; what: string }[] = [];
  for (const r of kept) {
    for (const p of r.manifest.parts) roots.push({ id: p.root, what: `backup ${r.name}` });
    for (const l of r.manifest.logSegments) {
      if (l.root.length === 32) roots.push({ id: l.root, what: `backup ${r.name}` });
    }
  }
  // The archived WAL that is kept is live.
  for (const w of wal) {
    for (const id of w.blocks) need(id, `WAL file ${w.systemId}/${w.name}`);
  }
  for (const root of roots) {
    if (!need(root.id, root.what)) continue;
    await walkTree(root.id, root.what, {
      load: (id, what) => repo.loadTree(id, what),
      enter: (n, what) => {
        const path = `${what}/${n.name}`;
        if (n.type === NodeType.file) { for (const b of n.blocks) need(b, path); }
        return n.type === NodeType.dir && n.subtree && need(n.subtree, path) ? path : undefined;
      },
    });
  }
  if (unindexed.length > 0) throw notIndexed(unindexed);
  return live;
}

function notIndexed(blocks: string[]): IntegrityError {
  return new IntegrityError(
    `${blocks.length} block(s) that kept backups need are in no index file (the first: ${
      blocks[0]
    }), so vacuum cannot tell which packs are live and deleted nothing: run bendsave repair index, then vacuum again`,
  );
}

/** Bytes of a pack holding blocks of these stored lengths, packed greedily to `target`. */
function packedSize(lengths: number[], target: number): { packs: number; bytes: number } {
  let packs = 0;
  let bytes = 0;
  let size = PACK_HEADER_SIZE;
  let entries = 0;
  const close = () => {
    if (entries === 0) return;
    packs++;
    bytes += size + entries * ENTRY_SIZE + PACK_FOOTER_SIZE;
    size = PACK_HEADER_SIZE;
    entries = 0;
  };
  for (const l of lengths) {
    size += l;
    entries++;
    if (size >= target) close();
  }
  close();
  return { packs, bytes };
}

/**
 * Applies retention and collects garbage. With `dryRun`, returns the plan
 * and changes nothing (it still takes the exclusive lock briefly, so the
 * plan is consistent).
 */
export async function vacuum(store: BlobStore, options: VacuumOptions = {}): Promise<VacuumResult> {
  const started = Date.now();
  const now = options.now ?? Date.now;
  const emit: EventSink = options.onEvent ?? (() => {});
  throwIfCancelled(options.signal, "vacuum");
  const repo = await Repository.open(store);
  const lock = await RepositoryLock.acquire(store, "exclusive", {
    operation: options.dryRun ? "vacuum --dry-run" : "vacuum",
    onStale: reportStale(emit),
    keepStale: options.dryRun === true,
  });
  try {
    await repo.loadIndex(); // a damaged index file stops the vacuum: repair it first
    const damaged: string[] = [];
    const records = await repo.listManifests((name) => damaged.push(name));
    if (damaged.length > 0) {
      throw new IntegrityError(
        `manifest ${
          damaged[0]
        } is damaged, so vacuum cannot tell which blocks it needs: restore it from another copy or delete it, then run vacuum again`,
      );
    }
    const groupBy = options.groupBy ?? "source";
    const decisions = planRetention(
      records.map((r) => ({
        name: r.name,
        timeMs: r.manifest.timeMs,
        group: groupOf(r.manifest, groupBy),
      })),
      options,
      now(),
    );
    const deleteSet = new Set(decisions.filter((d) => d.delete).map((d) => d.name));
    const kept = records.filter((r) => !deleteSet.has(r.name));
    // A damaged WAL record stops the vacuum here: its blocks cannot be known.
    const wal = planWalExpiry(await listWal(repo), kept);
    const live = await markLive(repo, kept, wal.keep);

    // Classify packs.
    const entriesOf = repo.index.packEntries();
    const present = new Map<string, number>();
    for await (const f of store.list("pack")) present.set(f.name, f.size);
    const threshold = options.repackBelow ?? DEFAULT_REPACK_BELOW;
    const deletePacks: string[] = [];
    const repackPacks: string[] = [];
    const keepPacks = new Set<number>();
    const repackLengths: number[] = [];
    let repackBytes = 0;
    const indexed = new Set<string>();
    for (const p of repo.index.packs()) {
      const hex = toHex(p.id);
      indexed.add(hex);
      if (!present.has(hex)) continue; // missing pack: verify reports it; nothing to delete
      const es = entriesOf.get(p.index) ?? [];
      const isLive = (e: PackEntry) => live.has(toHex(e.id));
      const liveBytes = es.reduce((a, e) => a + (isLive(e) ? e.storedLength : 0), 0);
      const allBytes = es.reduce((a, e) => a + e.storedLength, 0);
      if (liveBytes === 0) deletePacks.push(hex);
      else if (allBytes > 0 && liveBytes / allBytes < threshold) {
        repackPacks.push(hex);
        for (const e of es) {
          if (isLive(e)) {
            repackLengths.push(e.storedLength);
            repackBytes += e.storedLength;
          }
        }
      } else keepPacks.add(p.index);
    }
    const sizeOf = (h: string) => present.get(h) ?? 0;
    const unindexedPacks = [...present.keys()].filter((h) => !indexed.has(h));
    // A pack no index lists is garbage only if every live block it holds has
    // an indexed copy in a pack that is there; otherwise it holds the last copy.
    for (const hex of unindexedPacks) {
      let entries: PackEntry[];
      try {
        entries = await loadPackTrailer(store, hex, sizeOf(hex), repo.crypto);
      } catch {
        continue; // damaged trailer: no block of it can be read through the index either
      }
      const lost = entries.filter((e) => {
        if (!live.has(toHex(e.id))) return false;
        const loc = repo.index.lookup(e.id);
        return !loc || !present.has(toHex(loc.packId));
      });
      if (lost.length > 0) {
        throw notIndexed(lost.map((e) => `${toHex(e.id)} (in pack ${hex})`));
      }
    }
    let manifestBytes = 0;
    for (const r of records) if (deleteSet.has(r.name)) manifestBytes += r.size;
    const newPacks = packedSize(repackLengths, repo.config.packSize);
    const freeBytes = [...deletePacks, ...repackPacks, ...unindexedPacks].reduce((a, h) =>
      a + sizeOf(h), 0) -
      newPacks.bytes + manifestBytes;
    const groups = new Map<string, VacuumGroup>();
    for (const r of records) {
      const key = groupOf(r.manifest, groupBy);
      const g = groups.get(key) ??
        { group: key, sources: [], backups: 0, deleted: 0 };
      const d = r.manifest.source.description;
      groups.set(key, {
        group: key,
        sources: g.sources.includes(d) ? g.sources : [...g.sources, d],
        backups: g.backups + 1,
        deleted: g.deleted + (deleteSet.has(r.name) ? 1 : 0),
      });
    }
    const plan: VacuumPlan = {
      dryRun: options.dryRun === true,
      groupBy,
      groups: [...groups.values()],
      manifests: decisions,
      deleteManifests: [...deleteSet],
      deleteWal: wal.remove.map((w) => `${w.systemId}/${w.name}`),
      deletePacks,
      repackPacks,
      unindexedPacks,
      repackBytes,
      freeBytes,
      packsBefore: present.size,
      packBytesBefore: [...present.values()].reduce((a, b) => a + b, 0),
    };
    const result = (x: Partial<VacuumResult>): VacuumResult => ({
      ...plan,
      newPacks: 0,
      indexFile: null,
      removedIndexFiles: 0,
      temporaryFilesRemoved: 0,
      durationMs: Date.now() - started,
      ...x,
    });
    if (options.dryRun) return result({});

    // Progress: one event per step (backups deleted, packs repacked, packs deleted); the
    // bytes are those of the packs removed.
    const removable = [...deletePacks, ...repackPacks, ...unindexedPacks];
    const steps = plan.deleteManifests.length + repackPacks.length + removable.length;
    const stepBytes = removable.reduce((a, h) => a + sizeOf(h), 0);
    let stepsDone = 0;
    let bytesRemoved = 0;
    const progress = (removedBytes = 0) => {
      stepsDone++;
      bytesRemoved += removedBytes;
      emit({
        type: "progress",
        operation: "vacuum",
        phase: "write",
        files: stepsDone,
        totalFiles: steps,
        bytes: bytesRemoved,
        totalBytes: stepBytes,
        elapsedMs: Date.now() - started,
      });
    };
    // Safe points: each step below may be the last (the write order keeps kept backups whole).
    let deleted = 0;
    let indexWritten = false;
    // Between steps (force) it always looks; between the items of a step at most every 5 ms.
    const stopIfCancelled = async (force = false) => {
      try {
        await checkpoint(options.signal, "vacuum", { force });
      } catch (e) {
        throw new Cancelled((e as Error).message, {
          cause: e,
          committed: deleted > 0
            ? `${deleted} of ${plan.deleteManifests.length} backups ` +
              `were deleted and every kept backup is whole: run vacuum again to finish`
            : stepsDone > 0 || indexWritten
            ? "no backup was deleted and every backup is whole; the garbage collection stopped " +
              "part-way: run vacuum again to finish it"
            : null,
        });
      }
    };
    await stopIfCancelled(true);
    // 1. Manifests, then the WAL no kept backup needs (records only: their
    //    blocks are garbage from here on, like a deleted backup's).
    for (const name of plan.deleteManifests) {
      await stopIfCancelled(true);
      await store.remove({ kind: "manifest", name });
      deleted++;
      progress();
      crashPoint("vacuum-manifest");
    }
    for (const w of wal.remove) await store.remove(walHandle(w.systemId, w.name));
    // 2. Repack live blocks into new packs; `fresh` indexes what survives.
    const fresh = new BlockIndex();
    const survivors: IndexedPack[] = [];
    for (const p of repo.index.packs()) {
      if (!keepPacks.has(p.index)) continue;
      const entries = entriesOf.get(p.index) ?? [];
      const np = fresh.addPack(p.id, p.size);
      for (const e of entries) fresh.add(np, e);
      survivors.push({ packId: p.id, packSize: p.size, entries });
    }
    const writer = new PackWriter(store, fresh, {
      targetSize: repo.config.packSize,
      crypto: repo.crypto,
    });
    for (const hex of repackPacks) {
      await stopIfCancelled(true);
      const bytes = await store.load({ kind: "pack", name: hex });
      const entries = repo.crypto ? await repo.crypto.packEntries(bytes, hex) : parsePack(bytes);
      for (const e of entries) {
        if (!live.has(toHex(e.id))) continue;
        const stored = bytes.subarray(e.offset, e.offset + e.storedLength);
        // Check before copying: a damaged block must not be laundered into a new pack.
        const loc = { ...repo.index.lookup(e.id)!, codec: e.codec, rawLength: e.rawLength };
        const what = `repack of pack ${hex}`;
        repo.decodeStored(e.id, loc, await repo.openStored(e.id, loc, stored, what), what);
        await writer.add(e.id, e.kind, {
          codec: e.codec,
          data: stored.slice(),
          rawLength: e.rawLength,
          sealed: true, // an encrypted repository's block moves as sealed (unchanged otherwise)
        });
      }
      progress();
      crashPoint("vacuum-repack");
    }
    await writer.flush();
    survivors.push(...writer.unindexed);
    // 3. One index file for everything that survives.
    await stopIfCancelled(true);
    const oldIndex: string[] = [];
    for await (const f of store.list("index")) if (isHexId(f.name)) oldIndex.push(f.name);
    let indexFile: string | null = null;
    if (survivors.length > 0) {
      const plain = encodeIndexFile(survivors);
      const bytes = repo.crypto ? await repo.crypto.sealIndexFile(plain) : plain;
      indexFile = toHex(sha256(bytes));
      await store.save({ kind: "index", name: indexFile }, bytes);
      indexWritten = true;
    }
    crashPoint("vacuum-index");
    // 4. Old index files.
    let removedIndexFiles = 0;
    for (const name of oldIndex) {
      if (name === indexFile) continue;
      await store.remove({ kind: "index", name });
      removedIndexFiles++;
    }
    crashPoint("vacuum-old-index");
    await stopIfCancelled(true);
    // 5. Packs.
    // A new pack can have the very name of a pack planned for deletion: an
    // earlier, interrupted vacuum may have written the same blocks in the
    // same order. What the new index lists is never deleted.
    const listed = new Set(survivors.map((p) => toHex(p.packId)));
    for (const hex of removable) {
      await stopIfCancelled();
      if (listed.has(hex)) {
        progress();
        continue;
      }
      await store.remove({ kind: "pack", name: hex });
      progress(sizeOf(hex));
      crashPoint("vacuum-pack");
    }
    // 6. Temporary files.
    const temporaryFilesRemoved = store instanceof FsStore ? await store.cleanTemporaryFiles() : 0;
    return result({
      newPacks: writer.stats.packs,
      indexFile,
      removedIndexFiles,
      temporaryFilesRemoved,
    });
  } finally {
    await lock.release().catch(() => {});
  }
}
