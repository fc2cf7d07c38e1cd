/**
 * The copy operation: replicates backups from one repository to another,
 * storing only the blocks the destination lacks (local disk to S3, or S3 to
 * a local disk that goes to tape).
 *
 * Manifests are copied byte for byte, so their ids (the SHA-256 of the file)
 * and the `parent_id` pointers of their children stay the same. Blocks are
 * copied as stored (same codec, same raw length: no recompression), each
 * checked against its id before it is copied, so damage is never replicated.
 *
 * Write order per manifest, oldest first (FORMAT.md, "Write order and crash
 * safety"): the packs of the blocks the destination lacks, then one index
 * file listing them, then the manifest with an exclusive create (the commit
 * point). An interrupted copy therefore leaves complete manifests and at
 * worst packs no index lists; a re-run copies only what is still missing,
 * and since packing is deterministic it usually rewrites those very packs
 * under the same names.
 *
 * @module
 */
import type { BlobStore } from "./drivers/types.ts";
import { AlreadyExists, IntegrityError, InvalidInput, RepositoryNotFound } from "./errors.ts";
import {
  type InitOptions,
  type ManifestRecord,
  parseManifestRecord,
  Repository,
} from "./repository.ts";
import { type BlobLocation, BlockIndex } from "./block_index.ts";
import { RepositoryLock, type StaleLock } from "./lock.ts";
import { PackWriter } from "./pack_writer.ts";
import { crashPoint } from "./crash_point.ts";
import { walkTree } from "./walker.ts";
import type { EventSink, OperationEvent, ProgressEvent } from "./backup/events.ts";
import { type CancelOptions, checkpoint, throwIfCancelled } from "./cancel.ts";
import { Cancelled } from "./errors.ts";
import { equalBytes, ID_LENGTH, sha256, toHex } from "../formats/hash.ts";
import { compareManifestNames, isManifestName } from "../formats/manifest.ts";
import { BlobKind } from "../formats/pack.ts";
import { decodeTree, NodeType, type TreeNode } from "../formats/tree.ts";

/**
 * Progress of a copy (the common {@linkcode ProgressEvent}, phase `write`),
 * reported at most every 200 ms and after each manifest: `files` counts the
 * backups done (copied or skipped) of `totalFiles` selected, `bytes` the
 * stored bytes of the blocks copied; `manifest`, `blocks` and
 * `blocksPresent` say which backup, how many blocks were copied and how many
 * the destination already held.
 */
export type CopyProgressEvent = ProgressEvent;

/** An event of a copy: the common vocabulary. */
export type CopyEvent = OperationEvent;

/** Receives the events of a copy. */
export type CopyEventSink = EventSink;

/** Options of {@linkcode copy}. */
export interface CopyOptions extends CancelOptions {
  /**
   * Manifests to copy, as `bendsave list` shows them, with or without
   * `.manifest` (default: all). Their order does not matter: they are
   * copied oldest first.
   */
  readonly manifests?: readonly string[];
  readonly onEvent?: CopyEventSink;
  /**
   * Settings of a destination created by this copy; unset fields take the
   * source's (chunker, compression, pack size). An existing destination is
   * used as it is.
   */
  readonly init?: InitOptions;
  /** Wait up to this long for a conflicting (vacuum) lock at either end (default 0: fail at once). */
  readonly lockWaitMs?: number;
}

/** What happened to one manifest. */
export interface CopiedManifest {
  readonly name: string;
  /** SHA-256 of the manifest file, hex (the same at both ends). */
  readonly id: string;
  /** `skipped`: the destination already held the identical manifest. */
  readonly action: "copied" | "skipped";
  /** Blocks copied for this manifest. */
  readonly blocks: number;
  /** Stored bytes of those blocks. */
  readonly bytes: number;
}

/** What a copy did. */
export interface CopyResult {
  /** True when the destination repository was created by this copy. */
  readonly created: boolean;
  /** Every selected manifest, oldest first. */
  readonly manifests: CopiedManifest[];
  readonly manifestsCopied: number;
  readonly manifestsSkipped: number;
  readonly blocksCopied: number;
  /** Stored (compressed) bytes of the copied blocks. */
  readonly bytesCopied: number;
  /** Blocks the copied manifests need that the destination already held. */
  readonly blocksPresent: number;
  readonly packsWritten: number;
  /** Bytes of the pack files written (blocks plus headers and trailers). */
  readonly packBytes: number;
  readonly indexFiles: number;
  readonly durationMs: number;
}

