import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { InvalidInput, RepositoryNotFound } from "../errors.ts";
import { runConformanceSuite } from "./conformance.ts";
import { FsStore } from "./fs.ts";

runConformanceSuite("FsStore", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bendsave-fs-" });
  const store = await FsStore.open(dir);
  return { store, cleanup: () => Deno.remove(dir, { recursive: true }) };
});

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "bendsave-fs-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Every file below `dir`, as relative paths with `/`. */
function filesBelow(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join("/"))
    .sort();
}

const PACK = "ab" + "0123456789abcdef".repeat(4).slice(2);

Deno.test("FsStore.save leaves no temporary file behind", async () => {
  await withTempDir(async (dir) => {
    const store = await FsStore.open(dir);
    await store.save({ kind: "pack", name: PACK }, new Uint8Array(100));
    await store.save({ kind: "manifest", name: "m" }, new Uint8Array(10));
    await store.save({ kind: "manifest", name: "m" }, new Uint8Array(20));
    await store.save({ kind: "lock", name: "l" }, new Uint8Array(1), { exclusive: true });
    await assert.rejects(
      store.save({ kind: "lock", name: "l" }, new Uint8Array(1), { exclusive: true }),
    );
    await store.save({ kind: "raw", name: "x/y/z.bin" }, new Uint8Array(3));
    assert.deepEqual(filesBelow(dir), [
      "locks/l",
      "manifests/m",
      `packs/ab/${PACK}`,
      "x/y/z.bin",
    ]);
  });
});

Deno.test("FsStore.save below a file fails with a clear error and leaves nothing", async () => {
  await withTempDir(async (dir) => {
    const store = await FsStore.open(dir);
    await store.save({ kind: "raw", name: "f" }, new Uint8Array([1]));
    await assert.rejects(
      store.save({ kind: "raw", name: "f/x" }, new Uint8Array([2])),
      (err: unknown) => {
        assert.ok(err instanceof Error);
        assert.match(err.message, /could not save ".*\/f\/x"/);
        assert.match(err.message, /not a directory/);
        return true;
      },
    );
    assert.deepEqual(filesBelow(dir), ["f"]);
  });
});

Deno.test("FsStore.open of a file throws InvalidInput", async () => {
  await withTempDir(async (dir) => {
    const file = path.join(dir, "file");
    fs.writeFileSync(file, "x");
    await assert.rejects(FsStore.open(file), (err: unknown) => {
      assert.ok(err instanceof InvalidInput);
      assert.match(err.message, /is a file, not a directory/);
      assert.ok(err.message.includes(file));
      return true;
    });
    await assert.rejects(FsStore.open(file, { create: true }), InvalidInput);
    await assert.rejects(FsStore.open(path.join(file, "below")), InvalidInput);
  });
});

Deno.test("FsStore.open of a missing directory throws RepositoryNotFound unless create", async () => {
  await withTempDir(async (dir) => {
    const missing = path.join(dir, "a", "b");
    await assert.rejects(FsStore.open(missing), RepositoryNotFound);
    assert.equal(fs.existsSync(missing), false);
    const store = await FsStore.open(missing, { create: true });
    assert.equal(store.root, missing);
    assert.equal(store.location, missing);
    assert.ok(fs.statSync(missing).isDirectory());
    await FsStore.open(missing, { create: true });
  });
});

Deno.test("FsStore.open makes the root absolute", async () => {
  await withTempDir(async (dir) => {
    const store = await FsStore.open(path.relative(Deno.cwd(), dir));
    assert.equal(store.root, dir);
  });
});

Deno.test("FsStore rejects a raw path that escapes the root", async () => {
  await withTempDir(async (dir) => {
    const store = await FsStore.open(path.join(dir, "root"), { create: true });
    for (const name of ["../outside", "a/../../outside", "/tmp/outside"]) {
      await assert.rejects(
        store.save({ kind: "raw", name }, new Uint8Array([1])),
        (err: unknown) => {
          assert.ok(err instanceof TypeError);
          assert.ok(err.message.includes(`"${name}"`), err.message);
          return true;
        },
      );
    }
    assert.deepEqual(filesBelow(dir), []);
  });
});

