/**
 * The work of one copy between two open, locked repositories
 * ({@linkcode copy} in copy.ts): reading the source's blocks pack by pack,
 * checking each, and writing them verbatim or re-encoded for the
 * destination's key, manifest by manifest in the write order of the copy.
 *
 * @module
 */
import {
  AlreadyExists,
  Cancelled,
  IntegrityError,
  InvalidInput,
  NotFound,
  UnsupportedFormat,
} from "./errors.ts";
import type { ManifestRecord, Repository } from "./repository.ts";
import { type BlobLocation, BlockIndex } from "./block_index.ts";
import { PackWriter } from "./pack_writer.ts";
import { crashPoint } from "./crash_point.ts";
import { walkTree } from "./walker.ts";
import { IdRemap } from "./id_remap.ts";
import type { CopiedManifest, CopyEventSink } from "./copy.ts";
import { checkpoint } from "./cancel.ts";
import { equalBytes, ID_LENGTH, sha256, toHex } from "../formats/hash.ts";
import { encodeBlock } from "../formats/codec.ts";
import { type Manifest, sameBackup } from "../formats/manifest.ts";
import { BlobKind } from "../formats/pack.ts";
import { encodeTree, nameKey, NodeType, type TreeNode } from "../formats/tree.ts";
import {
  ENCRYPTED_FORMAT_MINOR,
  ENCRYPTED_FORMAT_VERSION,
  FORMAT_MINOR,
  FORMAT_VERSION,
} from "../formats/version.ts";

/** A block waiting to be copied. */
interface Needed {
  readonly id: Uint8Array;
  readonly loc: BlobLocation;
  /** What needs it, for error messages. */
  readonly what: string;
}

