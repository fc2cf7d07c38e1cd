import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { archive, sectionCount } from "./archiver.ts";
import { dirTree } from "./dir_tree.ts";
import type { TreeSource } from "./tree_source.ts";
import { type MemDir, memDir, type MemFile, MemTree } from "./mem_tree.ts";
import type { BackupContext } from "../backup/_context.ts";
import type { OperationEvent } from "../backup/events.ts";
import { backup } from "../backup/backup.ts";
import { MemStore } from "../drivers/mem.ts";
import { PackWriter } from "../pack_writer.ts";
import { Repository } from "../repository.ts";
import { Cancelled, RepositoryNotFound } from "../errors.ts";
import type { ObjectsPart, Source, StreamPart } from "../source.ts";
import { ENGINE_JOBS, type EnginePool } from "../worker_jobs.ts";
import { WorkerPool } from "../worker_pool.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { splitAll } from "../../formats/chunker.ts";
import { sha256, toHex } from "../../formats/hash.ts";
import { emptyStats, type ManifestStats } from "../../formats/manifest.ts";
import { encodeTree, NodeType, type TreeNode } from "../../formats/tree.ts";
import { prng, randomBytes, tempDir, textBytes } from "../../testing/mod.ts";

/** Runs the archiver over `tree` into the repository in `store`, as one backup would. */
async function run<D>(
  store: MemStore,
  tree: TreeSource<D>,
  parentRoot: Uint8Array | null,
  workers = 0,
  sectionBytes?: number,
): Promise<
  { root: Uint8Array; stats: ManifestStats; events: OperationEvent[]; warnings: unknown[] }
> {
  let repo: Repository;
  try {
    repo = await Repository.open(store);
  } catch (e) {
    if (!(e instanceof RepositoryNotFound)) throw e;
    repo = await Repository.init(store, { packSize: 1 << 20 });
  }
  await repo.loadIndex();
  const writer = new PackWriter(store, repo.index, {
    targetSize: repo.config.packSize,
    separateTrees: true,
  });
  const events: OperationEvent[] = [];
  let pool: Promise<EnginePool> | null = null;
  const ctx: BackupContext = {
    repo,
    writer,
    stats: emptyStats(),
    warnings: [],
    emit: (e) => events.push(e),
    start: 0,
    now: () => 0,
    pool: () => pool ??= WorkerPool.start(ENGINE_JOBS, { workers }),
    lastScanEmit: 0,
    exclude: () => false,
    repository: null,
  };
  try {
    const root = await archive(ctx, tree, parentRoot, {
      settings: { chunker: repo.config.chunker, compression: repo.config.compression },
      ...(sectionBytes === undefined ? {} : { sectionBytes }),
    });
    await writer.writeIndex();
    return { root, stats: ctx.stats, events, warnings: ctx.warnings };
  } finally {
    const started = pool as Promise<EnginePool> | null;
    if (started) await (await started).close();
  }
}

async function openRepo(store: MemStore): Promise<Repository> {
  const repo = await Repository.open(store);
  await repo.loadIndex();
  return repo;
}

/** The node at `rel` below tree `root`, found level by level. */
async function nodeAt(repo: Repository, root: Uint8Array, rel: string): Promise<TreeNode> {
  let id = root;
  const segs = rel.split("/");
  for (let i = 0;; i++) {
    const node = (await repo.loadTree(id)).find((n) => n.name === segs[i]);
    assert.ok(node, `${segs.slice(0, i + 1).join("/")} is in the backup`);
    if (i === segs.length - 1) return node;
    assert.ok(node.subtree);
    id = node.subtree;
  }
}

/** The block ids the repository's chunker cuts `data` into. */
function blockIds(repo: Repository, data: Uint8Array): string[] {
  const ids: string[] = [];
  let pos = 0;
  for (const len of splitAll(repo.config.chunker, data)) {
    ids.push(toHex(sha256(data.subarray(pos, pos + len))));
    pos += len;
  }
  return ids;
}

const file = (data: Uint8Array, mtimeMs = 1_000): MemFile => ({ type: "file", data, mtimeMs });

