import assert from "node:assert/strict";
import {
  AccessDenied,
  AlreadyExists,
  NotFound,
  StoreUnreachable,
  TransientError,
} from "../errors.ts";
import { runConformanceSuite } from "./conformance.ts";
import type { ListAfter } from "./list_after.ts";
import { MemStore } from "./mem.ts";
import {
  isTransient,
  type RetryEvent,
  type RetryOptions,
  retryTransient,
  withRetry,
} from "./retry.ts";
import type { BlobStore, ByteRange, FileInfo, FileKind, Handle, SaveOptions } from "./types.ts";

type Op = "save" | "load" | "stat" | "remove" | "list";

/**
 * A MemStore whose operations fail on chosen calls: `failures[op]` is a list
 * of errors (or nulls for success) consumed one per call.
 */
class FlakyStore implements BlobStore {
  readonly inner = new MemStore();
  readonly calls: Record<Op, number> = { save: 0, load: 0, stat: 0, remove: 0, list: 0 };
  readonly failures: Partial<Record<Op, (Error | null)[]>> = {};
  /** Fail `list` after yielding this many items of a listing (once per entry). */
  readonly listFailAfter: number[] = [];
  /** Store the object before failing a save (a reply lost after the write). */
  landBeforeFailing = false;

  get capabilities() {
    return this.inner.capabilities;
  }
  get location() {
    return "flaky";
  }
  #next(op: Op): void {
    this.calls[op]++;
    const e = this.failures[op]?.shift();
    if (e) throw e;
  }
  async save(h: Handle, data: Uint8Array, options?: SaveOptions): Promise<void> {
    if (this.landBeforeFailing && (this.failures.save?.[0] ?? null) !== null) {
      await this.inner.save(h, data, options);
    }
    this.#next("save");
    await this.inner.save(h, data, options);
  }
  load(h: Handle, range?: ByteRange): Promise<Uint8Array> {
    this.#next("load");
    return this.inner.load(h, range);
  }
  stat(h: Handle): Promise<FileInfo> {
    this.#next("stat");
    return this.inner.stat(h);
  }
  remove(h: Handle): Promise<void> {
    this.#next("remove");
    return this.inner.remove(h);
  }
  async *list(kind: FileKind): AsyncIterable<FileInfo> {
    yield* this.#listFrom(kind, null);
  }
  async *#listFrom(kind: FileKind, after: string | null): AsyncIterable<FileInfo> {
    this.calls.list++;
    const all: FileInfo[] = [];
    for await (const info of this.inner.list(kind)) all.push(info);
    all.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    const failAfter = this.listFailAfter.shift();
    let n = 0;
    for (const info of all) {
      if (after !== null && info.name <= after) continue;
      if (failAfter !== undefined && n === failAfter) {
        throw new TransientError("the listing broke: try again");
      }
      n++;
      yield info;
    }
  }
  /** Used by the resumable variant. */
  listFromFor(kind: FileKind, after: string): AsyncIterable<FileInfo> {
    return this.#listFrom(kind, after);
  }
}

class ResumableFlakyStore extends FlakyStore implements ListAfter {
  readonly resumedAfter: string[] = [];
  listAfter(kind: FileKind, after: string): AsyncIterable<FileInfo> {
    this.resumedAfter.push(after);
    return this.listFromFor(kind, after);
  }
}

const transient = () => new TransientError("S3 answered 503 SlowDown: try again later");
const h: Handle = { kind: "manifest", name: "m1" };

function options(events: RetryEvent[], extra: RetryOptions = {}): RetryOptions {
  return {
    baseDelayMs: 100,
    maxDelayMs: 1000,
    random: () => 0.5,
    sleep: () => Promise.resolve(),
    onRetry: (e) => events.push(e),
    ...extra,
  };
}

runConformanceSuite("withRetry(MemStore)", () =>
  Promise.resolve({
    store: withRetry(new MemStore(), { sleep: () => Promise.resolve() }),
    cleanup: () => Promise.resolve(),
  }));

Deno.test("withRetry retries transient failures until an attempt succeeds", async () => {
  const inner = new FlakyStore();
  await inner.inner.save(h, new Uint8Array([1, 2, 3]));
  inner.failures.load = [transient(), transient(), null];
  const events: RetryEvent[] = [];
  const store = withRetry(inner, options(events));
  assert.deepEqual([...await store.load(h)], [1, 2, 3]);
  assert.equal(inner.calls.load, 3);
  assert.deepEqual(events.map((e) => e.attempt), [1, 2]);
  assert.equal(events[0]!.operation, 'load manifest "m1"');
  assert.match(events[0]!.error, /503 SlowDown/);
});

