/**
 * Creates the golden repository of the current format version:
 * `testdata/golden/v<N>/repo/` (two backups of a small deterministic source
 * tree: a full one, then an incremental one after one file changed) and
 * `testdata/golden/v<N>/expected.json` (what each backup must restore to).
 *
 * Run it ONCE per released format version, then commit `repo/` and
 * `expected.json`. Never regenerate an existing version's fixture: the point
 * of the fixture is that it was written by the code of that time (see
 * README.md). The script refuses to overwrite an existing fixture.
 *
 * ```sh
 * deno run --allow-all testdata/golden/make_golden.ts
 * ```
 *
 * The source tree is generated into a temporary directory and removed
 * afterwards: symbolic links, empty directories and file modes do not
 * survive git, so only the repository and the expectations are committed.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { backup } from "../../store/backup/backup.ts";
import { FsStore } from "../../store/drivers/fs.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { FORMAT_VERSION } from "../../formats/version.ts";
import type { ChunkerParams } from "../../formats/chunker.ts";
import { prng } from "../../testing/mod.ts";

/** One entry of a restored tree, as expected.json records it. */
export interface ExpectedEntry {
  /** Path relative to the restore target, with `/`. */
  path: string;
  type: "file" | "dir" | "symlink";
  /** Permission bits (mode & 0o7777) as read from the source. */
  mode: number;
  /** Modification time in milliseconds since the epoch. */
  mtimeMs: number;
  /** File size in bytes (0 for directories and symlinks). */
  size: number;
  /** SHA-256 (hex) of a file's content or a symlink's target; null for directories. */
  sha256: string | null;
  /** Symlink target (symlinks only). */
  linkTarget?: string;
}

/** The content of expected.json. */
export interface Expected {
  formatVersion: number;
  /** Manifest file name -> entries sorted by path. */
  manifests: Record<string, ExpectedEntry[]>;
}

/**
 * Chunker of the backed-up part: FastCDC with small blocks, so that the
 * fixture holds files of several content-defined blocks and the incremental
 * backup shares blocks with the full one.
 */
export const GOLDEN_CHUNKER: ChunkerParams = {
  kind: "fastcdc",
  min: 16384,
  avg: 65536,
  max: 262144,
};

const KiB = 1024;
/** Backup start times (UTC) of the two backups; also the manifest names. */
const T_FULL = Date.UTC(2025, 0, 15, 10, 30, 0);
const T_INCR = Date.UTC(2025, 0, 16, 10, 30, 0);
/** Base of the source files' modification times (milliseconds are deliberate). */
const MTIME = Date.UTC(2024, 5, 1, 12, 0, 0) + 123;

/** xorshift32: deterministic "random-looking" bytes from a seed. */
function seededBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const next = prng(seed);
  for (let i = 0; i < n; i++) out[i] = next() & 0xff;
  return out;
}

/** About `n` bytes of compressible text (exactly `n`). */
function text(n: number): Uint8Array {
  let s = "";
  for (let i = 1; s.length < n; i++) {
    s += `line ${String(i).padStart(5, "0")}: the quick brown fox jumps over the lazy dog, ` +
      `bendsave golden fixture, format ${FORMAT_VERSION}.\n`;
  }
  return new TextEncoder().encode(s.slice(0, n));
}

interface FileSpec {
  path: string;
  data: Uint8Array;
  mode: number;
  mtime: number;
}

const DIRS: { path: string; mode: number; mtime: number }[] = [
  { path: "bin", mode: 0o755, mtime: MTIME + 1000 },
  { path: "data", mode: 0o755, mtime: MTIME + 2000 },
  { path: "empty-dir", mode: 0o755, mtime: MTIME + 3000 },
  { path: "nested", mode: 0o755, mtime: MTIME + 4000 },
  { path: "nested/a", mode: 0o750, mtime: MTIME + 5000 },
  { path: "nested/a/b", mode: 0o755, mtime: MTIME + 6000 },
  { path: "private", mode: 0o700, mtime: MTIME + 7000 },
  { path: "text", mode: 0o755, mtime: MTIME + 8000 },
];

function files(): FileSpec[] {
  const enc = (s: string) => new TextEncoder().encode(s);
  return [
    { path: "empty.txt", data: new Uint8Array(0), mode: 0o644, mtime: MTIME + 10_001 },
    { path: "one-byte.bin", data: new Uint8Array([0x42]), mode: 0o644, mtime: MTIME + 10_002 },
    { path: "text/lorem.txt", data: text(100 * KiB), mode: 0o644, mtime: MTIME + 10_003 },
    {
      path: "data/random.bin",
      data: seededBytes(300 * KiB, 0x6b656e64),
      mode: 0o644,
      mtime: MTIME + 10_004,
    },
    {
      path: "bin/run.sh",
      data: enc("#!/bin/sh\necho bendsave golden\n"),
      mode: 0o755,
      mtime: MTIME + 10_005,
    },
    {
      path: "private/key.txt",
      data: enc("not a real secret\n"),
      mode: 0o600,
      mtime: MTIME + 10_006,
    },
    { path: "nested/a/b/deep.txt", data: enc("deep\n"), mode: 0o644, mtime: MTIME + 10_007 },
    { path: "données été.txt", data: enc("UTF-8 file name\n"), mode: 0o644, mtime: MTIME + 10_008 },
  ];
}