function sampleTree(): MemDir {
  return memDir({
    "a.txt": file(textBytes(30_000, 1)),
    "big.bin": file(randomBytes(3_000_000, 2)),
    empty: file(new Uint8Array(0)),
    docs: memDir({
      "one.md": file(textBytes(5_000, 3)),
      "two.md": file(textBytes(7_000, 4)),
      deeper: memDir({ "three.md": file(textBytes(9_000, 5)) }),
    }),
    "no-files": memDir(),
    link: { type: "symlink", target: "docs/one.md" },
  });
}

for (const workers of [0, 2]) {
  Deno.test(`archive stores every file of a mem tree with the blocks its chunker cuts (workers ${workers})`, async () => {
    const store = new MemStore();
    const root = sampleTree();
    const tree = new MemTree(root);
    const first = await run(store, tree, null, workers);
    assert.deepEqual(tree.reads.sort(), [
      "a.txt",
      "big.bin",
      "docs/deeper/three.md",
      "docs/one.md",
      "docs/two.md",
      "empty",
    ]);
    assert.equal(first.stats.files, 6);
    assert.equal(first.stats.filesNew, 6);
    assert.equal(first.stats.dirs, 3);
    assert.equal(first.stats.symlinks, 1);
    const repo = await openRepo(store);
    for (const rel of ["a.txt", "big.bin", "docs/deeper/three.md", "empty"]) {
      const segs = rel.split("/");
      let d: MemDir = root;
      for (const s of segs.slice(0, -1)) d = d.entries.get(s) as MemDir;
      const data = (d.entries.get(segs.at(-1)!) as MemFile).data;
      const node = await nodeAt(repo, first.root, rel);
      assert.equal(node.size, data.length, rel);
      assert.deepEqual(node.blocks.map(toHex), blockIds(repo, data), rel);
    }
    assert.equal((await nodeAt(repo, first.root, "link")).linkTarget, "docs/one.md");
    assert.deepEqual(
      await repo.loadTree((await nodeAt(repo, first.root, "no-files")).subtree!),
      [],
    );
  });
}

Deno.test("archive reuses the parent's blocks of unchanged files, reads changed and new ones, and drops deleted ones", async () => {
  const store = new MemStore();
  const root = sampleTree();
  const first = await run(store, new MemTree(root), null);

  const again = new MemTree(root);
  const second = await run(store, again, first.root);
  assert.deepEqual(again.reads, [], "nothing read when nothing changed");
  assert.deepEqual(second.root, first.root, "the same tree");
  assert.equal(second.stats.filesUnchanged, 6);

  const docs = root.entries.get("docs") as MemDir;
  // Same size, new mtime: read again. A new file: read. A deleted one: gone.
  docs.entries.set("one.md", file(textBytes(5_000, 33), 2_000));
  docs.entries.set("new.md", file(textBytes(1_000, 6)));
  root.entries.delete("a.txt");
  const changed = new MemTree(root);
  const third = await run(store, changed, second.root);
  assert.deepEqual(changed.reads.sort(), ["docs/new.md", "docs/one.md"]);
  assert.equal(third.stats.filesChanged, 1);
  assert.equal(third.stats.filesNew, 1);
  assert.equal(third.stats.filesUnchanged, 4);
  const repo = await openRepo(store);
  assert.deepEqual(
    (await repo.loadTree(third.root)).map((n) => n.name),
    ["big.bin", "docs", "empty", "link", "no-files"],
  );
  const one = await nodeAt(repo, third.root, "docs/one.md");
  assert.equal(one.mtimeMs, 2_000);
  assert.deepEqual(one.blocks.map(toHex), blockIds(repo, textBytes(5_000, 33)));
  // The unchanged directory keeps its tree id.
  assert.deepEqual(
    (await nodeAt(repo, third.root, "docs/deeper")).subtree,
    (await nodeAt(repo, first.root, "docs/deeper")).subtree,
  );
});