Deno.test("withRetry gives up after the configured attempts with the last error", async () => {
  const inner = new FlakyStore();
  inner.failures.save = Array.from({ length: 10 }, transient);
  const events: RetryEvent[] = [];
  const store = withRetry(inner, options(events, { attempts: 4 }));
  await assert.rejects(store.save(h, new Uint8Array([1])), TransientError);
  assert.equal(inner.calls.save, 4);
  assert.equal(events.length, 3);
});

Deno.test("withRetry gives up when the total time is spent, before the attempts are", async () => {
  // Each attempt takes 30 s (a timeout); the bound is 100 s: attempts at 0, 30, 60, 90 s.
  let clock = 0;
  const inner = new FlakyStore();
  const events: RetryEvent[] = [];
  const store = withRetry(
    {
      capabilities: inner.capabilities,
      location: inner.location,
      save: (h, d, o) => inner.save(h, d, o),
      load: (h, r) => inner.load(h, r),
      remove: (h) => inner.remove(h),
      list: (k) => inner.list(k),
      stat: (h) => {
        clock += 30_000;
        return inner.stat(h);
      },
    },
    options(events, { attempts: 20, totalMs: 100_000, random: () => 0, now: () => clock }),
  );
  inner.failures.stat = Array.from({ length: 20 }, transient);
  await assert.rejects(store.stat(h), TransientError);
  assert.equal(inner.calls.stat, 4);
  assert.equal(events.length, 3);
});

Deno.test("retryTransient retries and reports like the wrapper, and rethrows permanent errors", async () => {
  const events: RetryEvent[] = [];
  let calls = 0;
  const value = await retryTransient('open of bucket "b"', () => {
    calls++;
    return calls < 3 ? Promise.reject(transient()) : Promise.resolve(7);
  }, options(events));
  assert.equal(value, 7);
  assert.deepEqual(events.map((e) => [e.operation, e.attempt]), [
    ['open of bucket "b"', 1],
    ['open of bucket "b"', 2],
  ]);
  const denied = new AccessDenied("no: check the credentials");
  await assert.rejects(
    retryTransient("x", () => Promise.reject(denied), options(events)),
    (e) => e === denied,
  );
});

Deno.test("withRetry does not retry permanent errors", async () => {
  const permanent: Error[] = [
    new AccessDenied("access denied: check the credentials and the bucket policy"),
    new NotFound("absent"),
    new AlreadyExists("taken"),
    new StoreUnreachable("cannot reach S3 endpoint http://127.0.0.1:1: check the network"),
    new TypeError("bad name"),
    new RangeError("bad range"),
    new Error("an unknown failure"),
  ];
  for (const error of permanent) {
    const inner = new FlakyStore();
    inner.failures.stat = [error];
    const events: RetryEvent[] = [];
    const store = withRetry(inner, options(events));
    await assert.rejects(store.stat(h), (e) => e === error);
    assert.equal(inner.calls.stat, 1, error.name);
    assert.equal(events.length, 0, error.name);
  }
});

Deno.test("withRetry retries system errors such as ECONNRESET and EPIPE", async () => {
  for (const code of ["ECONNRESET", "EPIPE", "ETIMEDOUT"]) {
    const inner = new FlakyStore();
    const error = Object.assign(new Error(`socket: ${code}`), { code });
    inner.failures.remove = [error, null];
    const store = withRetry(inner, options([]));
    await store.remove(h);
    assert.equal(inner.calls.remove, 2, code);
  }
  assert.equal(isTransient(Object.assign(new Error("x"), { code: "ENOENT" })), false);
});

Deno.test("withRetry delays grow exponentially, are capped and jittered by random", async () => {
  const inner = new FlakyStore();
  inner.failures.load = Array.from({ length: 7 }, transient);
  const slept: number[] = [];
  const events: RetryEvent[] = [];
  const randoms = [0, 0.5, 0.999, 1, 0.25, 0.5, 0.5];
  const store = withRetry(inner, {
    attempts: 8,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    random: () => randoms.shift()!,
    sleep: (ms) => {
      slept.push(ms);
      return Promise.resolve();
    },
    onRetry: (e) => events.push(e),
  });
  await assert.rejects(store.load(h), NotFound); // the 8th attempt reaches the empty store
  // caps: 100, 200, 400, 800, 1000, 1000, 1000
  assert.deepEqual(slept, [0, 100, 399, 800, 250, 500, 500]);
  assert.deepEqual(events.map((e) => e.delayMs), slept);
  for (const [i, e] of events.entries()) {
    assert.ok(e.delayMs <= Math.min(1000, 100 * 2 ** i), `delay ${i} within its cap`);
  }
});

Deno.test("withRetry waits real time by default", async () => {
  const inner = new FlakyStore();
  await inner.inner.save(h, new Uint8Array([9]));
  inner.failures.load = [transient()];
  const store = withRetry(inner, { baseDelayMs: 30, random: () => 1 });
  const start = performance.now();
  await store.load(h);
  assert.ok(performance.now() - start >= 25);
});

