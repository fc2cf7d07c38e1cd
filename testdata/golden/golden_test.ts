/**
 * Every golden repository under `testdata/golden/v<N>/` (written once by the
 * code of format version N, never regenerated) must still open, list and
 * restore byte for byte, with modes, times, symlinks and empty directories.
 *
 * The fixture is never written to: each test copies `repo/` to a temporary
 * directory first.
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
import { listBackups } from "../../store/list.ts";
import { Repository } from "../../store/repository.ts";

interface ExpectedEntry {
  path: string;
  type: "file" | "dir" | "symlink";
  mode: number;
  mtimeMs: number;
  size: number;
  sha256: string | null;
  linkTarget?: string;
}

interface Expected {
  formatVersion: number;
  manifests: Record<string, ExpectedEntry[]>;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The fixture directories `v1`, `v2`, ..., in version order. */
function fixtureVersions(): string[] {
  return fs.readdirSync(HERE, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^v\d+$/.test(e.name))
    .map((e) => e.name)
    .sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
}

function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * Restored entries below `root` (the root itself excluded), sorted by path.
 * Deliberately not shared with make_golden.ts: the check of old fixtures must
 * not change when the generator of a newer fixture does.
 */
function describeTree(root: string): ExpectedEntry[] {
  const out: ExpectedEntry[] = [];
  const visit = (rel: string) => {
    for (const name of fs.readdirSync(rel === "" ? root : path.join(root, rel))) {
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
      } else {
        out.push({ ...common, type: "file", size: st.size, sha256: sha256Hex(fs.readFileSync(p)) });
      }
    }
  };
  visit("");
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Recursively lists every file below `dir` with its size and SHA-256 (to prove the fixture is untouched). */
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

function compareEntry(manifest: string, want: ExpectedEntry, got: ExpectedEntry | undefined): void {
  const where = `${manifest}: ${want.path}`;
  assert.ok(got, `${where} was not restored`);
  assert.equal(got.type, want.type, `${where}: type`);
  assert.equal(Math.round(got.mtimeMs), Math.round(want.mtimeMs), `${where}: mtime (ms)`);
  if (want.type === "symlink") {
    // A symlink's own mode is not restorable portably (always 0777 on Linux).
    assert.equal(got.linkTarget, want.linkTarget, `${where}: symlink target`);
    assert.equal(got.sha256, want.sha256, `${where}: symlink target hash`);
    return;
  }
  assert.equal(got.mode.toString(8), want.mode.toString(8), `${where}: mode`);
  assert.equal(got.size, want.size, `${where}: size`);
  assert.equal(got.sha256, want.sha256, `${where}: content`);
}

for (const version of fixtureVersions()) {
  const fixture = path.join(HERE, version);
  const expected: Expected = JSON.parse(
    fs.readFileSync(path.join(fixture, "expected.json"), "utf8"),
  );
  const names = Object.keys(expected.manifests).sort();

  Deno.test(`golden ${version} restores every manifest as recorded`, async (t) => {
    const tmp = fs.mkdtempSync(
      path.join(Deno.env.get("TMPDIR") ?? "/tmp", `bendsave-golden-${version}-`),
    );
    const before = fingerprint(path.join(fixture, "repo"));
    try {
      const repoDir = path.join(tmp, "repo");
      fs.cpSync(path.join(fixture, "repo"), repoDir, { recursive: true });
      const store = await FsStore.open(repoDir);

      await t.step("config says the fixture's format version", async () => {
        const config = JSON.parse(fs.readFileSync(path.join(repoDir, "config"), "utf8"));
        assert.equal(config.format, "bendsave-repository");
        assert.equal(config.version, expected.formatVersion);
        assert.equal(`v${config.version}`, version);
        const repo = await Repository.open(store);
        assert.equal(repo.config.version, expected.formatVersion);
      });

      await t.step(
        "listBackups lists every manifest, undamaged, with the parent chain",
        async () => {
          const { backups, damaged } = await listBackups(store);
          assert.deepEqual(damaged, []);
          assert.deepEqual(backups.map((b) => b.name), names);
          assert.equal(backups[0]!.kind, "full");
          assert.equal(backups[0]!.parent, null);
          for (let i = 1; i < backups.length; i++) {
            assert.equal(backups[i]!.kind, "incremental");
            assert.equal(backups[i]!.parent, backups[i - 1]!.name);
            assert.equal(backups[i]!.parentPresent, true);
          }
          for (const b of backups) {
            assert.equal(b.incomplete, false);
            const bytes = fs.readFileSync(path.join(repoDir, "manifests", b.name));
            assert.equal(
              b.id,
              sha256Hex(bytes),
              `${b.name}: id is the SHA-256 of the manifest file`,
            );
            assert.equal(
              b.files,
              expected.manifests[b.name]!.filter((e) => e.type === "file").length,
            );
          }
        },
      );

      for (const name of names) {
        await t.step(`restore ${name}`, async () => {
          const target = path.join(tmp, `restore-${name}`);
          const r = await restore(store, target, { manifest: name });
          assert.equal(r.manifest, name);
          const want = expected.manifests[name]!;
          const got = new Map(describeTree(target).map((e) => [e.path, e]));
          for (const w of want) compareEntry(name, w, got.get(w.path));
          assert.deepEqual(
            [...got.keys()].sort(),
            want.map((w) => w.path).sort(),
            `${name}: restored paths`,
          );
          const emptyDirs = want.filter((w) =>
            w.type === "dir" && !want.some((x) => x.path.startsWith(`${w.path}/`))
          );
          assert.ok(emptyDirs.length > 0, `${name}: the fixture has an empty directory`);
          for (const d of emptyDirs) {
            assert.deepEqual(fs.readdirSync(path.join(target, d.path)), []);
          }
        });
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    assert.deepEqual(
      fingerprint(path.join(fixture, "repo")),
      before,
      "the fixture must never be written to",
    );
  });
}