/** A block waiting to be copied. */
interface Needed {
  readonly id: Uint8Array;
  readonly loc: BlobLocation;
  /** What needs it, for error messages. */
  readonly what: string;
}

/** A selected source manifest. */
interface Selected {
  readonly record: ManifestRecord;
  readonly bytes: Uint8Array;
  skip: boolean;
}

/** Blocks queued before their packs are read (bounds the memory of the queue). */
const BATCH_BLOCKS = 50_000;
/** Ranges of a pack closer than this are read as one. */
const READ_GAP = 1024 * 1024;
/** A coalesced range read stops growing at this size. */
const READ_MAX = 16 * 1024 * 1024;
/** A pack of at most this size is read whole when more than half of it is needed. */
const WHOLE_PACK_MAX = 64 * 1024 * 1024;
const PROGRESS_MS = 200;

/** `name`, `name.manifest` or `<repo>/manifests/name.manifest` as a manifest file name. */
function manifestFileName(name: string): string {
  const base = name.replace(/^.*\//, "");
  const file = base.endsWith(".manifest") ? base : `${base}.manifest`;
  if (!isManifestName(file)) {
    throw new InvalidInput(
      `"${name}" is not a manifest name: use a name as bendsave list shows it, such as 20260101_120000`,
    );
  }
  return file;
}

/** Loads the selected source manifests (verbatim bytes, checked), oldest first. */
async function selectManifests(
  src: Repository,
  wanted: readonly string[] | undefined,
): Promise<Selected[]> {
  const all = await src.manifestNames();
  const names = wanted?.length ? [...new Set(wanted.map(manifestFileName))] : all;
  names.sort(compareManifestNames);
  const out: Selected[] = [];
  for (const name of names) {
    const bytes = await src.loadManifestBytes(name);
    let record: ManifestRecord;
    try {
      record = parseManifestRecord(name, bytes);
    } catch (e) {
      if (!(e instanceof IntegrityError)) throw e;
      throw new IntegrityError(
        `source ${src.store.location}: ${
          e.message.replace(/: [^:]*$/, "")
        }, so nothing was copied: repair it from another copy of the repository, or leave it out by naming the other backups with --manifest`,
        { cause: e },
      );
    }
    out.push({ record, bytes, skip: false });
  }
  return out;
}

function conflict(name: string, location: string, dst: Uint8Array, src: Uint8Array): AlreadyExists {
  return new AlreadyExists(
    `manifest ${name} already exists in ${location} with different content (destination id ${
      toHex(dst)
    }, source id ${
      toHex(src)
    }), so it was not overwritten: copy into another repository, or leave this backup out by naming the other backups with --manifest`,
  );
}

/**
 * Marks the manifests the destination already holds byte for byte as
 * skipped; a manifest of the same name with other bytes stops the copy
 * before anything is written.
 */
async function checkDestination(dst: Repository, selected: Selected[]): Promise<void> {
  const present = new Set(await dst.manifestNames());
  for (const s of selected) {
    if (!present.has(s.record.name)) continue;
    const other = await dst.store.load({ kind: "manifest", name: s.record.name });
    if (!equalBytes(other, s.bytes)) {
      throw conflict(s.record.name, dst.store.location, sha256(other), s.record.id);
    }
    s.skip = true;
  }
}

/** Groups the queued blocks of one pack into reads: the whole pack, or coalesced ranges. */
function planReads(
  list: Needed[],
  packSize: number,
  rangedRead: boolean,
): { offset: number; length: number; items: Needed[] }[] {
  const needed = list.reduce((a, n) => a + n.loc.storedLength, 0);
  if (!rangedRead || (needed > packSize / 2 && packSize <= WHOLE_PACK_MAX)) {
    return [{ offset: 0, length: packSize, items: list }];
  }
  const reads: { offset: number; length: number; items: Needed[] }[] = [];
  let cur: { offset: number; length: number; items: Needed[] } | null = null;
  for (const n of list) {
    const end = n.loc.offset + n.loc.storedLength;
    if (
      cur && n.loc.offset - (cur.offset + cur.length) <= READ_GAP && end - cur.offset <= READ_MAX
    ) {
      cur.length = Math.max(cur.length, end - cur.offset);
      cur.items.push(n);
    } else {
      cur = { offset: n.loc.offset, length: n.loc.storedLength, items: [n] };
      reads.push(cur);
    }
  }
  return reads;
}

/** Names the source in an integrity error, and adds a fix when the message has none. */
function sourceDamage(e: unknown, location: string): unknown {
  if (!(e instanceof IntegrityError)) return e;
  const fix = /: (run|copy|restore) /.test(e.message)
    ? ""
    : `: run bendsave verify --read-data ${location} to see every affected backup, then repair the source or copy the other backups with --manifest`;
  return new IntegrityError(`copy stopped, source ${location}: ${e.message}${fix}`, { cause: e });
}

/** A set of block ids in the compact form of a {@linkcode BlockIndex}. */
class IdSet {
  readonly #index = new BlockIndex();
  readonly #pack = this.#index.addPack(new Uint8Array(ID_LENGTH), 0);

  /** Adds `id`; true when it was not in the set. */
  add(id: Uint8Array): boolean {
    return this.#index.add(this.#pack, {
      id,
      kind: BlobKind.data,
      codec: 0,
      offset: 0,
      storedLength: 0,
      rawLength: 0,
    });
  }
}