Deno.test("archive walks a tree of directories 10,000 levels deep, and again against its parent", async () => {
  const depth = 10_000;
  const top = memDir();
  let d = top;
  for (let i = 0; i < depth; i++) {
    const next = memDir();
    d.entries.set("d", next);
    d = next;
  }
  const data = textBytes(2_000, 7);
  d.entries.set("bottom.txt", file(data));
  const store = new MemStore();
  const first = await run(store, new MemTree(top), null);
  assert.equal(first.stats.dirs, depth);
  const repo = await openRepo(store);
  let id = first.root;
  for (let i = 0; i < depth; i++) {
    const nodes = await repo.loadTree(id);
    assert.equal(nodes.length, 1);
    id = nodes[0]!.subtree!;
  }
  const bottom = await repo.loadTree(id);
  assert.equal(bottom[0]!.name, "bottom.txt");
  assert.deepEqual(bottom[0]!.blocks.map(toHex), blockIds(repo, data));
  const again = new MemTree(top);
  const second = await run(store, again, first.root);
  assert.deepEqual(again.reads, []);
  assert.deepEqual(second.root, first.root);
});

/** A source with one objects part holding `objects` (name -> bytes), read whole. */
function objectsSource(objects: Map<string, Uint8Array>, reads: string[]): Source {
  const part: ObjectsPart = {
    name: "storage",
    kind: "objects",
    location: "mem://deep",
    async *list() {
      for (const [name, data] of objects) yield { name, size: data.length, mtimeMs: 5 };
    },
    read(name) {
      reads.push(name);
      return Promise.resolve(objects.get(name)!.slice());
    },
  };
  return {
    info: { type: "t", key: "t:deep", description: "deep objects", settings: {} },
    parts: () => Promise.resolve([part]),
  };
}

Deno.test("backup of an object 10,000 folders deep stores every level, and reads nothing again", async () => {
  const name = "p/".repeat(10_000) + "leaf.bin";
  const data = randomBytes(10_000, 9);
  const reads: string[] = [];
  const store = new MemStore();
  const source = objectsSource(new Map([[name, data], ["top.bin", data]]), reads);
  const r = await backup(store, source, { workers: 0 });
  assert.equal(r.manifest.parts[0]!.stats.dirs, 10_000);
  const repo = await openRepo(store);
  const leaf = await nodeAt(repo, r.manifest.parts[0]!.root, name);
  assert.deepEqual(leaf.blocks.map(toHex), blockIds(repo, data));
  assert.deepEqual(reads.sort(), [name, "top.bin"]);
  reads.length = 0;
  const again = await backup(store, source, { workers: 0 });
  assert.deepEqual(reads, []);
  assert.deepEqual(again.manifest.parts[0]!.root, r.manifest.parts[0]!.root);
});

/** The tree of directory `dir` as the format defines it, built from lstat and the chunker. */
function expectedTree(repo: Repository, dir: string): { id: Uint8Array; trees: number } {
  let trees = 1;
  const nodes: TreeNode[] = [];
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = fs.lstatSync(p);
    const common = {
      name,
      mode: st.mode & 0o7777,
      mtimeMs: st.mtimeMs,
      inode: st.ino,
      device: st.dev,
      uid: st.uid,
      gid: st.gid,
      size: 0,
      blocks: [] as Uint8Array[],
    };
    if (st.isFile()) {
      const data = new Uint8Array(fs.readFileSync(p));
      const ids: Uint8Array[] = [];
      let pos = 0;
      for (const len of splitAll({ kind: "fastcdc", min: 4096, avg: 16384, max: 65536 }, data)) {
        ids.push(sha256(data.subarray(pos, pos + len)));
        pos += len;
      }
      nodes.push({
        ...common,
        type: NodeType.file,
        size: st.size,
        blocks: ids,
        ...(st.nlink > 1 ? { nlink: st.nlink } : {}),
      });
    } else if (st.isDirectory()) {
      const sub = expectedTree(repo, p);
      trees += sub.trees;
      nodes.push({ ...common, type: NodeType.dir, subtree: sub.id });
    } else if (st.isSymbolicLink()) {
      nodes.push({ ...common, type: NodeType.symlink, linkTarget: fs.readlinkSync(p) });
    }
  }
  return { id: sha256(encodeTree(nodes)), trees };
}

