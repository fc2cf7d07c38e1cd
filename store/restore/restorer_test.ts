import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { MemStore } from "../drivers/mem.ts";
import { backup } from "../backup/backup.ts";
import { Repository } from "../repository.ts";
import { Cancelled, IntegrityError, InvalidInput, RestoreIncomplete } from "../errors.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { NodeType } from "../../formats/tree.ts";
import { randomBytes, tempDir } from "../../testing/mod.ts";
import type { Entry, Link, SelectedDir } from "./collect.ts";
import type { Ledger, RestoreOutput, TargetView } from "./output.ts";
import { planWith, restoreWith } from "./restorer.ts";
import { decodeChecked, type StoredBlock } from "./stored_block.ts";
import type { RestoreResult } from "./restore.ts";
import { damageFirstBlock } from "./_damage_test_helper.ts";

const KiB = 1024;

/** An output that keeps the restored tree in memory and records the calls it gets. */
class MemOutput implements RestoreOutput {
  readonly hardLinks = true;
  readonly stopped = false;
  readonly files = new Map<string, Uint8Array>();
  readonly dirs: string[] = [];
  readonly symlinks = new Map<string, string>();
  readonly links = new Map<string, string>();
  readonly calls: string[] = [];
  #ledger: Ledger | null = null;
  /** Existing entries (a non-empty target), by path. */
  readonly held: Map<string, Uint8Array>;
  /** Called as each file is given, before its blocks are read. */
  onFile: (f: Entry) => void = () => {};

  constructor(existing: Map<string, Uint8Array> = new Map()) {
    this.held = existing;
  }
  inspect(): Promise<TargetView> {
    return Promise.resolve({
      target: "mem",
      targetNotEmpty: this.held.size > 0,
      ownership: "off",
    });
  }
  existing(e: Entry): Promise<string | null> {
    if (e.node.type === NodeType.dir) return Promise.resolve("directory");
    return Promise.resolve(this.held.has(e.rel) ? "file" : null);
  }
  notEmpty(): Error {
    return new InvalidInput("mem is not empty");
  }
  begin(_plan: unknown, ledger: Ledger): Promise<void> {
    this.calls.push("begin");
    this.#ledger = ledger;
    return Promise.resolve();
  }
  dir(d: SelectedDir): Promise<void> {
    this.calls.push(`dir ${d.rel}`);
    if (d.node !== null) this.dirs.push(d.rel);
    return Promise.resolve();
  }
  unchanged(f: Entry): Promise<boolean> {
    const had = this.held.get(f.rel);
    return Promise.resolve(had !== undefined && had.length === f.node.size);
  }
  async file(f: Entry, blocks: AsyncIterable<StoredBlock>): Promise<void> {
    this.calls.push(`file ${f.rel}`);
    this.onFile(f);
    const parts: Uint8Array[] = [];
    try {
      for await (const b of blocks) parts.push(decodeChecked(b, f.rel));
    } catch (e) {
      if (!(e instanceof IntegrityError)) throw e;
      this.#ledger!.failed(f.rel, e.message);
      return;
    }
    const data = new Uint8Array(f.node.size);
    let pos = 0;
    for (const p of parts) {
      data.set(p, pos);
      pos += p.length;
    }
    this.files.set(f.rel, data);
    this.#ledger!.written(1, data.length);
  }
  drain(): Promise<void> {
    this.calls.push("drain");
    return Promise.resolve();
  }
  link(l: Link): Promise<"made" | "kept" | "failed"> {
    this.calls.push(`link ${l.rel}`);
    this.links.set(l.rel, l.of.rel);
    return Promise.resolve("made");
  }
  symlink(s: Entry): Promise<void> {
    this.calls.push(`symlink ${s.rel}`);
    this.symlinks.set(s.rel, s.node.linkTarget ?? "");
    return Promise.resolve();
  }
  done(d: SelectedDir): Promise<void> {
    this.calls.push(`done ${d.rel}`);
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.calls.push("close");
    return Promise.resolve();
  }
  cancelled(done: number, total: number): string {
    return `${done} of ${total} in mem`;
  }
}

