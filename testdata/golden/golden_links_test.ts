/**
 * The format 1.2 golden repository of hard links and ownership
 * (`testdata/golden/v1.2-links/`, written once by make_golden_links.ts, never
 * regenerated) must restore byte for byte: content, size, mode (setgid
 * included), modification time, symlink targets, the hard links as one inode
 * each, and, as root, every recorded owner.
 *
 * The fixture is never written to: the test copies `repo/` first.
 *
 * @module
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { FsStore } from "../../store/drivers/fs.ts";
import { restore } from "../../store/restore/restore.ts";
import { verify } from "../../store/verify.ts";
import { Repository } from "../../store/repository.ts";

interface LinkEntry {
  path: string;
  type: "file" | "dir" | "symlink";
  mode: number;
  mtimeMs: number;
  size: number;
  sha256: string | null;
  uid: number;
  gid: number;
  linkTarget?: string;
  hardLinkOf?: string;
  nlink?: number;
}

interface LinkExpected {
  formatVersion: number;
  formatMinor: number;
  manifest: string;
  entries: LinkEntry[];
}

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), "v1.2-links");
const EXPECTED: LinkExpected = JSON.parse(
  fs.readFileSync(path.join(FIXTURE, "expected.json"), "utf8"),
);
const asRoot = Deno.uid() === 0;

function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Every file below `dir` with its SHA-256 (to prove the fixture is untouched). */
function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) visit(r);
      else out[r] = sha256Hex(fs.readFileSync(path.join(dir, r)));
    }
  };
  visit("");
  return out;
}

/** Paths below `root`, sorted. */
function paths(root: string): string[] {
  const out: string[] = [];
  const visit = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`;
      out.push(r);
      if (e.isDirectory()) visit(r);
    }
  };
  visit("");
  return out.sort();
}

function check(target: string, want: LinkEntry, owners: boolean): void {
  const p = path.join(target, want.path);
  const st = fs.lstatSync(p);
  const where = want.path;
  assert.equal(Math.round(st.mtimeMs), Math.round(want.mtimeMs), `${where}: mtime`);
  if (owners) assert.equal(`${st.uid}:${st.gid}`, `${want.uid}:${want.gid}`, `${where}: owner`);
  if (want.type === "symlink") {
    assert.ok(st.isSymbolicLink(), `${where}: a symlink`);
    assert.equal(fs.readlinkSync(p), want.linkTarget, `${where}: target`);
    return;
  }
  assert.equal((st.mode & 0o7777).toString(8), want.mode.toString(8), `${where}: mode`);
  if (want.type === "dir") {
    assert.ok(st.isDirectory(), `${where}: a directory`);
    return;
  }
  assert.ok(st.isFile(), `${where}: a file`);
  assert.equal(st.size, want.size, `${where}: size`);
  assert.equal(sha256Hex(fs.readFileSync(p)), want.sha256, `${where}: content`);
  assert.equal(st.nlink, want.nlink, `${where}: number of names`);
  if (want.hardLinkOf) {
    assert.equal(st.ino, fs.lstatSync(path.join(target, want.hardLinkOf)).ino, `${where}: inode`);
  }
}

Deno.test("golden v1.2-links holds one backup of format 1.2 with hard links and owners", () => {
  assert.equal(EXPECTED.formatVersion, 1);
  assert.equal(EXPECTED.formatMinor, 2);
  assert.ok(EXPECTED.entries.some((e) => e.hardLinkOf), "the fixture has a hard link");
  assert.ok(EXPECTED.entries.some((e) => e.uid !== 0), "the fixture has a non-root owner");
});

Deno.test("golden v1.2-links restores byte for byte, with hard links and owners", async (t) => {
  const tmp = fs.mkdtempSync(
    path.join(Deno.env.get("TMPDIR") ?? "/tmp", "bendsave-golden-v1.2-links-"),
  );
  const before = fingerprint(path.join(FIXTURE, "repo"));
  try {
    const repoDir = path.join(tmp, "repo");
    fs.cpSync(path.join(FIXTURE, "repo"), repoDir, { recursive: true });
    const store = await FsStore.open(repoDir);

    await t.step("config and manifest say format 1.2", async () => {
      const config = JSON.parse(fs.readFileSync(path.join(repoDir, "config"), "utf8"));
      assert.equal(config.version, 1);
      assert.equal(config.minor, 2);
      const repo = await Repository.open(store);
      const m = await repo.loadManifest(EXPECTED.manifest);
      assert.equal(m.manifest.formatVersion, 1);
      assert.equal(m.manifest.formatMinor, 2);
    });

    await t.step("restore (owners set as root)", async () => {
      const target = path.join(tmp, "restore");
      const r = await restore(store, target, { workers: 0 });
      assert.equal(r.ownership, asRoot ? "set" : "not-root");
      assert.equal(r.hardLinks, EXPECTED.entries.filter((e) => e.hardLinkOf).length);
      for (const e of EXPECTED.entries) check(target, e, asRoot);
      assert.deepEqual(paths(target), EXPECTED.entries.map((e) => e.path).sort());
    });

    await t.step(
      "restore with owners off: same bytes and links, the restorer's owner",
      async () => {
        const target = path.join(tmp, "restore-no-owner");
        await restore(store, target, { workers: 0, owner: false });
        for (const e of EXPECTED.entries) check(target, e, false);
        assert.equal(fs.lstatSync(path.join(target, "pgdata")).uid, Deno.uid());
      },
    );

    await t.step(
      "a selection without the first name writes the next name as the file",
      async () => {
        const target = path.join(tmp, "restore-three");
        await restore(store, target, { workers: 0, include: ["three"] });
        const want = EXPECTED.entries.find((e) => e.path === "three")!;
        const { hardLinkOf: _first, ...alone } = want;
        check(target, { ...alone, nlink: 1 }, asRoot);
        assert.deepEqual(paths(target), ["three"]);
      },
    );

    await t.step("verify with read-data finds it clean", async () => {
      const report = await verify(store, { readData: true });
      assert.equal(report.ok, true, JSON.stringify(report.problems));
    });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  assert.deepEqual(
    fingerprint(path.join(FIXTURE, "repo")),
    before,
    "the fixture must never be written to",
  );
});