Deno.test("backup of a local directory stores the trees the format defines, built from lstat", async () => {
  await using t = await tempDir();
  const src = path.join(t.dir, "src");
  fs.mkdirSync(path.join(src, "a/b/c"), { recursive: true });
  fs.mkdirSync(path.join(src, "empty"));
  fs.writeFileSync(path.join(src, "top.txt"), textBytes(100_000, 1));
  fs.writeFileSync(path.join(src, "a/b/c/deep.bin"), randomBytes(200_000, 2));
  fs.writeFileSync(path.join(src, "a/zero"), "");
  fs.linkSync(path.join(src, "top.txt"), path.join(src, "a/hard.txt"));
  fs.symlinkSync("../top.txt", path.join(src, "a/link"));
  fs.utimesSync(path.join(src, "a"), 1_600_000_000, 1_600_000_000.5);
  const store = new MemStore();
  const chunker = { kind: "fastcdc", min: 4096, avg: 16384, max: 65536 } as const;
  const r = await backup(store, dirSource(src, { chunker }), { workers: 2 });
  const repo = await openRepo(store);
  const want = expectedTree(repo, src);
  assert.equal(toHex(r.manifest.parts[0]!.root), toHex(want.id));
});

// A fixed input (the one of the measurements of issue 14) and the root tree ids that the backup
// code before the archiver (store/backup/objects.ts and backupStream, commit f0dee18) stored for
// it: the archiver must store the same trees.
function fixedBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const next = prng(seed);
  for (let i = 0; i < n; i++) {
    const x = next(); // one step per byte, whichever half of the 4 KiB page it fills
    out[i] = (i % 4096) < 2048 ? x & 0xff : (i >> 12) & 0xff;
  }
  return out;
}

function fixedSource(): Source {
  const objs = new Map<string, { data: Uint8Array; mtimeMs: number; etag?: string }>();
  for (let i = 0; i < 40; i++) {
    objs.set(`${i % 3}/${10 + (i % 5)}/_b/${i.toString(16).padStart(8, "0")}.parquet`, {
      data: fixedBytes(50_000 + i * 3000, i + 1),
      mtimeMs: 1_700_000_000_000 + i,
      ...(i % 2 ? { etag: `"e${i}"` } : {}),
    });
  }
  // Larger than 16 MiB: read in ranges.
  objs.set("big/large.bin", {
    data: fixedBytes(40 * 1024 * 1024 + 12345, 99),
    mtimeMs: 1_700_000_000_000,
  });
  objs.set("top", { data: new Uint8Array(0), mtimeMs: 5 });
  const entry = (name: string) => {
    const o = objs.get(name)!;
    return { name, size: o.data.length, mtimeMs: o.mtimeMs, ...(o.etag ? { etag: o.etag } : {}) };
  };
  const meta: StreamPart = {
    name: "meta",
    kind: "stream",
    fileName: "meta.jsonl",
    open: () =>
      Promise.resolve((async function* () {
        for (let i = 0; i < 30; i++) yield fixedBytes(100_000 + i, 500 + i);
      })()),
  };
  const storage: ObjectsPart = {
    name: "storage",
    kind: "objects",
    location: "mem://ids",
    async *list() {
      for (const name of objs.keys()) yield entry(name);
    },
    read: (name, range) => {
      const d = objs.get(name)!.data;
      return Promise.resolve(
        range ? d.slice(range.offset, range.offset + range.length) : d.slice(),
      );
    },
    stat: (name) => Promise.resolve(entry(name)),
  };
  return {
    info: { type: "t", key: "t:ids", description: "ids", settings: {} },
    parts: () => Promise.resolve([meta, storage]),
  };
}

for (const workers of [0, 2]) {
  Deno.test(`backup stores a stream and objects as the trees the code before the archiver did (workers ${workers})`, async () => {
    const store = new MemStore();
    const r = await backup(store, fixedSource(), { now: () => 1_700_000_000_000, workers });
    const roots = Object.fromEntries(r.manifest.parts.map((p) => [p.name, toHex(p.root)]));
    assert.deepEqual(roots, {
      meta: "d38d806b81f95fb38789d7b6c50a81cfee2d9a1b54f300723b82dc002df6bcda",
      storage: "557ac73e56146de0e5f7990f0e5a85ea40e337a048dfc2374411378e899ff07c",
    });
    const again = await backup(store, fixedSource(), { now: () => 1_700_000_000_000, workers });
    const storage = again.manifest.parts.find((p) => p.name === "storage")!;
    assert.equal(toHex(storage.root), roots["storage"]);
    assert.equal(storage.stats.filesUnchanged, 42);
    assert.equal(storage.stats.bytesRead, 0);
  });
}

