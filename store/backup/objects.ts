/**
 * Backup of an {@linkcode ObjectsPart}: the objects of a blob store (a
 * Databend cluster's S3 storage) stored as a directory tree. Objects are
 * read a few at a time, in name order, and cut, hashed and compressed in
 * this thread.
 *
 * @module
 */
import type { ObjectsPart, SourceObject } from "../../sources/types.ts";
import type { ChunkerParams } from "../../formats/chunker.ts";
import { NodeType, type TreeNode } from "../../formats/tree.ts";
import { type BackupContext, BlockCutter, parentNodes, storeTree, warn } from "./_context.ts";
import { checkpoint } from "../cancel.ts";

/** Objects read ahead of the one being stored. */
const READ_AHEAD = 4;
/** Objects larger than this are read in ranges of {@linkcode RANGE} bytes. */
const WHOLE_LIMIT = 16 * 1024 * 1024;
const RANGE = 8 * 1024 * 1024;
/** Times a large object that changed while it was read is read again. */
const CHANGED_RETRIES = 1;

interface Dir {
  readonly files: Map<string, SourceObject>;
  readonly dirs: Map<string, Dir>;
}

interface Job {
  readonly object: SourceObject;
  readonly node: TreeNode;
}

function newDir(): Dir {
  return { files: new Map(), dirs: new Map() };
}

/** Files an object under its directories; a name that is also a directory is reported. */
function place(ctx: BackupContext, part: ObjectsPart, root: Dir, o: SourceObject): void {
  const segments = o.name.split("/");
  const leaf = segments.pop()!;
  let dir = root;
  for (const s of segments) {
    if (dir.files.has(s)) {
      const clash = dir.files.get(s)!;
      dir.files.delete(s);
      ctx.stats.files--;
      ctx.stats.bytes -= clash.size;
      warn(
        ctx,
        `${part.location}/${clash.name}`,
        "skipped: other objects use this name as a folder",
      );
    }
    let next = dir.dirs.get(s);
    if (!next) dir.dirs.set(s, next = newDir());
    dir = next;
  }
  if (dir.dirs.has(leaf)) {
    warn(ctx, `${part.location}/${o.name}`, "skipped: other objects use this name as a folder");
    return;
  }
  dir.files.set(leaf, o);
  ctx.stats.files++;
  ctx.stats.bytes += o.size;
}

function unchanged(ctx: BackupContext, prev: TreeNode | undefined, o: SourceObject): boolean {
  if (!prev || prev.type !== NodeType.file || prev.size !== o.size) return false;
  const same = o.etag !== undefined && prev.etag !== undefined
    ? prev.etag === o.etag
    : prev.mtimeMs === o.mtimeMs;
  return same && prev.blocks.every((b) => ctx.writer.has(b));
}