const LINKS: { path: string; target: string; mtime: number }[] = [
  { path: "link-to-lorem", target: "text/lorem.txt", mtime: MTIME + 20_001 },
  { path: "nested/dangling", target: "../does/not/exist", mtime: MTIME + 20_002 },
];

/** The change before the second backup: 100 bytes inserted in the middle of data/random.bin. */
function changeOneFile(src: string): void {
  const p = path.join(src, "data/random.bin");
  const old = fs.readFileSync(p);
  const insert = seededBytes(100, 7);
  const next = new Uint8Array(old.length + insert.length);
  next.set(old.subarray(0, 150 * KiB), 0);
  next.set(insert, 150 * KiB);
  next.set(old.subarray(150 * KiB), 150 * KiB + insert.length);
  fs.writeFileSync(p, next);
  const t = new Date(MTIME + 86_400_000 + 456);
  fs.utimesSync(p, t, t);
}

function createSource(src: string): void {
  fs.mkdirSync(src, { recursive: true });
  for (const d of DIRS) fs.mkdirSync(path.join(src, d.path), { recursive: true });
  for (const f of files()) {
    const p = path.join(src, f.path);
    fs.writeFileSync(p, f.data);
    fs.chmodSync(p, f.mode);
  }
  for (const l of LINKS) fs.symlinkSync(l.target, path.join(src, l.path));
  for (const f of files()) {
    fs.utimesSync(path.join(src, f.path), new Date(f.mtime), new Date(f.mtime));
  }
  for (const l of LINKS) {
    fs.lutimesSync(path.join(src, l.path), new Date(l.mtime), new Date(l.mtime));
  }
  setDirMeta(src);
}

/** Directory modes and times last, deepest first. */
function setDirMeta(src: string): void {
  for (const d of [...DIRS].reverse()) {
    const p = path.join(src, d.path);
    fs.chmodSync(p, d.mode);
    fs.utimesSync(p, new Date(d.mtime), new Date(d.mtime));
  }
}

function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Walks a directory tree as bendsave records it (the root itself is not an entry). */
export function describeTree(root: string): ExpectedEntry[] {
  const out: ExpectedEntry[] = [];
  const visit = (rel: string) => {
    const abs = rel === "" ? root : path.join(root, rel);
    for (const name of fs.readdirSync(abs).sort()) {
      const r = rel === "" ? name : `${rel}/${name}`;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const common = { path: r, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs };
      if (st.isDirectory()) {
        out.push({ ...common, type: "dir", size: 0, sha256: null });
        visit(r);
      } else if (st.isSymbolicLink()) {
        const target = fs.readlinkSync(p);
        out.push({
          ...common,
          type: "symlink",
          size: 0,
          sha256: sha256Hex(target),
          linkTarget: target,
        });
      } else if (st.isFile()) {
        out.push({ ...common, type: "file", size: st.size, sha256: sha256Hex(fs.readFileSync(p)) });
      }
    }
  };
  visit("");
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Total size of the regular files below `dir`. */
function treeBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? treeBytes(p) : e.isFile() ? fs.statSync(p).size : 0;
  }
  return n;
}

async function main(): Promise<void> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const out = path.join(here, `v${FORMAT_VERSION}`);
  const repoDir = path.join(out, "repo");
  if (fs.existsSync(repoDir) || fs.existsSync(path.join(out, "expected.json"))) {
    throw new Error(
      `${out} already holds a fixture: never regenerate an existing version's fixture (see testdata/golden/README.md)`,
    );
  }
  const tmp = fs.mkdtempSync(path.join(Deno.env.get("TMPDIR") ?? "/tmp", "bendsave-golden-"));
  try {
    const src = path.join(tmp, "source");
    createSource(src);
    const expected: Expected = { formatVersion: FORMAT_VERSION, manifests: {} };
    const store = await FsStore.open(repoDir, { create: true });
    const source = () => dirSource(src, { host: "golden-host", chunker: GOLDEN_CHUNKER });

    const full = await backup(store, source(), {
      workers: 0,
      now: () => T_FULL,
      labels: { fixture: `golden-v${FORMAT_VERSION}` },
      init: { now: new Date(T_FULL), packSize: 1024 * 1024 },
    });
    expected.manifests[full.name] = describeTree(src);

    changeOneFile(src);
    setDirMeta(src);
    const incr = await backup(store, source(), {
      workers: 0,
      now: () => T_INCR,
      labels: { fixture: `golden-v${FORMAT_VERSION}` },
    });
    expected.manifests[incr.name] = describeTree(src);
    if (
      full.manifest.kind !== "full" || incr.manifest.kind !== "incremental" ||
      incr.parent !== full.name
    ) {
      throw new Error("internal: the second backup is not an incremental child of the first");
    }
    const removed = await store.cleanTemporaryFiles({ olderThanMs: 0 });
    fs.rmSync(path.join(repoDir, "locks"), { recursive: true, force: true });
    fs.writeFileSync(path.join(out, "expected.json"), JSON.stringify(expected, null, 2) + "\n");
    console.log(
      `wrote ${repoDir} (${treeBytes(repoDir)} bytes; manifests ${full.name}, ${incr.name}; ` +
        `${removed} temporary files removed) and expected.json`,
    );
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
