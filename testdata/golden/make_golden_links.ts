/**
 * Creates the format 1.2 golden repository of hard links and ownership:
 * `testdata/golden/v1.2-links/repo/` (one backup of a small deterministic
 * tree) and `testdata/golden/v1.2-links/expected.json` (what it must restore
 * to, owners and hard links included). Run it ONCE, as root (it gives files
 * to other users), then commit `repo/` and `expected.json`; never regenerate
 * it (see README.md). The script refuses to overwrite the fixture.
 *
 * ```sh
 * deno run --allow-all testdata/golden/make_golden_links.ts
 * ```
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
import { FORMAT_MINOR, FORMAT_VERSION } from "../../formats/version.ts";

/** One entry of the restored tree, as expected.json records it. */
export interface LinkEntry {
  /** Path relative to the restore target, with `/`. */
  path: string;
  type: "file" | "dir" | "symlink";
  /** Permission bits (mode & 0o7777); symlinks: not compared. */
  mode: number;
  mtimeMs: number;
  size: number;
  /** SHA-256 (hex) of a file's content or a symlink's target; null for directories. */
  sha256: string | null;
  uid: number;
  gid: number;
  linkTarget?: string;
  /** Files: the first path (in this list's order) of the same inode, when it is not this one. */
  hardLinkOf?: string;
  /** Files: the number of names the restored file has. */
  nlink?: number;
}

/** The content of expected.json. */
export interface LinkExpected {
  formatVersion: number;
  formatMinor: number;
  manifest: string;
  entries: LinkEntry[];
}

const T_BACKUP = Date.UTC(2026, 11, 1, 9, 0, 0);
const MTIME = Date.UTC(2026, 5, 1, 12, 0, 0) + 321;

/** Directories: path, mode, owner. */
const DIRS: { path: string; mode: number; uid: number; gid: number }[] = [
  { path: "pgdata", mode: 0o700, uid: 26, gid: 26 },
  { path: "pgdata/base", mode: 0o700, uid: 26, gid: 26 },
  { path: "shared", mode: 0o755, uid: 0, gid: 1001 },
];

/** Files: path, content, mode, owner. `link` names the file it is a hard link of. */
const FILES: {
  path: string;
  data?: string;
  link?: string;
  mode: number;
  uid: number;
  gid: number;
}[] = [
  { path: "pgdata/PG_VERSION", data: "16\n", mode: 0o600, uid: 26, gid: 26 },
  {
    path: "pgdata/base/16384",
    data: "relation file of the golden fixture\n".repeat(100),
    mode: 0o600,
    uid: 26,
    gid: 26,
  },
  { path: "setgid-tool", data: "#!/bin/sh\necho tool\n", mode: 0o2755, uid: 1234, gid: 5678 },
  { path: "shared/one", data: "one file, three names\n", mode: 0o644, uid: 1000, gid: 1001 },
  { path: "shared/two", link: "shared/one", mode: 0o644, uid: 1000, gid: 1001 },
  { path: "three", link: "shared/one", mode: 0o644, uid: 1000, gid: 1001 },
  { path: "lonely", data: "its other name is outside\n", mode: 0o640, uid: 1000, gid: 1000 },
  { path: "same-bytes", data: "one file, three names\n", mode: 0o644, uid: 1000, gid: 1001 },
];

const LINKS: { path: string; target: string; uid: number; gid: number }[] = [
  { path: "pgdata/link-to-version", target: "PG_VERSION", uid: 26, gid: 26 },
];

