/**
 * The conformance suite every {@linkcode BlobStore} driver must pass.
 *
 * A driver's test file calls {@linkcode runConformanceSuite} once with a
 * factory of fresh, empty stores; the suite registers one `Deno.test` per
 * behaviour, named `"<name> <behaviour>"`.
 *
 * The contract it pins down, beyond the comments of `types.ts`:
 * - a range reaching past the end of an object returns the bytes that exist
 *   (none when the offset is at or past the end), never an error;
 * - `list` yields exactly the objects of one kind: no temporary files, nothing
 *   of another kind (a store holds either repository files or raw paths, so
 *   raw listing is tested on a store that holds raw paths only);
 * - the name of a `config` handle is reported as `config`, of a `guide`
 *   handle as `bendsave.md`;
 * - malformed names (a pack name that is not 64 lowercase hex digits, a
 *   manifest, index or lock name that is not a single path segment, a raw
 *   path that is absolute or has empty, `.` or `..` segments) throw
 *   `TypeError`;
 * - loaded bytes are never shared with the store or with the saved buffer;
 * - a driver with `saveStream` stores a stream whole or not at all: a stream
 *   that throws, or holds another number of bytes than announced
 *   (`RangeError`), leaves nothing new under the name.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { AlreadyExists, NotFound, ReadOnlyError } from "../errors.ts";
import type { BlobStore, FileKind, Handle } from "./types.ts";
import { FILE_KINDS } from "./_layout.ts";

/** A store under test and how to dispose of it. */
export interface ConformanceFixture {
  /** A store that holds nothing but the seed objects, if any. */
  readonly store: BlobStore;
  /** Releases the store and everything it wrote (temporary directories...). */
  readonly cleanup: () => Promise<void>;
}

/** An object a read-only fixture must hold when the factory returns. */
export interface SeedObject {
  readonly handle: Handle;
  readonly data: Uint8Array;
}

/**
 * Makes a fresh store. Writable drivers ignore `seed` (the suite saves through
 * the store); read-only drivers must return a store holding exactly `seed`.
 */
export type ConformanceFactory = (seed?: readonly SeedObject[]) => Promise<ConformanceFixture>;

/** Options of {@linkcode runConformanceSuite}. */
export interface ConformanceOptions {
  /**
   * The driver cannot write (`capabilities.writable` is false). The suite then
   * hands the objects each test reads to the factory as `seed`, ignores the
   * write tests, and checks that `save` and `remove` fail with `ReadOnlyError`.
   */
  readonly readOnly?: boolean;
}

/**
 * Registers the shared driver tests with `Deno.test`, each named
 * `"<name> <behaviour>"`.
 *
 * @example
 * ```ts
 * import { runConformanceSuite } from "./conformance.ts";
 * import { MemStore } from "./mem.ts";
 *
 * runConformanceSuite("MemStore", () =>
 *   Promise.resolve({ store: new MemStore(), cleanup: () => Promise.resolve() }));
 * ```
 */
