/**
 * State shared by the backup of every part, and the helpers the archiver
 * stores trees, reads parent trees and reports problems with.
 *
 * @module
 */
import type { Repository } from "../repository.ts";
import type { PackWriter } from "../pack_writer.ts";
import type { EventSink } from "./events.ts";
import type { EnginePool } from "../worker_jobs.ts";
import { encodeBlock } from "../../formats/codec.ts";
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

/** Encodes and stores a tree unless the repository has it; returns its id. */
export async function storeTree(ctx: BackupContext, nodes: TreeNode[]): Promise<Uint8Array> {
  const bytes = encodeTree(nodes);
  const id = ctx.repo.blockId(bytes);
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
