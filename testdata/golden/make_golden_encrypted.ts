/**
 * Creates the format 2.0 golden encrypted repository:
 * `testdata/golden/v2.0-encrypted/repo/` (one backup of a small
 * deterministic tree, sealed under the passphrase in README.md next to it)
 * and `expected.json` (every file's path, size, mode, mtime and SHA-256).
 * Run it ONCE, then commit `repo/`, `expected.json` and `README.md`; never
 * regenerate it (see ../README.md). The script refuses to overwrite it.
 *
 * ```sh
 * deno run --allow-all testdata/golden/make_golden_encrypted.ts
 * ```
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { backup } from "../../store/backup/backup.ts";
import { FsStore } from "../../store/drivers/fs.ts";
import { dirSource } from "../../sources/dir/dir_source.ts";
import { DEFAULT_FASTCDC } from "../../formats/chunker.ts";
import { ENCRYPTED_FORMAT_MINOR, ENCRYPTED_FORMAT_VERSION } from "../../formats/version.ts";

/** The test passphrase of the fixture (also in its README.md). */
export const GOLDEN_PASSPHRASE = "golden fixture passphrase v2.0";

/** One restored file or directory, as expected.json records it. */
export interface EncryptedEntry {
  path: string;
  type: "file" | "dir";
  mode: number;
  mtimeMs: number;
  size: number;
  sha256: string | null;
}

const T_BACKUP = Date.UTC(2026, 11, 1, 23, 0, 0);
const MTIME = Date.UTC(2026, 5, 1, 12, 0, 0) + 123;

function deterministic(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** The source tree: text that compresses, bytes that do not, a repeat, an empty file. */
function writeTree(root: string): void {
  fs.mkdirSync(path.join(root, "docs", "deep"), { recursive: true });
  const text = "GOLDEN-ENCRYPTED plaintext line that must never appear in the repository\n";
  const files: [string, Uint8Array | string, number][] = [
    ["readme.txt", text.repeat(500), 0o644],
    ["docs/random.bin", deterministic(200 * 1024 + 17, 42), 0o600],
    ["docs/deep/copy.txt", text.repeat(500), 0o640],
    ["empty", "", 0o644],
  ];
  for (const [rel, data, mode] of files) {
    fs.writeFileSync(path.join(root, rel), data);
    fs.chmodSync(path.join(root, rel), mode);
  }
  for (const d of ["docs/deep", "docs", ""]) {
    fs.utimesSync(path.join(root, d), MTIME / 1000, MTIME / 1000);
  }
  for (const [rel] of files) fs.utimesSync(path.join(root, rel), MTIME / 1000, MTIME / 1000);
  for (const d of ["docs/deep", "docs", ""]) {
    fs.utimesSync(path.join(root, d), MTIME / 1000, MTIME / 1000);
  }
}

/** Every entry below `root`, sorted by path. */
export function describe(root: string): EncryptedEntry[] {
  const out: EncryptedEntry[] = [];
  const visit = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`;
      const st = fs.statSync(path.join(root, r));
      const file = e.isFile();
      out.push({
        path: r,
        type: file ? "file" : "dir",
        mode: st.mode & 0o7777,
        mtimeMs: Math.floor(st.mtimeMs),
        size: file ? st.size : 0,
        sha256: file
          ? createHash("sha256").update(fs.readFileSync(path.join(root, r))).digest("hex")
          : null,
      });
      if (e.isDirectory()) visit(r);
    }
  };
  visit("");
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

if (import.meta.main) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const out = path.join(here, "v2.0-encrypted");
  if (fs.existsSync(out)) throw new Error(`${out} exists: never regenerate a golden fixture`);
  const src = fs.mkdtempSync(path.join(os.tmpdir(), "golden-enc-"));
  try {
    writeTree(src);
    const repo = path.join(out, "repo");
    fs.mkdirSync(repo, { recursive: true });
    const store = await FsStore.open(repo, { create: true });
    const r = await backup(store, dirSource(src, { chunker: DEFAULT_FASTCDC }), {
      init: { passphrase: GOLDEN_PASSPHRASE, packSize: 1024 * 1024, now: new Date(T_BACKUP) },
      now: () => T_BACKUP,
      workers: 0,
      labels: { fixture: "golden-v2.0-encrypted" },
    });
    fs.writeFileSync(
      path.join(out, "expected.json"),
      JSON.stringify(
        {
          formatVersion: ENCRYPTED_FORMAT_VERSION,
          formatMinor: ENCRYPTED_FORMAT_MINOR,
          manifest: r.name,
          entries: describe(src),
        },
        null,
        2,
      ) + "\n",
    );
    fs.writeFileSync(
      path.join(out, "README.md"),
      `# Golden encrypted repository (format ${ENCRYPTED_FORMAT_VERSION}.${ENCRYPTED_FORMAT_MINOR})

Written once by \`../make_golden_encrypted.ts\`; never regenerate it. Its test passphrase:

    ${GOLDEN_PASSPHRASE}

\`golden_encrypted_test.ts\` restores it with that passphrase byte for byte and checks that the
repository holds none of the source's text.
`,
    );
    console.log(`wrote ${out} (${r.name})`);
  } finally {
    fs.rmSync(src, { recursive: true, force: true });
  }
}
