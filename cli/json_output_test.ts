import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { cli, makeTree, tempDir } from "../testing/mod.ts";
import { ProgressThrottle, snakeCase, toJsonCase } from "./output.ts";

const README = new URL("../README.md", import.meta.url);

/** The NDJSON schema as README's "JSON output" section documents it. */
function documentedSchema() {
  const text = fs.readFileSync(README, "utf8");
  const section = text.slice(text.indexOf("## JSON output"), text.indexOf("## Cancelling"));
  assert.ok(section.length > 100, "README has a JSON output section");
  const types = new Map<string, { required: string[]; optional: string[] }>();
  for (const line of section.split("\n")) {
    const m = /^\| `(\w+)` +\| (.*?) +\|/.exec(line);
    if (!m || m[1] === "type") continue; // the header row
    const fields = [...m[2]!.matchAll(/`(\w+)(\??)`/g)];
    types.set(m[1]!, {
      required: fields.filter((f) => f[2] === "").map((f) => f[1]!),
      optional: fields.filter((f) => f[2] === "?").map((f) => f[1]!),
    });
  }
  const words = (s: string) => [...s.matchAll(/`([\w-]+)`/g)].map((x) => x[1]!);
  const ops = /`operation` is one of (.*?), and `phase` one of (.*?) \(/s.exec(section);
  assert.ok(ops, "README names the operations and phases");
  const phases = /`phase` one of (.*?)\. `files`/s.exec(section);
  return {
    types,
    operations: words(ops[1]!),
    phases: words(phases![1]!),
  };
}

const SCHEMA = documentedSchema();
/** Types whose fields the table lists exactly; the others list what they hold at least. */
const CLOSED = new Set(["progress", "warning", "error"]);
const FINAL = new Set(["summary", "plan", "report", "error"]);
const OPAQUE = new Set(["labels", "settings", "include", "sparse"]);

/** Every key below `v` is snake_case (keys of data maps excepted). */
function assertSnakeKeys(v: unknown, where: string): void {
  if (Array.isArray(v)) return v.forEach((x, i) => assertSnakeKeys(x, `${where}[${i}]`));
  if (v === null || typeof v !== "object") return;
  for (const [k, x] of Object.entries(v)) {
    assert.match(k, /^[a-z][a-z0-9_]*$/, `${where}.${k} is not snake_case`);
    if (!OPAQUE.has(k)) assertSnakeKeys(x, `${where}.${k}`);
  }
}

/** Checks every line of one command's `--json` output; returns the operations that reported progress. */
function checkLines(stdout: string, command: string): Set<string> {
  const lines = stdout.split("\n").filter((l) => l.trim() !== "");
  assert.ok(lines.length > 0, `${command}: no output`);
  const operations = new Set<string>();
  lines.forEach((line, i) => {
    const where = `${command}, line ${i + 1}: ${line.slice(0, 300)}`;
    const o = JSON.parse(line) as Record<string, unknown>;
    assert.equal(typeof o.type, "string", where);
    const type = o.type as string;
    const schema = SCHEMA.types.get(type);
    assert.ok(schema, `${where}: type "${type}" is not documented`);
    assert.equal(FINAL.has(type), i === lines.length - 1, `${where}: one final object, last`);
    assertSnakeKeys(o, where);
    const keys = Object.keys(o).filter((k) => k !== "type");
    for (const f of schema.required) assert.ok(f in o, `${where}: "${f}" is missing`);
    if (CLOSED.has(type)) {
      const allowed = new Set([...schema.required, ...schema.optional]);
      for (const k of keys) assert.ok(allowed.has(k), `${where}: "${k}" is not documented`);
    }
    if (type === "progress") {
      assert.ok(SCHEMA.operations.includes(o.operation as string), `${where}: operation`);
      assert.ok(SCHEMA.phases.includes(o.phase as string), `${where}: phase`);
      for (const f of ["files", "total_files", "bytes", "total_bytes", "elapsed_ms"]) {
        assert.ok(Number.isInteger(o[f]) && (o[f] as number) >= 0, `${where}: ${f}`);
      }
      operations.add(o.operation as string);
    }
    if (type === "warning") assert.equal(typeof o.message, "string", where);
    if (type === "error") {
      assert.equal(typeof o.error, "string", where);
      assert.equal(typeof o.exit_code, "number", where);
    }
  });
  return operations;
}

Deno.test("README's JSON output table documents the event types and their fields", () => {
  assert.deepEqual([...SCHEMA.types.keys()].sort(), [
    "error",
    "plan",
    "progress",
    "report",
    "summary",
    "warning",
  ]);
  assert.deepEqual(SCHEMA.types.get("progress")!.required, [
    "operation",
    "phase",
    "files",
    "total_files",
    "bytes",
    "total_bytes",
    "elapsed_ms",
  ]);
  assert.ok(SCHEMA.operations.includes("copy") && SCHEMA.operations.includes("vacuum"));
  assert.deepEqual(SCHEMA.phases, ["scan", "read", "write", "finish"]);
});

Deno.test("backup, restore, verify, vacuum and copy with --json print only documented, snake_case lines", async () => {
  await using t = await tempDir();
  const src = makeTree(path.join(t.dir, "src"), { largeSize: 3 * 1024 * 1024 });
  const repo = path.join(t.dir, "repo");
  const seen = new Set<string>();
  const run = async (args: string[], code = 0) => {
    const r = await cli([...args, "--json"]);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    for (const op of checkLines(r.stdout, args[0]!)) seen.add(op);
    return r;
  };
  await run(["backup", "--from", src, "--to", repo, "--pack-size", "1"]);
  // A FIFO is skipped with a warning (a warning line).
  const fifo = new Deno.Command("mkfifo", { args: [path.join(src, "pipe")] }).outputSync();
  fs.writeFileSync(path.join(src, "second.bin"), "a second generation");
  const second = await run(["backup", "--from", src, "--to", repo]);
  if (fifo.success) assert.match(second.stdout, /"type":"warning"/);
  fs.rmSync(path.join(src, "pipe"), { force: true });
  const target = path.join(t.dir, "restored");
  await run(["restore", "--from", repo, "--to", target]);
  await run(["restore", "--from", repo, "--to", target, "--confirm"]);
  const refused = await run(["restore", "--from", repo, "--to", target, "--confirm"], 2);
  assert.match(refused.stdout, /"type":"error","error":"invalid_input"/);
  await run(["verify", repo, "--read-data"]);
  await run(["copy", "--from", repo, "--to", path.join(t.dir, "copy")]);
  await run(["vacuum", repo, "--keep-last", "1", "--dry-run"]);
  await run(["vacuum", repo, "--keep-last", "1", "--repack-below", "1"]);
  for (const op of ["backup", "restore", "verify", "copy", "vacuum"]) {
    assert.ok(seen.has(op), `${op} reported progress`);
  }
});

Deno.test("toJsonCase turns field names into snake_case and leaves data keys alone", () => {
  assert.equal(snakeCase("filesWritten"), "files_written");
  assert.equal(snakeCase("packsInScope"), "packs_in_scope");
  assert.equal(snakeCase("files_written"), "files_written");
  assert.equal(snakeCase("base/16384/1259"), "base/16384/1259");
  assert.equal(snakeCase("Data"), "Data");
  assert.deepEqual(
    toJsonCase({
      filesWritten: 1,
      checked: { packsRead: 2, list: [{ rowCount: 3 }] },
      labels: { myLabel: "x" },
      id: new Uint8Array([1, 255]),
      gone: undefined,
    }),
    {
      files_written: 1,
      checked: { packs_read: 2, list: [{ row_count: 3 }] },
      labels: { myLabel: "x" },
      id: "01ff",
    },
  );
});

Deno.test("ProgressThrottle passes one progress event per 200 ms, the first of a phase and the completing one", () => {
  let now = 0;
  const th = new ProgressThrottle({ now: () => now });
  const e = (phase: "scan" | "read", files: number, totalFiles = 10) => ({
    type: "progress" as const,
    operation: "backup" as const,
    phase,
    files,
    totalFiles,
    bytes: files,
    totalBytes: totalFiles,
    elapsedMs: now,
  });
  assert.equal(th.pass(e("scan", 1, 0)), true);
  now = 50;
  assert.equal(th.pass(e("scan", 2, 0)), false);
  assert.equal(th.pass(e("read", 1)), true, "a new phase");
  now = 100;
  assert.equal(th.pass(e("read", 2)), false);
  now = 260;
  assert.equal(th.pass(e("read", 3)), true);
  now = 270;
  assert.equal(th.pass(e("read", 10)), true, "the completing event");
});
