/**
 * Test helpers shared by the end-to-end tests: generated trees, running the
 * CLI as a real child process, and comparing trees with their metadata.
 *
 * @module
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";

const CLI = new URL("../cli/main.ts", import.meta.url).pathname;

/** A deterministic PRNG (xorshift32) for test data. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** `n` pseudo-random (incompressible) bytes. */
export function randomBytes(n: number, seed: number): Uint8Array {
  const next = prng(seed);
  const out = new Uint8Array(n);
  const v = new DataView(out.buffer);
  let i = 0;
  for (; i + 4 <= n; i += 4) v.setUint32(i, next());
  for (; i < n; i++) out[i] = next() & 0xff;
  return out;
}

/** Compressible text of about `n` bytes. */
export function textBytes(n: number, seed: number): Uint8Array {
  const next = prng(seed);
  const words = ["alpha", "beta", "gamma", "delta", "table", "block", "backup", "restore", "\n"];
  let s = "";
  while (s.length < n) s += words[next() % words.length] + " ";
  return new TextEncoder().encode(s.slice(0, n));
}

/**
 * Builds a tree with every kind of entry: files of sizes 0, 1 and larger,
 * a large file, nested and empty directories, symlinks, various modes and
 * fixed mtimes. Returns the root.
 */
export function makeTree(
  root: string,
  options: { largeSize?: number; seed?: number } = {},
): string {
  const seed = options.seed ?? 1;
  fs.mkdirSync(root, { recursive: true });
  const w = (rel: string, data: Uint8Array, mode = 0o644, mtime = 1_700_000_000) => {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, data);
    fs.chmodSync(p, mode);
    fs.utimesSync(p, mtime, mtime + 0.123);
  };
  w("empty.txt", new Uint8Array(0));
  w("one.bin", new Uint8Array([42]));
  w("docs/readme.md", textBytes(20_000, seed), 0o600);
  w("docs/deep/er/notes.txt", textBytes(3_000, seed + 1));
  w("bin/tool.sh", new TextEncoder().encode("#!/bin/sh\necho hi\n"), 0o755);
  w("data/random.bin", randomBytes(300_000, seed + 2));
  w("data/large.bin", randomBytes(options.largeSize ?? 12 * 1024 * 1024, seed + 3));
  w("data/copy-of-readme.md", textBytes(20_000, seed));
  for (let i = 0; i < 40; i++) w(`many/f${i}.txt`, textBytes(100 + i * 37, seed + 10 + i));
  fs.mkdirSync(path.join(root, "empty-dir/nested-empty"), { recursive: true });
  fs.symlinkSync("docs/readme.md", path.join(root, "link-to-readme"));
  fs.symlinkSync("/nonexistent/target", path.join(root, "dangling-link"));
  fs.utimesSync(path.join(root, "empty-dir"), 1_600_000_000, 1_600_000_000);
  return root;
}

/** One line per entry: type, mode, mtime (ms), size, content hash or link target. */
export function describeTree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const abs = rel ? path.join(root, rel) : root;
    for (const name of fs.readdirSync(abs).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.push(`${r} link ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.push(`${r} dir ${mode} ${Math.floor(st.mtimeMs)}`);
        walk(r);
      } else {
        const h = createHash("sha256").update(fs.readFileSync(p)).digest("hex");
        out.push(`${r} file ${mode} ${Math.floor(st.mtimeMs)} ${st.size} ${h}`);
      }
    }
  };
  walk("");
  return out;
}

/** Result of a CLI run. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI from source as a child process. */
export async function cli(
  args: string[],
  options: { env?: Record<string, string>; wrap?: string[] } = {},
): Promise<CliRun> {
  const cmd = [...(options.wrap ?? []), Deno.execPath(), "run", "--allow-all", CLI, ...args];
  const out = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    env: { NO_COLOR: "1", ...(options.env ?? {}) },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Runs `bendsave <args>` on an encrypted repository without its passphrase
 * and with a wrong one: each must exit 4 with one line naming the problem;
 * `unchanged` then checks that nothing was written.
 */
export async function assertRefusedWithoutPassphrase(
  args: string[],
  unchanged: () => void,
): Promise<void> {
  for (const pw of ["", "wrong"]) {
    const r = await cli(args, { env: { BENDSAVE_PASSWORD: pw } });
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, pw ? /does not open/ : /is encrypted: give its passphrase/);
    unchanged();
  }
}

/** Parses NDJSON output and returns the last object of `type`. */
export function lastOfType(stdout: string, type: string): Record<string, unknown> {
  const objs = stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  const found = objs.filter((o) => o.type === type);
  if (found.length === 0) throw new Error(`no ${type} object in output:\n${stdout}`);
  return found[found.length - 1];
}

/** Every file below `dir` (relative paths), for counting packs and the like. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const abs = path.join(dir, rel);
    if (!fs.existsSync(abs)) return;
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk("");
  return out.sort();
}

/** A temporary directory removed by the returned function. */
export async function tempDir(
  prefix = "bendsave-test-",
): Promise<{ dir: string; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix });
  return {
    dir,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
