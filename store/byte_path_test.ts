import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {
  displayPath,
  joinPath,
  listNames,
  lstatPath,
  openRead,
  readlinkPath,
  renamePath,
} from "./_byte_path.ts";
import { tempDir } from "../testing/mod.ts";

const bytes = (...parts: (string | number[])[]) =>
  new Uint8Array(
    parts.flatMap((p) => typeof p === "string" ? [...new TextEncoder().encode(p)] : p),
  );

async function sh(cwd: string, script: string): Promise<string> {
  const out = await new Deno.Command("sh", { args: ["-c", script], cwd, stderr: "piped" }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder("latin1").decode(out.stdout);
}

Deno.test("joinPath stays a string for strings and joins bytes otherwise", () => {
  assert.equal(joinPath("/a", "b"), "/a/b");
  assert.equal(joinPath("/a/", "b"), "/a/b");
  assert.deepEqual(joinPath("/a", new Uint8Array([0xff])), bytes("/a/", [0xff]));
  assert.deepEqual(joinPath(bytes("/d", [0xfe]), "x"), bytes("/d", [0xfe], "/x"));
  assert.equal(displayPath(bytes("a", [0xff], "b")), "a\ufffdb");
});

Deno.test("listNames, lstatPath, readlinkPath, openRead and renamePath reach names that are not UTF-8", async () => {
  await using t = await tempDir();
  await sh(
    t.dir,
    `mkdir "$(printf 'd\\376')" && printf hello > "$(printf 'd\\376/f\\377')" && ` +
      `ln -s target "$(printf 'd\\376/l\\303')" && printf same > plain && touch "a\u{fffd}b"`,
  );
  const top = listNames(t.dir).map((n) => [...n]).sort();
  assert.deepEqual(top, [[...bytes("a\ufffdb")], [0x64, 0xfe], [...bytes("plain")]].sort());
  const d = joinPath(t.dir, new Uint8Array([0x64, 0xfe]));
  assert.equal(lstatPath(d).isDirectory(), true);
  const inner = listNames(d).map((n) => [...n]).sort();
  assert.deepEqual(inner, [[0x66, 0xff], [0x6c, 0xc3]]);
  const f = joinPath(d, new Uint8Array([0x66, 0xff]));
  const st = lstatPath(f);
  const plain = fs.lstatSync(path.join(t.dir, "plain"));
  assert.equal(st.isFile(), true);
  assert.equal(st.size, 5);
  assert.equal(st.dev, plain.dev, "device numbers agree with node:fs");
  assert.equal(st.nlink, 1);
  const fd = openRead(f);
  const buf = new Uint8Array(10);
  const n = fs.readSync(fd, buf, 0, 10, null);
  fs.closeSync(fd);
  assert.equal(new TextDecoder().decode(buf.subarray(0, n)), "hello");
  const l = joinPath(d, new Uint8Array([0x6c, 0xc3]));
  assert.equal(lstatPath(l).isSymbolicLink(), true);
  assert.equal(readlinkPath(l), "target");
  renamePath(path.join(t.dir, "plain"), joinPath(d, new Uint8Array([0x70, 0xfa])));
  assert.equal(
    await sh(
      t.dir,
      `cat "$(printf 'd\\376/p\\372')"; ls "$(printf 'd\\376')" | od -An -tx1 | tr -s ' \\n' ' '`,
    ),
    "same 66 ff 0a 6c c3 0a 70 fa 0a ",
  );
  assert.throws(
    () => lstatPath(joinPath(d, new Uint8Array([0xf0]))),
    (e: Error) => (e as Error & { code: string }).code === "ENOENT",
  );
});