/**
 * Copies backups from the repository in `from` to the repository in `to`,
 * storing only the blocks `to` lacks. The destination is created on first
 * use with the source's settings (and a new repository id); an existing
 * destination is used as it is, whatever its chunker, compression or pack
 * size (blocks are named by their content, so they dedupe all the same).
 *
 * Holds a shared lock at both ends (none on a read-only source), so a vacuum
 * cannot run at either end meanwhile. A manifest the destination holds with
 * identical bytes is skipped; one of the same name with other bytes stops
 * the copy with {@linkcode AlreadyExists} before anything is written. A
 * damaged source block stops it with {@linkcode IntegrityError} before the
 * block is copied. An interrupted copy resumes when run again.
 *
 * @example
 * ```ts ignore
 * import { copy } from "./copy.ts";
 * import { openStore } from "./open_store.ts";
 * const from = await openStore("/backups/app");
 * const to = await openStore("/mnt/offsite/app", { create: true });
 * const r = await copy(from, to);
 * console.log(`${r.manifestsCopied} copied, ${r.bytesCopied} bytes`);
 * ```
 */
export async function copy(
  from: BlobStore,
  to: BlobStore,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const started = Date.now();
  const emit: CopyEventSink = options.onEvent ?? (() => {});
  throwIfCancelled(options.signal, "copy");
  const lockOptions = (store: BlobStore) => ({
    operation: "copy",
    waitMs: options.lockWaitMs ?? 0,
    signal: options.signal,
    onWait: (message: string) => emit({ type: "warning", message }),
    onStale: (s: StaleLock) =>
      emit({
        type: "warning",
        message: `removed stale lock ${s.name} in ${store.location}: ${s.reason}`,
      }),
  });
  const src = await Repository.open(from, { keyOptional: true });
  src.refuseEncrypted("copy");
  if (!to.capabilities.writable) {
    throw new InvalidInput(
      `the copy destination ${to.location} is read-only: copy into a writable repository`,
    );
  }
  const srcLock = from.capabilities.writable
    ? await RepositoryLock.acquire(from, "shared", lockOptions(from))
    : null;
  try {
    await src.loadIndex();
    const selected = await selectManifests(src, options.manifests);
    let dst: Repository;
    let created = false;
    try {
      dst = await Repository.open(to, { keyOptional: true });
      dst.refuseEncrypted("copy");
    } catch (e) {
      if (!(e instanceof RepositoryNotFound)) throw e;
      dst = await Repository.init(to, {
        chunker: src.config.chunker,
        compression: src.config.compression,
        packSize: src.config.packSize,
        ...options.init,
      });
      created = true;
    }
    const dstLock = await RepositoryLock.acquire(to, "shared", lockOptions(to));
    try {
      await dst.loadIndex();
      await checkDestination(dst, selected);
      throwIfCancelled(options.signal, "copy");
      const run = new CopyRun(src, dst, emit, started, selected.length, options.signal);
      const manifests = await run.copyAll(selected);
      const s = run.writer.stats;
      return {
        created,
        manifests,
        manifestsCopied: manifests.filter((m) => m.action === "copied").length,
        manifestsSkipped: manifests.filter((m) => m.action === "skipped").length,
        blocksCopied: s.blocks,
        bytesCopied: s.storedBytes,
        blocksPresent: run.blocksPresent,
        packsWritten: s.packs,
        packBytes: s.packBytes,
        indexFiles: run.indexFiles,
        durationMs: Date.now() - started,
      };
    } finally {
      await dstLock.release().catch(() => {});
    }
  } finally {
    await srcLock?.release().catch(() => {});
  }
}