function createSource(src: string, outside: string): void {
  fs.mkdirSync(src, { recursive: true });
  for (const d of DIRS) fs.mkdirSync(path.join(src, d.path), { recursive: true });
  for (const f of FILES) {
    const p = path.join(src, f.path);
    if (f.link) fs.linkSync(path.join(src, f.link), p);
    else fs.writeFileSync(p, f.data!);
  }
  fs.linkSync(path.join(src, "lonely"), outside);
  for (const f of FILES) {
    const p = path.join(src, f.path);
    fs.chownSync(p, f.uid, f.gid);
    fs.chmodSync(p, f.mode);
  }
  FILES.forEach((f, i) => {
    const t = new Date(MTIME + 10_000 + i);
    fs.utimesSync(path.join(src, f.path), t, t);
  });
  for (const l of LINKS) {
    const p = path.join(src, l.path);
    fs.symlinkSync(l.target, p);
    fs.lchownSync(p, l.uid, l.gid);
    fs.lutimesSync(p, new Date(MTIME + 20_000), new Date(MTIME + 20_000));
  }
  [...DIRS].reverse().forEach((d, i) => {
    const p = path.join(src, d.path);
    fs.chownSync(p, d.uid, d.gid);
    fs.chmodSync(p, d.mode);
    fs.utimesSync(p, new Date(MTIME + 1000 * (i + 1)), new Date(MTIME + 1000 * (i + 1)));
  });
}

function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The entries below `root`, sorted by path, with owners and hard links. */
export function describeLinkTree(root: string): LinkEntry[] {
  const out: LinkEntry[] = [];
  const visit = (rel: string) => {
    for (const name of fs.readdirSync(rel === "" ? root : path.join(root, rel)).sort()) {
      const r = rel === "" ? name : `${rel}/${name}`;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const common = {
        path: r,
        mode: st.mode & 0o7777,
        mtimeMs: st.mtimeMs,
        uid: st.uid,
        gid: st.gid,
      };
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
        out.push({
          ...common,
          type: "file",
          size: st.size,
          sha256: sha256Hex(fs.readFileSync(p)),
          nlink: st.nlink,
          ino: st.ino,
        } as LinkEntry);
      }
    }
  };
  visit("");
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const first = new Map<number, string>();
  for (const e of out as (LinkEntry & { ino?: number })[]) {
    if (e.ino === undefined) continue;
    const of = first.get(e.ino);
    if (of) e.hardLinkOf = of;
    else first.set(e.ino, e.path);
    delete e.ino;
  }
  return out;
}

async function main(): Promise<void> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const out = path.join(here, "v1.2-links");
  const repoDir = path.join(out, "repo");
  if (fs.existsSync(repoDir) || fs.existsSync(path.join(out, "expected.json"))) {
    throw new Error(
      `${out} already holds a fixture: never regenerate an existing version's fixture (see testdata/golden/README.md)`,
    );
  }
  if (FORMAT_VERSION !== 1 || FORMAT_MINOR !== 2) {
    throw new Error(
      `this script writes the format 1.2 fixture, but the code writes ${FORMAT_VERSION}.${FORMAT_MINOR}`,
    );
  }
  if (Deno.uid() !== 0) throw new Error("run this script as root: it gives files to other users");
  const tmp = fs.mkdtempSync(path.join(Deno.env.get("TMPDIR") ?? "/tmp", "bendsave-golden-"));
  try {
    const src = path.join(tmp, "source");
    createSource(src, path.join(tmp, "lonely-outside"));
    const entries = describeLinkTree(src);
    const store = await FsStore.open(repoDir, { create: true });
    const r = await backup(store, dirSource(src, { host: "golden-host" }), {
      workers: 0,
      now: () => T_BACKUP,
      labels: { fixture: "golden-v1.2-links" },
      init: { now: new Date(T_BACKUP), packSize: 1024 * 1024 },
    });
    const expected: LinkExpected = {
      formatVersion: FORMAT_VERSION,
      formatMinor: FORMAT_MINOR,
      manifest: r.name,
      // The restore leaves out the name outside the source: "lonely" has one name there.
      entries: entries.map((e) => (e.path === "lonely" ? { ...e, nlink: 1 } : e)),
    };
    await store.cleanTemporaryFiles({ olderThanMs: 0 });
    fs.rmSync(path.join(repoDir, "locks"), { recursive: true, force: true });
    fs.writeFileSync(path.join(out, "expected.json"), JSON.stringify(expected, null, 2) + "\n");
    console.log(`wrote ${repoDir} (manifest ${r.name}) and expected.json`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