export function runConformanceSuite(
  name: string,
  factory: ConformanceFactory,
  options: ConformanceOptions = {},
): void {
  const readOnly = options.readOnly === true;

  /** Runs `fn` on a fresh store holding `objects`, then cleans up. */
  async function withStore(
    objects: readonly SeedObject[],
    fn: (store: BlobStore) => Promise<void>,
  ): Promise<void> {
    const fixture = readOnly ? await factory(objects) : await factory();
    try {
      if (!readOnly) {
        for (const { handle, data } of objects) await fixture.store.save(handle, data);
      }
      await fn(fixture.store);
    } finally {
      await fixture.cleanup();
    }
  }

  function readTest(behaviour: string, fn: () => Promise<void>): void {
    Deno.test(`${name} ${behaviour}`, fn);
  }

  function writeTest(behaviour: string, fn: () => Promise<void>): void {
    Deno.test({ name: `${name} ${behaviour}`, ignore: readOnly, fn });
  }

  readTest("declares capabilities matching the suite options", async () => {
    await withStore([], (store) => {
      assert.equal(store.capabilities.writable, !readOnly);
      assert.equal(typeof store.capabilities.name, "string");
      assert.notEqual(store.capabilities.name, "");
      assert.equal(typeof store.location, "string");
      return Promise.resolve();
    });
  });

  readTest("load returns the saved bytes for 0, 1 and 3 MiB objects", async () => {
    const objects = [
      { handle: pack("empty"), data: new Uint8Array(0) },
      { handle: pack("one"), data: new Uint8Array([0xa5]) },
      { handle: pack("big"), data: bytes(3 * 1024 * 1024, 7) },
    ];
    await withStore(objects, async (store) => {
      for (const { handle, data } of objects) {
        assertBytes(await store.load(handle), data, `load of ${data.length} bytes`);
      }
    });
  });

  readTest("load and stat of a missing name throw NotFound", async () => {
    await withStore([], async (store) => {
      const missing: Handle[] = [
        { kind: "config", name: "config" },
        { kind: "guide", name: "bendsave.md" },
        { kind: "manifest", name: "nope" },
        pack("nope"),
        { kind: "index", name: "nope" },
        { kind: "lock", name: "nope" },
        { kind: "key", name: "nope" },
        { kind: "raw", name: "no/such/file" },
        { kind: "wal", name: "7714430012941988799/000000010000000000000001" },
      ];
      for (const h of missing) {
        await assert.rejects(store.load(h), NotFound, `load ${h.kind}`);
        await assert.rejects(store.load(h, { offset: 0, length: 1 }), NotFound, `ranged ${h.kind}`);
        await assert.rejects(store.stat(h), NotFound, `stat ${h.kind}`);
      }
    });
  });

  readTest("stat reports kind, name and size", async () => {
    const objects = [
      { handle: { kind: "manifest", name: "m1" } as const, data: bytes(1234, 1) },
      { handle: pack("p1"), data: bytes(10, 2) },
      { handle: { kind: "config", name: "config" } as const, data: new Uint8Array(0) },
    ];
    await withStore(objects, async (store) => {
      for (const { handle, data } of objects) {
        const info = await store.stat(handle);
        assert.equal(info.kind, handle.kind);
        assert.equal(info.name, handle.name);
        assert.equal(info.size, data.length);
      }
    });
  });

  readTest("load with a range returns exactly the bytes of the range", async () => {
    const data = bytes(1000, 3);
    const h: Handle = { kind: "index", name: "ranged" };
    await withStore([{ handle: h, data }], async (store) => {
      const cases: [number, number, Uint8Array][] = [
        [0, 10, data.subarray(0, 10)],
        [500, 100, data.subarray(500, 600)],
        [990, 10, data.subarray(990)],
        [0, 1000, data],
        [42, 0, new Uint8Array(0)],
        [995, 100, data.subarray(995)], // past the end: what exists
        [1000, 5, new Uint8Array(0)],
        [5000, 5, new Uint8Array(0)],
      ];
      for (const [offset, length, expected] of cases) {
        const got = await store.load(h, { offset, length });
        assertBytes(got, expected, `range {offset: ${offset}, length: ${length}}`);
      }
    });
  });

  readTest("list returns exactly the names of each kind", async () => {
    const objects: SeedObject[] = [
      { handle: { kind: "config", name: "config" }, data: bytes(5, 1) },
      { handle: { kind: "guide", name: "bendsave.md" }, data: bytes(6, 2) },
      { handle: { kind: "manifest", name: "2024-01-01T00-00-00Z" }, data: bytes(7, 3) },
      { handle: { kind: "manifest", name: "m2" }, data: bytes(8, 4) },
      { handle: pack("a"), data: bytes(9, 5) },
      { handle: pack("b"), data: bytes(10, 6) },
      { handle: pack("c"), data: bytes(0, 7) },
      { handle: { kind: "pack", name: "ab".padEnd(64, "0") }, data: bytes(3, 8) },
      { handle: { kind: "pack", name: "ab".padEnd(64, "1") }, data: bytes(4, 9) },
      { handle: { kind: "index", name: "i1" }, data: bytes(11, 10) },
      { handle: { kind: "lock", name: "host-1.lock" }, data: bytes(12, 11) },
      { handle: { kind: "key", name: "ab".padEnd(64, "2") }, data: bytes(17, 16) },
      {
        handle: { kind: "wal", name: "7714430012941988799/000000010000000000000001" },
        data: bytes(13, 12),
      },
      {
        handle: { kind: "wal", name: "7714430012941988799/00000002.history" },
        data: bytes(14, 13),
      },
      {
        handle: { kind: "wal", name: "42/000000010000000000000003.00000028.backup" },
        data: bytes(15, 14),
      },
      { handle: { kind: "wal", name: "42/000000010000000000000004.partial" }, data: bytes(16, 15) },
    ];
    await withStore(objects, async (store) => {
      for (const kind of FILE_KINDS.filter((k) => k !== "raw")) {
        const expected = objects
          .filter((o) => o.handle.kind === kind)
          .map((o) => `${o.handle.name}:${o.data.length}`)
          .sort();
        const listed: string[] = [];
        for await (const info of store.list(kind)) {
          assert.equal(info.kind, kind);
          listed.push(`${info.name}:${info.size}`);
        }
        assert.deepEqual(listed.sort(), expected, `list ${kind}`);
      }
    });
  });

  readTest("list of raw returns every nested relative path", async () => {
    const objects: SeedObject[] = [
      { handle: { kind: "raw", name: "a/b/c.parquet" }, data: bytes(13, 1) },
      { handle: { kind: "raw", name: "a/d.json" }, data: bytes(14, 2) },
      { handle: { kind: "raw", name: "top.bin" }, data: bytes(0, 3) },
      { handle: { kind: "raw", name: "_ss/1/2/3/snapshot_v4.mpk" }, data: bytes(15, 4) },
    ];
    await withStore(objects, async (store) => {
      const listed: string[] = [];
      for await (const info of store.list("raw")) {
        assert.equal(info.kind, "raw");
        listed.push(`${info.name}:${info.size}`);
      }
      const expected = objects.map((o) => `${o.handle.name}:${o.data.length}`).sort();
      assert.deepEqual(listed.sort(), expected);
      assertBytes(await store.load({ kind: "raw", name: "a/b/c.parquet" }), bytes(13, 1), "raw");
    });
  });

  readTest("list of an empty store yields nothing", async () => {
    await withStore([], async (store) => {
      for (const kind of FILE_KINDS) {
        for await (const info of store.list(kind)) assert.fail(`unexpected ${kind} "${info.name}"`);
      }
    });
  });

  readTest("load returns bytes the store does not share", async () => {
    const data = bytes(64, 5);
    const h: Handle = { kind: "manifest", name: "alias" };
    await withStore([{ handle: h, data }], async (store) => {
      const first = await store.load(h);
      first.fill(0);
      const ranged = await store.load(h, { offset: 0, length: 8 });
      ranged.fill(0);
      assertBytes(await store.load(h), data, "after mutating loaded bytes");
    });
  });

  readTest("rejects malformed names with TypeError", async () => {
    const bad: Handle[] = [
      { kind: "raw", name: "../escape" },
      { kind: "raw", name: "a/../../escape" },
      { kind: "raw", name: "/etc/passwd" },
      { kind: "raw", name: "a//b" },
      { kind: "raw", name: "a/./b" },
      { kind: "raw", name: "a/" },
      { kind: "raw", name: "" },
      { kind: "manifest", name: "a/b" },
      { kind: "manifest", name: ".." },
      { kind: "index", name: "." },
      { kind: "lock", name: "" },
      { kind: "lock", name: "a\0b" },
      { kind: "pack", name: "abc" },
      { kind: "pack", name: "AB".padEnd(64, "0") },
      { kind: "pack", name: "../".padEnd(64, "0") },
      { kind: "wal", name: "000000010000000000000001" },
      { kind: "wal", name: "0/000000010000000000000001" },
      { kind: "wal", name: "042/000000010000000000000001" },
      { kind: "wal", name: "18446744073709551616/000000010000000000000001" },
      { kind: "wal", name: "42/000000010000000000000001/x" },
      { kind: "wal", name: "42/00000001000000000000000a" },
      { kind: "wal", name: "42/../000000010000000000000001" },
      { kind: "wal", name: "42/RECOVERYXLOG" },
    ];
    await withStore([], async (store) => {
      for (const h of bad) {
        const label = `${h.kind} ${JSON.stringify(h.name)}`;
        await assert.rejects(store.load(h), TypeError, `load ${label}`);
        await assert.rejects(store.stat(h), TypeError, `stat ${label}`);
        if (!readOnly) {
          await assert.rejects(store.save(h, new Uint8Array(1)), TypeError, `save ${label}`);
          await assert.rejects(store.remove(h), TypeError, `remove ${label}`);
        }
      }
    });
  });

  writeTest("save overwrites an existing object", async () => {
    await withStore([], async (store) => {
      const h: Handle = { kind: "manifest", name: "over" };
      await store.save(h, bytes(100, 1));
      await store.save(h, bytes(10, 2));
      assertBytes(await store.load(h), bytes(10, 2), "after overwrite");
      assert.equal((await store.stat(h)).size, 10);
    });
  });

  writeTest("save exclusive fails with AlreadyExists on an existing name", async () => {
    await withStore([], async (store) => {
      if (!store.capabilities.exclusiveCreate) return;
      const h: Handle = { kind: "lock", name: "taken" };
      await store.save(h, bytes(5, 1));
      await assert.rejects(store.save(h, bytes(6, 2), { exclusive: true }), AlreadyExists);
      assertBytes(await store.load(h), bytes(5, 1), "after the refused save");
      await assertNames(store, "lock", ["taken"]);
    });
  });

  writeTest("save exclusive creates an absent name", async () => {
    await withStore([], async (store) => {
      if (!store.capabilities.exclusiveCreate) return;
      const h: Handle = { kind: "lock", name: "free" };
      await store.save(h, bytes(5, 1), { exclusive: true });
      assertBytes(await store.load(h), bytes(5, 1), "after exclusive save");
    });
  });

  writeTest("save exclusive lets exactly one of concurrent savers win", async () => {
    await withStore([], async (store) => {
      if (!store.capabilities.exclusiveCreate) return;
      const h: Handle = { kind: "lock", name: "race" };
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => store.save(h, bytes(8, i), { exclusive: true })),
      );
      const won = results.filter((r) => r.status === "fulfilled");
      assert.equal(won.length, 1);
      for (const r of results) {
        if (r.status === "rejected") assert.ok(r.reason instanceof AlreadyExists, String(r.reason));
      }
      await assertNames(store, "lock", ["race"]);
    });
  });

  writeTest("remove makes an object NotFound and ignores a missing one", async () => {
    await withStore([], async (store) => {
      const h = pack("gone");
      await store.save(h, bytes(10, 1));
      await store.save(pack("kept"), bytes(10, 2));
      await store.remove(h);
      await assert.rejects(store.load(h), NotFound);
      await assert.rejects(store.stat(h), NotFound);
      await assertNames(store, "pack", [pack("kept").name]);
      await store.remove(h);
      await store.remove({ kind: "raw", name: "never/was" });
      await store.remove({ kind: "manifest", name: "never" });
    });
  });

  writeTest("save copies the caller's bytes", async () => {
    await withStore([], async (store) => {
      const h: Handle = { kind: "index", name: "copied" };
      const data = bytes(64, 9);
      await store.save(h, data);
      data.fill(0);
      assertBytes(await store.load(h), bytes(64, 9), "after mutating the saved buffer");
    });
  });

  writeTest("concurrent saves of 20 names all land", async () => {
    await withStore([], async (store) => {
      const names = Array.from({ length: 20 }, (_, i) => `m${i}`);
      await Promise.all(
        names.map((n, i) => store.save({ kind: "manifest", name: n }, bytes(1000 + i, i))),
      );
      await assertNames(store, "manifest", names);
      for (const [i, n] of names.entries()) {
        assertBytes(await store.load({ kind: "manifest", name: n }), bytes(1000 + i, i), n);
      }
    });
  });

  writeTest("saveStream stores a stream of many parts, a small one and an empty one", async () => {
    await withStore([], async (store) => {
      if (store.saveStream === undefined) return;
      const cases: [Handle, Uint8Array, number][] = [
        // Larger than two S3 parts of 8 MiB, in chunks that do not divide a part.
        [{ kind: "raw", name: "big/object.bin" }, bytes(17 * 1024 * 1024 + 12345, 21), 1048583],
        [{ kind: "raw", name: "small.bin" }, bytes(5000, 22), 777],
        [{ kind: "raw", name: "empty.bin" }, new Uint8Array(0), 10],
      ];
      for (const [h, data, chunk] of cases) {
        await store.saveStream(h, chunksOf(data, chunk), data.length);
        assertBytes(await store.load(h), data, `streamed ${data.length} bytes`);
        assert.equal((await store.stat(h)).size, data.length);
      }
      await assertNames(store, "raw", cases.map(([h]) => h.name));
    });
  });

  writeTest("saveStream whose stream throws midway stores nothing under the name", async () => {
    await withStore([], async (store) => {
      if (store.saveStream === undefined) return;
      const kept: Handle = { kind: "raw", name: "kept.bin" };
      await store.save(kept, bytes(100, 1));
      for (const size of [3000, 12 * 1024 * 1024]) {
        for (const h of [{ kind: "raw", name: "fresh.bin" } as const, kept]) {
          const failure = new Error("the source broke");
          const broken = async function* (): AsyncIterable<Uint8Array> {
            yield bytes(size >> 1, 2);
            yield bytes(size >> 2, 3);
            throw failure;
          };
          await assert.rejects(store.saveStream(h, broken(), size), (e) => e === failure);
        }
        await assert.rejects(store.load({ kind: "raw", name: "fresh.bin" }), NotFound);
        assertBytes(await store.load(kept), bytes(100, 1), "the object the stream would replace");
        await assertNames(store, "raw", ["kept.bin"]);
      }
    });
  });

  writeTest("saveStream refuses a stream of another size with RangeError", async () => {
    await withStore([], async (store) => {
      if (store.saveStream === undefined) return;
      const h: Handle = { kind: "raw", name: "sized.bin" };
      for (const size of [1000, 10 * 1024 * 1024]) {
        const data = bytes(size, 4);
        const chunk = 300 * 1024 + 1;
        await assert.rejects(store.saveStream(h, chunksOf(data, chunk), size + 1), RangeError);
        await assert.rejects(store.saveStream(h, chunksOf(data, chunk), size - 1), RangeError);
        await assert.rejects(store.load(h), NotFound, `after a wrong size near ${size}`);
      }
      await assert.rejects(store.saveStream(h, chunksOf(new Uint8Array(0), 1), -1), RangeError);
      await assert.rejects(store.saveStream(h, chunksOf(new Uint8Array(0), 1), 0.5), RangeError);
      await assertNames(store, "raw", []);
    });
  });

  if (!readOnly) return;
  Deno.test({
    name: `${name} save and remove fail with ReadOnlyError`,
    fn: async () => {
      const h: Handle = { kind: "manifest", name: "m" };
      await withStore([{ handle: h, data: bytes(4, 1) }], async (store) => {
        await assert.rejects(
          store.save({ kind: "manifest", name: "new" }, bytes(4, 2)),
          ReadOnlyError,
        );
        await assert.rejects(store.remove(h), ReadOnlyError);
        if (store.saveStream !== undefined) {
          const stream = chunksOf(bytes(4, 3), 2);
          await assert.rejects(
            store.saveStream({ kind: "manifest", name: "s" }, stream, 4),
            ReadOnlyError,
          );
        }
        assertBytes(await store.load(h), bytes(4, 1), "after refused writes");
      });
    },
  });
}

/** A pack handle whose name is the SHA-256 of `label`. */
function pack(label: string): Handle {
  return { kind: "pack", name: createHash("sha256").update(label).digest("hex") };
}

/** The bytes of `data` in chunks of `size` (the last one shorter), as a stream would give them. */
async function* chunksOf(data: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let at = 0; at < data.length; at += size) {
    await Promise.resolve();
    yield data.slice(at, at + size);
  }
}

/** `size` deterministic pseudo-random bytes (xorshift32 from `seed`). */
function bytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = (seed * 2654435761 + 1) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function assertBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.ok(actual instanceof Uint8Array, `${what}: not a Uint8Array`);
  assert.equal(actual.length, expected.length, `${what}: length`);
  assert.equal(Buffer.compare(actual, expected), 0, `${what}: bytes differ`);
}

async function assertNames(store: BlobStore, kind: FileKind, expected: string[]): Promise<void> {
  const names: string[] = [];
  for await (const info of store.list(kind)) names.push(info.name);
  assert.deepEqual(names.sort(), [...expected].sort(), `list ${kind}`);
}