/** A small tree with a hard link and a symlink, backed up into a MemStore. */
async function fixture(dir: string) {
  const src = path.join(dir, "src");
  fs.mkdirSync(path.join(src, "a", "b"), { recursive: true });
  const files = new Map<string, Uint8Array>([
    ["a/one", randomBytes(300 * KiB, 1)],
    ["a/b/two", randomBytes(5000, 2)],
    ["three", randomBytes(70 * KiB, 3)],
  ]);
  for (const [rel, data] of files) fs.writeFileSync(path.join(src, rel), data);
  fs.linkSync(path.join(src, "a", "one"), path.join(src, "one-again"));
  fs.symlinkSync("a/one", path.join(src, "link"));
  const store = new MemStore();
  const b = await backup(store, dirSource(src, { chunker: { kind: "fixed", size: 64 * KiB } }), {
    workers: 0,
  });
  return { store, files, manifest: b.name };
}

Deno.test("restoreWith over a mem output writes every file byte for byte, then links, symlinks and directory metadata", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const out = new MemOutput();
  const result = await restoreWith(f.store, out, { manifest: f.manifest });
  for (const [rel, data] of f.files) assert.deepEqual(out.files.get(rel), data, rel);
  assert.equal(out.files.size, 3, "the hard link is not written again");
  assert.deepEqual([...out.links], [["one-again", "a/one"]]);
  assert.deepEqual([...out.symlinks], [["link", "a/one"]]);
  assert.deepEqual(out.dirs.sort(), ["a", "a/b"]);
  assert.deepEqual(out.calls.slice(0, 4), ["begin", "dir ", "dir a", "dir a/b"]);
  assert.deepEqual(out.calls.slice(-7), [
    "drain",
    "link one-again",
    "symlink link",
    "done a/b",
    "done a",
    "done ",
    "close",
  ]);
  assert.equal(result.filesWritten, 4);
  assert.equal(result.hardLinks, 1);
  assert.equal(result.bytes, 300 * KiB + 5000 + 70 * KiB);
  assert.equal(result.bytesWritten, result.bytes);
});

Deno.test("restoreWith leaves out a file with a damaged block, restores the others and throws RestoreIncomplete", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  await damageFirstBlock(await Repository.open(f.store), f.manifest, "three", 5, 0xff);
  const out = new MemOutput();
  const e = await restoreWith(f.store, out, { manifest: f.manifest }).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(e instanceof RestoreIncomplete, String(e));
  assert.deepEqual(e.failed.map((x) => x.path), ["three"]);
  assert.match(e.failed[0]!.message, /needed by file three is damaged/);
  assert.equal(out.files.has("three"), false);
  assert.deepEqual(out.files.get("a/one"), f.files.get("a/one"));
  assert.equal((e.result as RestoreResult).filesWritten, 3, "a/one, its link and a/b/two");
});

Deno.test("restoreWith cancelled while a file is given closes the output and says what it holds", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const out = new MemOutput();
  const c = new AbortController();
  out.onFile = () => {
    if (out.files.size === 1) c.abort();
  };
  const e = await restoreWith(f.store, out, { manifest: f.manifest, signal: c.signal }).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(e instanceof Cancelled, String(e));
  assert.equal(e.committed, "1 of 3 in mem");
  assert.equal(out.calls.at(-1), "close");
  assert.equal(out.calls.some((c) => c.startsWith("done")), false);
});

Deno.test("restoreWith refuses a non-empty output without overwrite before it begins, and keeps what is unchanged with it", async () => {
  await using t = await tempDir();
  const f = await fixture(t.dir);
  const existing = new Map([["a/b/two", f.files.get("a/b/two")!]]);
  const refused = new MemOutput(existing);
  await assert.rejects(restoreWith(f.store, refused, { manifest: f.manifest }), /mem is not empty/);
  assert.deepEqual(refused.calls, []);
  const plan = await planWith(f.store, new MemOutput(existing), { manifest: f.manifest });
  assert.deepEqual(plan.replaced, ["a/b/two"]);
  const out = new MemOutput(existing);
  const result = await restoreWith(f.store, out, { manifest: f.manifest, overwrite: true });
  assert.equal(result.filesUnchanged, 1);
  assert.equal(out.files.has("a/b/two"), false, "not written again");
  assert.equal(result.filesWritten, 3);
});