/** Backs up the objects of `part`; returns the root tree id. */
export async function backupObjects(
  ctx: BackupContext,
  part: ObjectsPart,
  parentRoot: Uint8Array | null,
): Promise<Uint8Array> {
  const root = newDir();
  for await (const o of part.list()) place(ctx, part, root, o);

  // Compare with the parent, directory by directory; collect what must be read.
  const jobs: Job[] = [];
  interface Built {
    readonly nodes: TreeNode[];
    readonly subdirs: { node: TreeNode; built: Built }[];
  }
  const compare = async (dir: Dir, parent: Uint8Array | null, rel: string): Promise<Built> => {
    const old = await parentNodes(ctx, parent, `${part.location}/${rel}`);
    const built: Built = { nodes: [], subdirs: [] };
    for (const [name, d] of dir.dirs) {
      const node: TreeNode = dirNode(name);
      const prev = old.get(name);
      ctx.stats.dirs++;
      built.nodes.push(node);
      const sub = await compare(
        d,
        prev?.type === NodeType.dir && prev.subtree ? prev.subtree : null,
        rel === "" ? name : `${rel}/${name}`,
      );
      built.subdirs.push({ node, built: sub });
    }
    for (const [name, o] of dir.files) {
      const node: TreeNode = {
        name,
        type: NodeType.file,
        mode: 0o644,
        mtimeMs: o.mtimeMs,
        size: o.size,
        blocks: [],
        inode: 0,
        device: 0,
        uid: 0,
        gid: 0,
        ...(o.etag !== undefined ? { etag: o.etag } : {}),
      };
      built.nodes.push(node);
      const prev = old.get(name);
      if (unchanged(ctx, prev, o)) {
        node.blocks = prev!.blocks;
        ctx.stats.filesUnchanged++;
        continue;
      }
      if (prev?.type === NodeType.file) ctx.stats.filesChanged++;
      else ctx.stats.filesNew++;
      jobs.push({ object: o, node });
    }
    return built;
  };
  const tree = await compare(root, parentRoot, "");

  // Read what changed, in name order: small objects whole, READ_AHEAD in flight;
  // large ones in ranges (memory stays bounded), checked afterwards for changes.
  const failed = new Set<TreeNode>();
  const chunker = part.chunker ?? ctx.repo.config.chunker;
  const totalBytes = jobs.reduce((a, j) => a + j.object.size, 0);
  const ranged = (j: Job) => part.stat !== undefined && j.object.size > WHOLE_LIMIT;
  const reads: Promise<Uint8Array | Error>[] = [];
  const startRead = (i: number) => {
    const j = jobs[i];
    if (j && !ranged(j)) reads[i] = part.read(j.object.name).catch((e: unknown) => e as Error);
  };
  for (let i = 0; i < READ_AHEAD; i++) startRead(i);
  let bytesDone = 0;
  let lastEmit = 0;
  for (let i = 0; i < jobs.length; i++) {
    await checkpoint(ctx.signal, "backup");
    const j = jobs[i]!;
    let blocks: Uint8Array[] | Error;
    let size = 0;
    if (ranged(j)) {
      const r = await readRanged(ctx, part, j.object, chunker);
      if (r instanceof Error) {
        blocks = r;
      } else {
        ({ blocks, size } = r);
        // Read again after a change: record the version that was read.
        j.node.mtimeMs = r.object.mtimeMs;
        if (r.object.etag !== undefined) j.node.etag = r.object.etag;
      }
    } else {
      const data = await reads[i]!;
      delete reads[i];
      startRead(i + READ_AHEAD);
      if (data instanceof Error) {
        blocks = data;
      } else {
        const cutter = new BlockCutter(ctx, chunker);
        await cutter.push(data);
        blocks = await cutter.finish();
        size = data.length;
      }
    }
    if (blocks instanceof Error) {
      failed.add(j.node);
      ctx.stats.files--;
      ctx.stats.bytes -= j.object.size;
      warn(ctx, `${part.location}/${j.object.name}`, `cannot read: ${blocks.message}`);
      continue;
    }
    j.node.blocks = blocks;
    // The object may have changed since it was listed: record what was read.
    ctx.stats.bytes += size - j.object.size;
    j.node.size = size;
    ctx.stats.bytesRead += size;
    bytesDone += size;
    const t = ctx.now();
    if (t - lastEmit >= 200 || i === jobs.length - 1) {
      lastEmit = t;
      ctx.emit({
        type: "progress",
        operation: "backup",
        phase: "read",
        files: i + 1,
        totalFiles: jobs.length,
        bytes: bytesDone,
        totalBytes,
        elapsedMs: t - ctx.start,
      });
    }
  }

  // Trees bottom-up, in packs of their own (as for directories).
  await ctx.writer.flush();
  const finish = async (b: Built): Promise<Uint8Array> => {
    for (const s of b.subdirs) s.node.subtree = await finish(s.built);
    return await storeTree(ctx, b.nodes.filter((n) => !failed.has(n)));
  };
  return await finish(tree);
}

/**
 * Reads a large object in ranges, one range ahead, cutting blocks as they
 * come; then checks with `stat` that the object did not change meanwhile
 * (size and entity tag, or mtime). A changed object is read again, once;
 * then it is an error (the file is left out and reported).
 */
async function readRanged(
  ctx: BackupContext,
  part: ObjectsPart,
  object: SourceObject,
  chunker: ChunkerParams,
): Promise<{ blocks: Uint8Array[]; size: number; object: SourceObject } | Error> {
  let expect = object;
  for (let attempt = 0;; attempt++) {
    try {
      const cutter = new BlockCutter(ctx, chunker);
      const size = expect.size;
      const range = (offset: number) => {
        const p = part.read(object.name, { offset, length: Math.min(RANGE, size - offset) });
        p.catch(() => {}); // a read still in flight when this attempt fails is not waited for
        return p;
      };
      let next = range(0);
      for (let offset = 0; offset < size; offset += RANGE) {
        const data = await next;
        if (offset + RANGE < size) next = range(offset + RANGE);
        if (data.length !== Math.min(RANGE, size - offset)) {
          throw new Error(`the object is shorter than its listed size ${size}`);
        }
        await cutter.push(data);
      }
      const blocks = await cutter.finish();
      const now = await part.stat!(object.name);
      const same = now.size === size &&
        (expect.etag !== undefined && now.etag !== undefined
          ? now.etag === expect.etag
          : now.mtimeMs === expect.mtimeMs);
      if (same) return { blocks, size, object: expect };
      if (attempt >= CHANGED_RETRIES) {
        return new Error("it changed while it was read (twice); it is left out of this backup");
      }
      expect = now;
    } catch (e) {
      return e as Error;
    }
  }
}

/** A directory node for an object-name prefix (no mode or mtime of its own in a blob store). */
function dirNode(name: string): TreeNode {
  return {
    name,
    type: NodeType.dir,
    mode: 0o755,
    mtimeMs: 0,
    size: 0,
    blocks: [],
    inode: 0,
    device: 0,
    uid: 0,
    gid: 0,
  };
}
