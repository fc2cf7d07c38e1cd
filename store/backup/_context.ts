/**
 * State shared by the backup of every part kind, and the helpers that store
 * a data block or a tree through it.
 *
 * @module
 */
import type { Repository } from "../repository.ts";
import type { PackWriter } from "../pack_writer.ts";
import type { EventSink } from "./events.ts";
import { encodeBlock } from "../../formats/codec.ts";
import { sha256 } from "../../formats/hash.ts";
import type { ManifestStats } from "../../formats/manifest.ts";
import { BlobKind } from "../../formats/pack.ts";
import { encodeTree, type TreeNode } from "../../formats/tree.ts";

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
  /** When the last scan progress event went out (they are sent at most every 200 ms). */
  lastScanEmit: number;
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

/** Loads a parent tree's nodes by name; an unreadable one is reported and treated as empty. */
export async function parentNodes(
  ctx: BackupContext,
  id: Uint8Array | null,
  where: string,
): Promise<Map<string, TreeNode>> {
  const old = new Map<string, TreeNode>();
  if (!id) return old;
  try {
    for (const n of await ctx.repo.loadTree(id, `parent tree of ${where}`)) old.set(n.name, n);
  } catch (e) {
    ctx.emit({
      type: "warning",
      path: where,
      message: `parent tree unreadable, reading all files: ${(e as Error).message}`,
    });
  }
  return old;
}