/** `dirs` directories of `per` small files each, and a symlink in each, backed up into a MemStore. */
async function manyFiles(dir: string, dirs: number, per: number) {
  const src = path.join(dir, "src");
  for (let d = 0; d < dirs; d++) {
    const sub = path.join(src, `d${String(d).padStart(2, "0")}`);
    fs.mkdirSync(sub, { recursive: true });
    for (let i = 0; i < per; i++) {
      fs.writeFileSync(path.join(sub, `f${String(i).padStart(2, "0")}`), `file ${i} of ${d}`);
    }
    fs.symlinkSync("f00", path.join(sub, "link"));
  }
  const store = new MemStore();
  const b = await backup(store, dirSource(src), { workers: 0 });
  return { store, manifest: b.name };
}

Deno.test("restoreWith holds at most one batch of entries, walking the trees as it writes them", async () => {
  await using t = await tempDir();
  const dirs = 30;
  const per = 20;
  const limit = 16;
  const f = await manyFiles(t.dir, dirs, per);
  const repo = await Repository.open(f.store);
  // Trees read, counted: the plan walks them all first, the restore as it goes.
  let treeLoads = 0;
  const loadTree = repo.loadTree.bind(repo);
  repo.loadTree = (id, what) => {
    treeLoads++;
    return loadTree(id, what);
  };
  const planned = await planWith(f.store, new MemOutput(), {
    manifest: f.manifest,
    repository: repo,
  });
  assert.equal(planned.files, dirs * per);
  const planLoads = treeLoads;
  assert.equal(planLoads, dirs + 1);
  treeLoads = 0;

  const out = new MemOutput();
  const loadsAtFile: number[] = [];
  out.onFile = () => loadsAtFile.push(treeLoads);
  const batches: number[] = [];
  let given = 0; // files given to the output since its last drain
  let most = 0;
  const drain = out.drain.bind(out);
  out.drain = () => {
    given = 0;
    return drain();
  };
  const onFile = out.onFile;
  out.onFile = (e) => {
    onFile(e);
    most = Math.max(most, ++given);
  };
  const result = await restoreWith(f.store, out, {
    manifest: f.manifest,
    repository: repo,
    batch: { entries: limit },
    onBatch: (entries) => batches.push(entries),
  });
  assert.equal(result.filesWritten, dirs * per);
  assert.equal(out.files.size, dirs * per);
  assert.equal(out.symlinks.size, dirs);
  // Every batch held at most `limit` entries (files, symlinks, directories done), and
  // there were as many as the entries need: the restorer never held the whole tree.
  assert.ok(batches.every((n) => n <= limit), `batches of ${batches.join(", ")}`);
  assert.ok(batches.length >= Math.ceil((dirs * (per + 2) + 1) / limit), `${batches.length}`);
  assert.ok(most <= limit, `${most} files given between two drains`);
  // The restore counts with a first walk (as the plan does), then writes with a second:
  // its first file was given when that walk had read two of the 31 trees (the root and
  // its directory), and it read each tree once, as it went, never more than a batch
  // ahead: when file i is given, only the trees of the directories of the files up to
  // i + limit (and the root).
  assert.equal(loadsAtFile[0], planLoads + 2);
  assert.equal(treeLoads, 2 * planLoads);
  const ahead = loadsAtFile.filter((n, i) => n - planLoads > 2 + Math.floor((i + limit) / per));
  assert.deepEqual(ahead, [], "trees read more than a batch ahead of the files given");
  // A directory is done (its metadata set) as soon as its subtree is, not at the end.
  const doneFirst = out.calls.indexOf("done d00");
  const lastFile = out.calls.findIndex((c) => c.startsWith(`file d${dirs - 1}/`));
  assert.ok(doneFirst >= 0 && doneFirst < lastFile, `${doneFirst} < ${lastFile}`);
});