/** The state of one copy between two open, locked repositories. */
class CopyRun {
  readonly #src: Repository;
  readonly #dst: Repository;
  readonly #emit: CopyEventSink;
  readonly #started: number;
  readonly #total: number;
  readonly writer: PackWriter;
  /** Trees walked in this run. */
  readonly #trees = new IdSet();
  /** Blocks (trees and data) copied, queued or found present in this run. */
  readonly #blocks = new IdSet();
  #queue: Needed[] = [];
  #manifest = "";
  #done = 0;
  #lastEmit = 0;
  #packsSeen = 0;
  readonly #signal: AbortSignal | undefined;
  blocksPresent = 0;
  indexFiles = 0;

  constructor(
    src: Repository,
    dst: Repository,
    emit: CopyEventSink,
    started: number,
    total: number,
    signal?: AbortSignal,
  ) {
    this.#signal = signal;
    this.#src = src;
    this.#dst = dst;
    this.#emit = emit;
    this.#started = started;
    this.#total = total;
    this.writer = new PackWriter(dst.store, dst.index, { targetSize: dst.config.packSize });
  }

  /** Copies (or skips) every selected manifest, oldest first. */
  async copyAll(selected: Selected[]): Promise<CopiedManifest[]> {
    const out: CopiedManifest[] = [];
    try {
      for (const s of selected) {
        await checkpoint(this.#signal, "copy", { force: true });
        this.#manifest = s.record.name;
        out.push(s.skip ? this.#skipped(s) : await this.#copyManifest(s));
        this.#done++;
        this.#progress(true);
      }
    } catch (e) {
      // Packs already saved hold checked blocks: index them so a re-run need not copy them again.
      await this.writer.writeIndex().catch(() => {});
      const copied = out.filter((m) => m.action === "copied").length;
      if (e instanceof Cancelled && copied > 0) {
        throw new Cancelled(e.message, {
          cause: e,
          committed:
            `${copied} of ${selected.length} backups were copied; run the copy again for the rest`,
        });
      }
      throw e;
    }
    return out;
  }

  #skipped(s: Selected): CopiedManifest {
    return { name: s.record.name, id: toHex(s.record.id), action: "skipped", blocks: 0, bytes: 0 };
  }

  async #copyManifest(s: Selected): Promise<CopiedManifest> {
    const { name, manifest } = s.record;
    const before = { blocks: this.writer.stats.blocks, bytes: this.writer.stats.storedBytes };
    try {
      for (const part of manifest.parts) {
        const prefix = manifest.parts.length > 1 ? `${part.name}:` : "";
        await this.#walk(part.root, prefix, `backup ${name}`);
      }
      for (const l of manifest.logSegments) {
        if (l.root.length === ID_LENGTH) {
          await this.#walk(l.root, `log ${l.name}:`, `backup ${name}`);
        }
      }
      await this.#drain();
    } catch (e) {
      throw sourceDamage(e, this.#src.store.location);
    }
    // Commit: packs, then the index file, then the manifest.
    await this.writer.flush();
    this.#afterPacks();
    if (await this.writer.writeIndex()) {
      this.indexFiles++;
      crashPoint("copy-index");
    }
    let action: "copied" | "skipped" = "copied";
    try {
      await this.#dst.store.save({ kind: "manifest", name }, s.bytes, { exclusive: true });
    } catch (e) {
      if (!(e instanceof AlreadyExists)) throw e;
      // Another copy saved it a moment ago: fine if it is the same file.
      const other = await this.#dst.store.load({ kind: "manifest", name });
      if (!equalBytes(other, s.bytes)) {
        throw conflict(name, this.#dst.store.location, sha256(other), s.record.id);
      }
      action = "skipped";
    }
    crashPoint("copy-manifest");
    return {
      name,
      id: toHex(s.record.id),
      action,
      blocks: this.writer.stats.blocks - before.blocks,
      bytes: this.writer.stats.storedBytes - before.bytes,
    };
  }

  /** Fires the copy-pack crash point once for each pack saved since the last call. */
  #afterPacks(): void {
    while (this.#packsSeen < this.writer.stats.packs) {
      this.#packsSeen++;
      crashPoint("copy-pack");
    }
  }

  async #add(id: Uint8Array, loc: BlobLocation, data: Uint8Array): Promise<void> {
    await checkpoint(this.#signal, "copy");
    await this.writer.add(id, loc.kind, { codec: loc.codec, data, rawLength: loc.rawLength });
    this.#afterPacks();
    this.#progress(false);
  }

  /**
   * Walks a tree from the source: copies the tree block itself when the
   * destination lacks it, and queues the data blocks it lacks. Every tree is
   * walked even when the destination holds it: a tree there does not prove
   * that its blocks are (a vacuum keeps whole packs, dead trees included).
   */
  async #walk(id: Uint8Array, rel: string, backupName: string): Promise<void> {
    await walkTree(id, rel, {
      load: async (tree, dir) => {
        if (!this.#trees.add(tree)) return null; // walked earlier in this run
        const what = `directory ${dir || "/"} of ${backupName}`;
        const loc = this.#src.locate(tree, what);
        const stored = await this.#src.loadPackRange(
          loc.packId,
          loc.offset,
          loc.storedLength,
          what,
        );
        const raw = this.#src.decodeStored(tree, loc, stored, what);
        let nodes: TreeNode[];
        try {
          nodes = decodeTree(raw);
        } catch (e) {
          throw new IntegrityError(
            `tree ${toHex(tree)} (${what}) is damaged (${(e as Error).message})`,
          );
        }
        if (this.#blocks.add(tree)) {
          if (this.writer.has(tree)) this.blocksPresent++;
          else await this.#add(tree, loc, stored.slice());
        }
        return nodes;
      },
      enter: async (n, dir) => {
        const path = `${dir}${dir && !dir.endsWith(":") ? "/" : ""}${n.name}`;
        if (n.type === NodeType.file) {
          for (const b of n.blocks) {
            if (!this.#blocks.add(b)) continue;
            if (this.writer.has(b)) {
              this.blocksPresent++;
              continue;
            }
            const fileWhat = `file ${path} of ${backupName}`;
            this.#queue.push({ id: b, loc: this.#src.locate(b, fileWhat), what: fileWhat });
            if (this.#queue.length >= BATCH_BLOCKS) await this.#drain();
          }
        }
        return n.type === NodeType.dir && n.subtree?.length === ID_LENGTH ? path : undefined;
      },
    });
  }

  /** Copies the queued blocks, reading the source pack by pack. */
  async #drain(): Promise<void> {
    const queue = this.#queue;
    this.#queue = [];
    const byPack = new Map<number, Needed[]>();
    for (const n of queue) {
      const l = byPack.get(n.loc.packIndex);
      if (l) l.push(n);
      else byPack.set(n.loc.packIndex, [n]);
    }
    // Pack id order, then offset order: deterministic, so a re-run after a crash
    // writes the same packs under the same names.
    const packs = [...byPack].map(([i, list]) => ({ pack: this.#src.index.pack(i), list }))
      .map((p) => ({ ...p, hex: toHex(p.pack.id) }))
      .sort((a, b) => (a.hex < b.hex ? -1 : a.hex > b.hex ? 1 : 0));
    const ranged = this.#src.store.capabilities.rangedRead;
    for (const { pack, list } of packs) {
      list.sort((a, b) => a.loc.offset - b.loc.offset);
      for (const r of planReads(list, pack.size, ranged)) {
        const buf = await this.#src.loadPackRange(pack.id, r.offset, r.length, r.items[0]!.what);
        for (const n of r.items) {
          const start = n.loc.offset - r.offset;
          const stored = buf.subarray(start, start + n.loc.storedLength);
          // Checked before it is copied: damage is never replicated.
          this.#src.decodeStored(n.id, n.loc, stored, n.what);
          await this.#add(n.id, n.loc, stored.slice());
        }
      }
    }
  }

  #progress(force: boolean): void {
    const t = Date.now();
    if (!force && t - this.#lastEmit < PROGRESS_MS) return;
    this.#lastEmit = t;
    this.#emit({
      type: "progress",
      operation: "copy",
      phase: "write",
      files: this.#done,
      totalFiles: this.#total,
      bytes: this.writer.stats.storedBytes,
      totalBytes: 0,
      elapsedMs: t - this.#started,
      manifest: this.#manifest,
      blocks: this.writer.stats.blocks,
      blocksPresent: this.blocksPresent,
    });
  }
}