Deno.test("withRetry resumes a broken listing after the last name with listAfter", async () => {
  const inner = new ResumableFlakyStore();
  for (let i = 0; i < 10; i++) {
    await inner.inner.save({ kind: "index", name: `i${i}` }, new Uint8Array(1));
  }
  inner.listFailAfter.push(4, 3);
  const events: RetryEvent[] = [];
  const store = withRetry(inner, options(events));
  const names: string[] = [];
  for await (const info of store.list("index")) names.push(info.name);
  assert.deepEqual(names, Array.from({ length: 10 }, (_, i) => `i${i}`));
  assert.deepEqual(inner.resumedAfter, ["i3", "i6"]);
  assert.deepEqual(events.map((e) => [e.operation, e.attempt]), [["list index", 1], [
    "list index",
    1,
  ]]);
});

Deno.test("withRetry restarts a broken listing without listAfter and skips what it yielded", async () => {
  const inner = new FlakyStore();
  for (let i = 0; i < 6; i++) {
    await inner.inner.save({ kind: "lock", name: `l${i}` }, new Uint8Array(1));
  }
  inner.listFailAfter.push(2, 0, 5);
  const store = withRetry(inner, options([]));
  const names: string[] = [];
  for await (const info of store.list("lock")) names.push(info.name);
  assert.deepEqual(names, ["l0", "l1", "l2", "l3", "l4", "l5"]);
  assert.equal(inner.calls.list, 4);
});

Deno.test("withRetry gives up on a listing that keeps failing at the same place", async () => {
  const inner = new ResumableFlakyStore();
  for (let i = 0; i < 3; i++) {
    await inner.inner.save({ kind: "index", name: `i${i}` }, new Uint8Array(1));
  }
  inner.listFailAfter.push(1, 0, 0);
  const store = withRetry(inner, options([], { attempts: 3 }));
  const names: string[] = [];
  await assert.rejects(async () => {
    for await (const info of store.list("index")) names.push(info.name);
  }, TransientError);
  assert.deepEqual(names, ["i0"]);
});

Deno.test("withRetry treats an exclusive save whose lost reply had landed as done", async () => {
  const inner = new FlakyStore();
  inner.landBeforeFailing = true;
  inner.failures.save = [transient(), null];
  const store = withRetry(inner, options([]));
  await store.save(h, new Uint8Array([4, 5]), { exclusive: true });
  assert.deepEqual([...await store.load(h)], [4, 5]);
  // Another writer's object, stored while our attempt failed, still makes the save fail.
  const other: Handle = { kind: "manifest", name: "m2" };
  inner.landBeforeFailing = false;
  inner.failures.save = [transient(), null];
  await inner.inner.save(other, new Uint8Array([9]));
  await assert.rejects(store.save(other, new Uint8Array([6]), { exclusive: true }), AlreadyExists);
  assert.deepEqual([...await store.load(other)], [9]);
});

Deno.test("withRetry reports AlreadyExists at once when no attempt failed", async () => {
  const inner = new FlakyStore();
  await inner.inner.save(h, new Uint8Array([1]));
  const store = withRetry(inner, options([]));
  await assert.rejects(store.save(h, new Uint8Array([1]), { exclusive: true }), AlreadyExists);
  assert.equal(inner.calls.save, 1);
  assert.equal(inner.calls.load, 0);
});

Deno.test("withRetry rejects invalid options with RangeError", () => {
  assert.throws(() => withRetry(new MemStore(), { attempts: 0 }), RangeError);
  assert.throws(() => withRetry(new MemStore(), { baseDelayMs: -1 }), RangeError);
  assert.throws(() => withRetry(new MemStore(), { maxDelayMs: Number.NaN }), RangeError);
});

Deno.test("withRetry has saveStream exactly when the inner store has it, and passes it through", async () => {
  const inner = new MemStore();
  const wrapped = withRetry(inner);
  assert.equal(typeof wrapped.saveStream, "function");
  const chunks = async function* (): AsyncIterable<Uint8Array> {
    yield new Uint8Array([1, 2]);
    yield new Uint8Array([3]);
  };
  await wrapped.saveStream!({ kind: "raw", name: "s.bin" }, chunks(), 3);
  assert.deepEqual([...await inner.load({ kind: "raw", name: "s.bin" })], [1, 2, 3]);
  const plain: BlobStore = {
    capabilities: inner.capabilities,
    location: inner.location,
    save: (h, data) => inner.save(h, data),
    load: (h, range) => inner.load(h, range),
    stat: (h) => inner.stat(h),
    list: (kind) => inner.list(kind),
    remove: (h) => inner.remove(h),
  };
  assert.equal(withRetry(plain).saveStream, undefined);
});