Deno.test("FsStore lays out each kind at its documented path", async () => {
  await withTempDir(async (dir) => {
    const store = await FsStore.open(dir);
    const one = new Uint8Array([1]);
    await store.save({ kind: "config", name: "config" }, one);
    await store.save({ kind: "guide", name: "bendsave.md" }, one);
    await store.save({ kind: "manifest", name: "m1" }, one);
    await store.save({ kind: "pack", name: PACK }, one);
    await store.save({ kind: "index", name: "i1" }, one);
    await store.save({ kind: "lock", name: "l1" }, one);
    await store.save({ kind: "raw", name: "data/1/t.parquet" }, one);
    assert.deepEqual(filesBelow(dir), [
      "bendsave.md",
      "config",
      "data/1/t.parquet",
      "index/i1",
      "locks/l1",
      "manifests/m1",
      `packs/ab/${PACK}`,
    ]);
  });
});

Deno.test("FsStore.list skips temporary, misplaced and malformed files", async () => {
  await withTempDir(async (dir) => {
    const store = await FsStore.open(dir);
    await store.save({ kind: "pack", name: PACK }, new Uint8Array(4));
    fs.mkdirSync(path.join(dir, "manifests"));
    fs.writeFileSync(path.join(dir, "manifests", ".tmp-123"), "x");
    fs.mkdirSync(path.join(dir, "manifests", "subdir"));
    fs.writeFileSync(path.join(dir, "packs", "ab", ".tmp-456"), "x");
    fs.writeFileSync(path.join(dir, "packs", "ab", "not-a-pack"), "x");
    fs.mkdirSync(path.join(dir, "packs", "cd"));
    fs.writeFileSync(path.join(dir, "packs", "cd", PACK), "x"); // wrong fan-out directory
    fs.writeFileSync(path.join(dir, "packs", PACK), "x"); // no fan-out directory
    const packs: string[] = [];
    for await (const info of store.list("pack")) packs.push(info.name);
    assert.deepEqual(packs, [PACK]);
    for await (const info of store.list("manifest")) assert.fail(`unexpected "${info.name}"`);
    const raw: string[] = [];
    for await (const info of store.list("raw")) raw.push(info.name);
    assert.ok(!raw.some((n) => n.includes(".tmp-")), raw.join(", "));
  });
});

Deno.test("FsStore.cleanTemporaryFiles removes only old temporary files", async () => {
  await withTempDir(async (dir) => {
    const store = await FsStore.open(dir);
    await store.save({ kind: "manifest", name: "m" }, new Uint8Array(1));
    const old = path.join(dir, "manifests", ".tmp-old");
    const fresh = path.join(dir, "manifests", ".tmp-fresh");
    const nested = path.join(dir, "packs", "ab", ".tmp-nested");
    fs.mkdirSync(path.dirname(nested), { recursive: true });
    for (const file of [old, fresh, nested]) fs.writeFileSync(file, "x");
    const twoHoursAgo = (Date.now() - 2 * 60 * 60 * 1000) / 1000;
    fs.utimesSync(old, twoHoursAgo, twoHoursAgo);
    fs.utimesSync(nested, twoHoursAgo, twoHoursAgo);
    assert.equal(await store.cleanTemporaryFiles(), 2);
    assert.deepEqual(filesBelow(dir), ["manifests/.tmp-fresh", "manifests/m"]);
    assert.equal(await store.cleanTemporaryFiles({ olderThanMs: 0 }), 1);
    assert.deepEqual(filesBelow(dir), ["manifests/m"]);
  });
});

Deno.test("FsStore.load of a directory throws NotFound and remove leaves it", async () => {
  await withTempDir(async (dir) => {
    const store = await FsStore.open(dir);
    await store.save({ kind: "raw", name: "d/f" }, new Uint8Array(1));
    await assert.rejects(store.load({ kind: "raw", name: "d" }), (err: unknown) => {
      assert.equal((err as Error).name, "NotFound");
      return true;
    });
    await store.remove({ kind: "raw", name: "d" });
    assert.deepEqual(filesBelow(dir), ["d/f"]);
  });
});

Deno.test("FsStore.saveStream leaves no temporary file behind when the stream fails", async () => {
  await withTempDir(async (dir) => {
    const store = await FsStore.open(dir);
    async function* broken(): AsyncIterable<Uint8Array> {
      yield new Uint8Array(1000);
      throw new Error("the source broke");
    }
    await assert.rejects(store.saveStream({ kind: "raw", name: "a/b.bin" }, broken(), 2000));
    await assert.rejects(
      store.saveStream({ kind: "raw", name: "a/c.bin" }, broken(), 10),
      RangeError,
    );
    async function* whole(): AsyncIterable<Uint8Array> {
      yield new Uint8Array(3);
      yield new Uint8Array(4);
    }
    await store.saveStream({ kind: "raw", name: "a/d.bin" }, whole(), 7);
    assert.deepEqual(filesBelow(dir), ["a/d.bin"]);
  });
});