/** A selected source manifest. */
export interface Selected {
  readonly record: ManifestRecord;
  readonly bytes: Uint8Array;
  skip: boolean;
  /** The id of the destination's manifest when it is skipped. */
  destId: Uint8Array | null;
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
export function conflict(
  name: string,
  location: string,
  dst: Uint8Array,
  src: Uint8Array,
): AlreadyExists {
  return new AlreadyExists(
    `manifest ${name} already exists in ${location} with different content (destination id ${
      toHex(dst)
    }, source id ${
      toHex(src)
    }), so it was not overwritten: copy into another repository, or leave this backup out by naming the other backups with --manifest`,
  );
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

/** The path of entry `name` of directory `dir` in messages (`part:` prefixes kept). */
function childPath(dir: string, name: string): string {
  return `${dir}${dir && !dir.endsWith(":") ? "/" : ""}${name}`;
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

/** A directory of a tree being re-encoded. */
interface ReencodedDir {
  /** The source tree's id. */
  readonly id: Uint8Array;
  /** The directory that holds it (null at a root) and its entry's position there. */
  readonly parent: ReencodedDir | null;
  readonly slot: number;
  readonly path: string;
  /** Its entries, as read; their ids are replaced as the walk goes. */
  nodes: TreeNode[];
  /** Entries entered so far. */
  entered: number;
}

/** A directory of a parent backup whose two copies are walked side by side. */
interface PairedDir {
  /** The source's tree and the destination's. */
  readonly ours: Uint8Array;
  readonly theirs: Uint8Array;
  readonly parent: PairedDir | null;
  /** The destination's entries, in the order of the source's. */
  nodes: readonly TreeNode[];
  entered: number;
  /** False once anything below it did not pair. */
  complete: boolean;
}

/** What of an entry a re-encoding copy keeps: everything but its ids (their count included). */
function entryShape(n: TreeNode): string {
  return JSON.stringify([
    nameKey(n),
    n.type,
    n.mode,
    n.mtimeMs,
    n.size,
    n.linkTarget ?? "",
    n.inode,
    n.device,
    n.uid,
    n.gid,
    n.etag ?? "",
    n.nlink ?? 0,
    n.blocks.length,
    n.subtree?.length ?? 0,
  ]);
}

/** True when two trees have the same entries, in the same order, but for their ids. */
function sameEntries(a: readonly TreeNode[], b: readonly TreeNode[]): boolean {
  return a.length === b.length && a.every((n, i) => entryShape(n) === entryShape(b[i]!));
}

/** The state of one copy between two open, locked repositories. */
export class CopyRun {
  readonly #src: Repository;
  readonly #dst: Repository;
  readonly #reencode: boolean;
  readonly #emit: CopyEventSink;
  readonly #started: number;
  readonly #total: number;
  readonly writer: PackWriter;
  /** Trees walked in this run. */
  readonly #trees = new IdSet();
  /** Blocks (trees and data) copied, queued or found present in this run (source ids). */
  readonly #blocks = new IdSet();
  /** Re-encoding: the destination id of every source block mapped in this run. */
  readonly #remap: IdRemap;
  /** Re-encoding: destination manifest ids by name (null: none that records the same backup). */
  readonly #destIds = new Map<string, Uint8Array | null>();
  /** Re-encoding: the parents whose destination copies were paired in this run. */
  readonly #seeded = new Set<string>();
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
    reencode: boolean,
    run: { emit: CopyEventSink; started: number; total: number; signal: AbortSignal | undefined },
  ) {
    this.#signal = run.signal;
    this.#src = src;
    this.#dst = dst;
    this.#reencode = reencode;
    this.#emit = run.emit;
    this.#started = run.started;
    this.#total = run.total;
    this.#remap = new IdRemap(src.index);
    this.writer = new PackWriter(dst.store, dst.index, {
      targetSize: dst.config.packSize,
      crypto: dst.crypto,
    });
  }

  /** Copies (or skips) every selected manifest, oldest first. */
  async copyAll(selected: Selected[]): Promise<CopiedManifest[]> {
    const out: CopiedManifest[] = [];
    for (const s of selected) if (s.skip) this.#destIds.set(s.record.name, s.destId);
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
    return {
      name: s.record.name,
      id: toHex(s.destId ?? s.record.id),
      sourceId: toHex(s.record.id),
      action: "skipped",
      blocks: 0,
      bytes: 0,
    };
  }

  async #copyManifest(s: Selected): Promise<CopiedManifest> {
    const { name, manifest } = s.record;
    const before = { blocks: this.writer.stats.blocks, bytes: this.writer.stats.storedBytes };
    const backupName = `backup ${name}`;
    const roots = [
      ...manifest.parts.map((p) => ({
        root: p.root,
        prefix: manifest.parts.length > 1 ? `${p.name}:` : "",
      })),
      ...manifest.logSegments.map((l) => ({ root: l.root, prefix: `log ${l.name}:` })),
    ].filter((r) => r.root.length === ID_LENGTH);
    const newRoots: Uint8Array[] = [];
    try {
      if (this.#reencode && manifest.parentName) await this.#seedFromParent(manifest.parentName);
      for (const r of roots) await this.#walk(r.root, r.prefix, backupName);
      await this.#drain();
      if (this.#reencode) {
        for (const r of roots) {
          newRoots.push(await this.#reencodeTree(r.root, r.prefix, backupName));
        }
      }
    } catch (e) {
      throw sourceDamage(e, this.#src.store.location);
    }
    const bytes = this.#reencode ? await this.#reencodeManifest(s, newRoots) : s.bytes;
    // Commit: packs, then the index file, then the manifest.
    await this.writer.flush();
    this.#afterPacks();
    if (await this.writer.writeIndex()) {
      this.indexFiles++;
      crashPoint("copy-index");
    }
    let action: "copied" | "skipped" = "copied";
    let id = sha256(bytes);
    try {
      await this.#dst.store.save({ kind: "manifest", name }, bytes, { exclusive: true });
    } catch (e) {
      if (!(e instanceof AlreadyExists)) throw e;
      // Another copy saved it a moment ago: fine if it is the same backup.
      const other = await this.#dst.store.load({ kind: "manifest", name });
      const same = this.#reencode
        ? sameBackup((await this.#dst.parseManifest(name, other)).manifest, manifest)
        : equalBytes(other, bytes);
      if (!same) throw conflict(name, this.#dst.store.location, sha256(other), s.record.id);
      action = "skipped";
      id = sha256(other);
    }
    this.#destIds.set(name, id);
    crashPoint("copy-manifest");
    return {
      name,
      id: toHex(id),
      sourceId: toHex(s.record.id),
      action,
      blocks: this.writer.stats.blocks - before.blocks,
      bytes: this.writer.stats.storedBytes - before.bytes,
    };
  }

  /**
   * The bytes of the destination's manifest `s` with the re-encoded roots
   * `roots` (in the order of its parts, then its log segments with a root),
   * of the destination's format version, its parent id that of the
   * destination's manifest of the same backup (none when the destination
   * lacks it), sealed under the destination's key when it has one.
   */
  async #reencodeManifest(s: Selected, roots: Uint8Array[]): Promise<Uint8Array> {
    const m = s.record.manifest;
    let next = 0;
    const mapped = (root: Uint8Array) => root.length === ID_LENGTH ? roots[next++]! : root;
    const out: Manifest = {
      ...m,
      formatVersion: this.#dst.encrypted ? ENCRYPTED_FORMAT_VERSION : FORMAT_VERSION,
      formatMinor: this.#dst.encrypted ? ENCRYPTED_FORMAT_MINOR : FORMAT_MINOR,
      parentId: m.parentName ? await this.#destParentId(m.parentName) : null,
      parts: m.parts.map((p) => ({ ...p, root: mapped(p.root) })),
      logSegments: m.logSegments.map((l) => ({ ...l, root: mapped(l.root) })),
    };
    return await this.#dst.encodeManifest(s.record.name, out);
  }

  /**
   * The id of the destination's manifest `name` when it records the same
   * backup as the source's of that name, else null (a parent the copy left
   * out: its child records no parent id, which is valid, FORMAT.md 13.4).
   */
  async #destParentId(name: string): Promise<Uint8Array | null> {
    const known = this.#destIds.get(name);
    if (known !== undefined) return known;
    const pair = await this.#sameAtBothEnds(name);
    this.#destIds.set(name, pair?.theirs.id ?? null);
    return pair?.theirs.id ?? null;
  }

  /** Manifest `name` at both ends when they record the same backup, else null. */
  async #sameAtBothEnds(
    name: string,
  ): Promise<{ ours: ManifestRecord; theirs: ManifestRecord } | null> {
    try {
      const bytes = await this.#dst.store.load({ kind: "manifest", name });
      const theirs = await this.#dst.parseManifest(name, bytes);
      const ours = await this.#src.loadManifest(name);
      return sameBackup(theirs.manifest, ours.manifest) ? { ours, theirs } : null;
    } catch (e) {
      const absentOrUnreadable = e instanceof NotFound || e instanceof InvalidInput ||
        e instanceof IntegrityError || e instanceof UnsupportedFormat;
      if (!absentOrUnreadable) throw e;
      return null;
    }
  }

  /**
   * Re-encoding: learns the destination ids of the blocks of parent backup
   * `name` from the destination's copy of it, when it holds one, by walking
   * the two copies' trees side by side, so that an incremental backup's copy
   * reads only what changed. A pair is taken only where the two trees have
   * the same entries in every field but their ids, and a block only where
   * both ends index it with the same raw length; a tree is mapped only when
   * everything below it paired. Anything else is left unmapped (read and
   * copied as usual), never an error. Once per parent and run.
   */
  async #seedFromParent(name: string): Promise<void> {
    if (this.#seeded.has(name)) return;
    this.#seeded.add(name);
    const pair = await this.#sameAtBothEnds(name);
    if (!pair) return;
    const [ours, theirs] = [pair.ours.manifest, pair.theirs.manifest];
    const roots: [Uint8Array, Uint8Array][] = [];
    for (const [i, p] of ours.parts.entries()) {
      const q = theirs.parts[i];
      if (q && q.name === p.name && q.kind === p.kind) roots.push([p.root, q.root]);
    }
    for (const [i, l] of ours.logSegments.entries()) {
      const q = theirs.logSegments[i];
      if (q && q.name === l.name) roots.push([l.root, q.root]);
    }
    try {
      for (const [a, b] of roots) {
        if (a.length === ID_LENGTH && b.length === ID_LENGTH) await this.#pairTrees(a, b, name);
      }
    } catch (e) {
      if (!(e instanceof IntegrityError)) throw e;
      // A damaged tree at either end: what paired is kept, the rest is copied as usual.
    }
  }

  /** Pairs source tree `ours` with destination tree `theirs` (see {@linkcode #seedFromParent}). */
  async #pairTrees(ours: Uint8Array, theirs: Uint8Array, name: string): Promise<void> {
    if (this.#remap.get(ours)) return;
    const top: PairedDir = { ours, theirs, parent: null, nodes: [], entered: 0, complete: true };
    await walkTree(ours, top, {
      load: async (id, dir) => {
        const what = `a directory of backup ${name}`;
        const mine = (await this.#readTree(id, what)).nodes;
        const other = await this.#dst.loadTree(dir.theirs, what);
        if (!sameEntries(mine, other)) return null;
        dir.nodes = other;
        return mine;
      },
      enter: (n, dir) => {
        const other = dir.nodes[dir.entered++]!;
        if (n.type === NodeType.file) {
          for (const [j, b] of n.blocks.entries()) {
            if (!this.#pairBlock(b, other.blocks[j]!)) dir.complete = false;
          }
          return undefined;
        }
        if (n.type !== NodeType.dir || n.subtree?.length !== ID_LENGTH) return undefined;
        const known = this.#remap.get(n.subtree);
        if (known) {
          if (!equalBytes(known, other.subtree!)) dir.complete = false;
          return undefined;
        }
        return {
          ours: n.subtree,
          theirs: other.subtree!,
          parent: dir,
          nodes: [],
          entered: 0,
          complete: true,
        };
      },
      leave: (dir, nodes) => {
        if (nodes !== null && dir.complete) this.#remap.set(dir.ours, dir.theirs);
        else if (dir.parent) dir.parent.complete = false;
      },
    });
  }

  /** Maps source block `ours` to destination block `theirs` when both are indexed with one raw length. */
  #pairBlock(ours: Uint8Array, theirs: Uint8Array): boolean {
    const a = this.#src.index.lookup(ours);
    const b = this.#dst.index.lookup(theirs);
    if (!a || !b || a.rawLength !== b.rawLength) return false;
    const known = this.#remap.get(ours);
    if (known) return equalBytes(known, theirs);
    this.#remap.set(ours, theirs);
    return true;
  }

  /** Fires the copy-pack crash point once for each pack saved since the last call. */
  #afterPacks(): void {
    while (this.#packsSeen < this.writer.stats.packs) {
      this.#packsSeen++;
      crashPoint("copy-pack");
    }
  }

  async #add(
    id: Uint8Array,
    kind: BlobKind,
    block: { codec: number; data: Uint8Array; rawLength: number; sealed: boolean },
  ): Promise<void> {
    await checkpoint(this.#signal, "copy");
    await this.writer.add(id, kind, block);
    this.#afterPacks();
    this.#progress(false);
  }

  /**
   * Reads tree `id` from the source, checked against its id (opened first
   * in an encrypted source): its stored bytes as read and its entries.
   */
  async #readTree(
    id: Uint8Array,
    what: string,
  ): Promise<{ loc: BlobLocation; stored: Uint8Array; nodes: TreeNode[] }> {
    const loc = this.#src.locate(id, what);
    const stored = await this.#src.loadPackRange(loc.packId, loc.offset, loc.storedLength, what);
    const opened = await this.#src.openStored(id, loc, stored, what);
    const nodes = this.#src.parseTree(id, this.#src.decodeStored(id, loc, opened, what), what);
    return { loc, stored, nodes };
  }

  /**
   * Walks a tree from the source and queues the data blocks to copy.
   * Verbatim, it also copies the tree block itself when the destination
   * lacks it, and queues only the blocks the destination lacks; every tree
   * is walked even when the destination holds it: a tree there does not
   * prove that its blocks are (a vacuum keeps whole packs, dead trees
   * included). Re-encoding, it queues every block not mapped yet in this
   * run (whether the destination holds it is known once it is read).
   */
  async #walk(id: Uint8Array, rel: string, backupName: string): Promise<void> {
    await walkTree(id, rel, {
      load: async (tree, dir) => {
        if (!this.#trees.add(tree)) return null; // walked earlier in this run
        if (this.#reencode && this.#remap.get(tree)) return null; // its whole copy is known
        const { loc, stored, nodes } = await this.#readTree(
          tree,
          `directory ${dir || "/"} of ${backupName}`,
        );
        if (!this.#reencode && this.#blocks.add(tree)) {
          if (this.writer.has(tree)) this.blocksPresent++;
          else {
            await this.#add(tree, loc.kind, {
              codec: loc.codec,
              data: stored.slice(),
              rawLength: loc.rawLength,
              sealed: this.#src.encrypted,
            });
          }
        }
        return nodes;
      },
      enter: async (n, dir) => {
        const path = childPath(dir, n.name);
        if (n.type === NodeType.file) {
          for (const b of n.blocks) {
            if (!this.#blocks.add(b)) continue;
            if (this.#reencode ? this.#remap.get(b) : this.writer.has(b)) {
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

  /**
   * Copies the queued blocks, reading the source pack by pack. Each is
   * opened (in an encrypted source) and checked against its id first.
   * Re-encoding, it is stored under the destination's id of its plaintext
   * with its compressed bytes unchanged (sealed anew in an encrypted
   * destination), unless the destination holds that id already.
   */
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
    // writes the same packs under the same names (when nothing is sealed anew).
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
          const opened = await this.#src.openStored(n.id, n.loc, stored, n.what);
          const raw = this.#src.decodeStored(n.id, n.loc, opened, n.what);
          if (!this.#reencode) {
            await this.#add(n.id, n.loc.kind, {
              codec: n.loc.codec,
              data: stored.slice(),
              rawLength: n.loc.rawLength,
              sealed: this.#src.encrypted,
            });
            continue;
          }
          const id = this.#dst.blockId(raw);
          this.#remap.set(n.id, id);
          if (this.writer.has(id)) {
            this.blocksPresent++;
            continue;
          }
          await this.#add(id, n.loc.kind, {
            codec: n.loc.codec,
            data: opened === stored ? stored.slice() : opened,
            rawLength: n.loc.rawLength,
            sealed: false,
          });
        }
      }
    }
  }

  /**
   * Re-encodes the source tree `root` for the destination, bottom up: each
   * directory's entries with their blocks' and subtrees' destination ids,
   * encoded, compressed with the destination's settings and stored under
   * the destination's id unless it holds it. Every data block must be
   * mapped already (by {@linkcode #drain}). Returns the new root id.
   */
  async #reencodeTree(root: Uint8Array, rel: string, backupName: string): Promise<Uint8Array> {
    const done = this.#remap.get(root);
    if (done) return done;
    let result: Uint8Array | null = null;
    const top: ReencodedDir = {
      id: root,
      parent: null,
      slot: -1,
      path: rel,
      nodes: [],
      entered: 0,
    };
    await walkTree(root, top, {
      load: async (id, dir) => {
        dir.nodes = (await this.#readTree(id, `directory ${dir.path || "/"} of ${backupName}`))
          .nodes;
        return dir.nodes;
      },
      enter: (n, dir) => {
        const slot = dir.entered++;
        if (n.type === NodeType.file) {
          n.blocks = n.blocks.map((b) => this.#mapped(b));
          return undefined;
        }
        if (n.type !== NodeType.dir || n.subtree?.length !== ID_LENGTH) return undefined;
        const known = this.#remap.get(n.subtree);
        if (known) {
          n.subtree = known;
          return undefined;
        }
        // Its new id is set when it is left (the walk reads the old one to descend).
        return {
          id: n.subtree,
          parent: dir,
          slot,
          path: childPath(dir.path, n.name),
          nodes: [],
          entered: 0,
        };
      },
      leave: async (dir) => {
        const id = await this.#storeTree(dir.id, dir.nodes);
        if (dir.parent) dir.parent.nodes[dir.slot]!.subtree = id;
        else result = id;
      },
    });
    return result!;
  }

  /** The destination id of source block `id`, mapped earlier in this run. */
  #mapped(id: Uint8Array): Uint8Array {
    const to = this.#remap.get(id);
    if (!to) throw new Error(`internal error: block ${toHex(id)} was not copied before its tree`);
    return to;
  }

  /** Stores the re-encoded tree of source tree `id` unless the destination holds it; its new id. */
  async #storeTree(id: Uint8Array, nodes: TreeNode[]): Promise<Uint8Array> {
    const raw = encodeTree(nodes);
    const newId = this.#dst.blockId(raw);
    this.#remap.set(id, newId);
    if (this.writer.has(newId)) {
      this.blocksPresent++;
      return newId;
    }
    const e = encodeBlock(raw, this.#dst.config.compression);
    await this.#add(newId, BlobKind.tree, {
      codec: e.codec,
      data: e.data,
      rawLength: raw.length,
      sealed: false,
    });
    return newId;
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