for (const at of ["meta", "storage"]) {
  Deno.test(`backup aborted while the archiver reads the ${at} part stops with Cancelled and leaves no manifest or lock`, async () => {
    const store = new MemStore();
    const c = new AbortController();
    let parts = 0;
    await assert.rejects(
      backup(store, fixedSource(), {
        workers: 2,
        signal: c.signal,
        onEvent: (e) => {
          // A read progress event comes once per part at least (its first file done).
          if (e.type === "progress" && e.phase === "read" && ++parts === (at === "meta" ? 1 : 2)) {
            c.abort();
          }
        },
      }),
      (e: unknown) => e instanceof Cancelled,
    );
    for (const kind of ["manifest", "lock"] as const) {
      const names: string[] = [];
      for await (const f of store.list(kind)) names.push(f.name);
      assert.deepEqual(names, [], `no ${kind}`);
    }
  });
}

for (const workers of [0, 2]) {
  Deno.test(`archive reads large local files cut by a fixed chunker in sections, into the blocks of one pass (workers ${workers})`, async () => {
    await using t = await tempDir();
    const section = 65_536;
    const files: Record<string, Uint8Array> = {
      "four-sections": randomBytes(3 * section + 100, 1),
      "two-exactly": textBytes(2 * section, 2),
      "one-exactly": randomBytes(section, 3),
      "one-and-a-byte": randomBytes(section + 1, 4),
      small: textBytes(5_000, 5),
    };
    for (const [name, data] of Object.entries(files)) {
      fs.writeFileSync(path.join(t.dir, name), data);
    }
    const store = new MemStore();
    await Repository.init(store, { packSize: 1 << 20, chunker: { kind: "fixed", size: 4096 } });
    const r = await run(store, dirTree(t.dir), null, workers, section);
    const repo = await openRepo(store);
    let total = 0;
    for (const [name, data] of Object.entries(files)) {
      const node = await nodeAt(repo, r.root, name);
      assert.equal(node.size, data.length, name);
      assert.deepEqual(node.blocks.map(toHex), blockIds(repo, data), name);
      total += data.length;
    }
    assert.equal(r.stats.files, 5);
    assert.equal(r.stats.bytesRead, total);
    assert.equal(r.stats.bytes, total);
    assert.deepEqual(r.warnings, []);
  });
}

Deno.test("sectionCount splits only files cut by a fixed chunker whose block size divides the section", () => {
  assert.equal(sectionCount({ kind: "fixed", size: 4096 }, 3 * 65_536 + 1, 65_536), 4);
  assert.equal(sectionCount({ kind: "fixed", size: 4096 }, 65_536, 65_536), 1);
  assert.equal(sectionCount({ kind: "fixed", size: 4096 }, 0, 65_536), 1);
  assert.equal(sectionCount({ kind: "fixed", size: 3000 }, 10 * 65_536, 65_536), 1);
  assert.equal(
    sectionCount({ kind: "fastcdc", min: 1024, avg: 4096, max: 16_384 }, 10 * 65_536, 65_536),
    1,
  );
});

Deno.test("archive leaves a large file out once when its sections cannot be read, and keeps the others", async () => {
  await using t = await tempDir();
  const section = 65_536;
  fs.writeFileSync(path.join(t.dir, "gone"), randomBytes(3 * section, 1));
  fs.writeFileSync(path.join(t.dir, "kept"), randomBytes(3 * section, 2));
  const local = dirTree(t.dir);
  // Its bytes vanish between the stat and the reads (each section opens the file).
  const source: typeof local = {
    ...local,
    open: (dir, e) =>
      e.name === "gone" ? { kind: "file", path: path.join(t.dir, "missing") } : local.open(dir, e),
  };
  const store = new MemStore();
  await Repository.init(store, { packSize: 1 << 20, chunker: { kind: "fixed", size: 4096 } });
  const r = await run(store, source, null, 2, section);
  const repo = await openRepo(store);
  const names = (await repo.loadTree(r.root)).map((n) => n.name);
  assert.deepEqual(names, ["kept"]);
  assert.equal(r.stats.files, 1);
  assert.equal(r.stats.bytes, 3 * section);
  assert.equal(r.warnings.length, 1, JSON.stringify(r.warnings));
  assert.match(JSON.stringify(r.warnings[0]), /gone.*cannot read/);
});
