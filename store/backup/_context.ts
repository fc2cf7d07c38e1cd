/**
 * State shared by the backup of every part kind, and the helpers that store
 * a data block or a tree through it.
 *
 * @module
 */
import type { Repository } from "../repository.ts";
import type { PackWriter } from "../pack_writer.ts";
import type { EventSink } from "./events.ts";
import type { EnginePool } from "../worker_jobs.ts";
import { type ChunkerParams, createChunker } from "../../formats/chunker.ts";
import { encodeBlock } from "../../formats/codec.ts";
import { sha256 } from "../../formats/hash.ts";
import type { ManifestStats } from "../../formats/manifest.ts";
import { BlobKind } from "../../formats/pack.ts";
import { encodeTree, nameKey, type TreeNode } from "../../formats/tree.ts";

/** What every part's backup works with. */
export interface BackupContext {
  readonly repo: Repository;
  readonly writer: PackWriter;
  readonly stats: ManifestStats;
  readonly warnings: string[];
  readonly emit: EventSink;
  readonly start: number;
  readonly now: () => number;
  readonly workers: number | undefined;
  /** The backup's worker pool, started on first use (closed when the backup ends). */
  readonly pool: () => Promise<EnginePool>;
  /** When the last scan progress event went out (they are sent at most every 200 ms). */
  lastScanEmit: number;
  /** True for a path (relative to a directory part) that the backup leaves out. */
  readonly exclude: (rel: string) => boolean;
  /** The repository's own directory when it is local: left out of a directory backup. */
  readonly repository: { readonly dev: number; readonly ino: number } | null;
  /** Aborted: stop at the next safe point (BackupOptions.signal). */
  readonly signal?: AbortSignal | undefined;
}

const MAX_WARNINGS_IN_MANIFEST = 1000;

/** Records an entry that could not be backed up: counted, listed in the manifest, reported. */
export function warn(ctx: BackupContext, p: string, message: string): void {
  ctx.stats.errors++;
  if (ctx.warnings.length < MAX_WARNINGS_IN_MANIFEST) ctx.warnings.push(`${p}: ${message}`);
  ctx.emit({ type: "warning", path: p, message });
}

/** Stores one data block unless the repository has it; returns its id. */
export async function storeData(ctx: BackupContext, block: Uint8Array): Promise<Uint8Array> {
  const id = sha256(block);
  if (!ctx.writer.has(id)) {
    const enc = encodeBlock(block, ctx.repo.config.compression);
    await ctx.writer.add(id, BlobKind.data, {
      codec: enc.codec,
      data: enc.data.slice(),
      rawLength: block.length,
    });
  }
  return id;
}

/**
 * Cuts a stream of bytes into blocks with a chunker and stores each new
 * block as it is cut; holds at most one block's bytes beyond what it is given.
 */
export class BlockCutter {
  /** Ids of the blocks cut so far, in order. */
  readonly blocks: Uint8Array[] = [];
  /** Bytes pushed so far. */
  size = 0;
  readonly #ctx: BackupContext;
  readonly #chunker;
  #pending: Uint8Array[] = [];

  constructor(ctx: BackupContext, params: ChunkerParams) {
    this.#ctx = ctx;
    this.#chunker = createChunker(params);
  }

  /** Adds the next bytes (kept by reference until cut: do not reuse the buffer). */
  async push(chunk: Uint8Array): Promise<void> {
    this.#pending.push(chunk);
    this.size += chunk.length;
    for (const len of this.#chunker.push(chunk)) await this.#cut(len);
  }

  /** Cuts the last block; returns every block id. */
  async finish(): Promise<Uint8Array[]> {
    const last = this.#chunker.finish();
    if (last > 0) await this.#cut(last);
    this.#pending = [];
    return this.blocks;
  }

  async #cut(len: number): Promise<void> {
    const head = this.#pending[0]!;
    let block: Uint8Array;
    if (head.length >= len) {
      block = head.subarray(0, len);
      if (len === head.length) this.#pending.shift();
      else this.#pending[0] = head.subarray(len);
    } else {
      // Gather `len` bytes from the front of the pending chunks.
      block = new Uint8Array(len);
      let pos = 0;
      while (pos < len) {
        const h = this.#pending[0]!;
        const take = Math.min(h.length, len - pos);
        block.set(h.subarray(0, take), pos);
        pos += take;
        if (take === h.length) this.#pending.shift();
        else this.#pending[0] = h.subarray(take);
      }
    }
    this.blocks.push(await storeData(this.#ctx, block));
  }
}

/** Encodes and stores a tree unless the repository has it; returns its id. */
export async function storeTree(ctx: BackupContext, nodes: TreeNode[]): Promise<Uint8Array> {
  const bytes = encodeTree(nodes);
  const id = sha256(bytes);
  if (!ctx.writer.has(id)) {
    const enc = encodeBlock(bytes, ctx.repo.config.compression);
    await ctx.writer.add(id, BlobKind.tree, {
      codec: enc.codec,
      data: enc.data,
      rawLength: bytes.length,
    });
  }
  return id;
}

/**
 * Loads a parent tree's nodes by exact name ({@linkcode nameKey}); an
 * unreadable one is reported and treated as empty.
 */
export async function parentNodes(
  ctx: BackupContext,
  id: Uint8Array | null,
  where: string,
): Promise<Map<string, TreeNode>> {
  const old = new Map<string, TreeNode>();
  if (!id) return old;
  try {
    for (const n of await ctx.repo.loadTree(id, `parent tree of ${where}`)) old.set(nameKey(n), n);
  } catch (e) {
    ctx.emit({
      type: "warning",
      path: where,
      message: `parent tree unreadable, reading all files: ${(e as Error).message}`,
    });
  }
  return old;
}
