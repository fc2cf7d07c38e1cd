/**
 * An in-memory blob store, for tests.
 *
 * @module
 */

import { AlreadyExists, NotFound } from "../errors.ts";
import type {
  BlobStore,
  ByteRange,
  Capabilities,
  FileInfo,
  FileKind,
  Handle,
  SaveOptions,
} from "./types.ts";
import {
  canonicalName,
  checkKind,
  checkRange,
  checkStreamSize,
  collectStream,
  describeHandle,
  objectKey,
} from "./_layout.ts";

interface Entry {
  readonly data: Uint8Array;
  readonly mtimeMs: number;
}

/**
 * A {@linkcode BlobStore} held in a `Map`, for tests. It copies bytes on save
 * and on load, so neither the caller's buffer nor a loaded result can change
 * what is stored.
 *
 * Names are checked the way `FsStore` checks them (a `TypeError` for a
 * bad name), so a test on this store catches names the real drivers reject.
 * The name of a `config` or `guide` handle is ignored; they are reported as
 * `config` and `bendsave.md`. Raw paths are a namespace of their own here,
 * while on disk they share the tree with the other kinds: a store holds either
 * repository files or raw paths, not both.
 *
 * @example
 * ```ts
 * import { MemStore } from "./mem.ts";
 *
 * const store = new MemStore();
 * await store.save({ kind: "manifest", name: "m1" }, new TextEncoder().encode("hello"));
 * const bytes = await store.load({ kind: "manifest", name: "m1" }, { offset: 1, length: 3 });
 * ```
 */
export class MemStore implements BlobStore {
  /** What this driver can do. */
  readonly capabilities: Capabilities = {
    writable: true,
    exclusiveCreate: true,
    rangedRead: true,
    name: "mem",
  };
  /** Always `"memory"`. */
  readonly location = "memory";
  #entries = new Map<string, Entry>();

  /** Stores a copy of `data` under `h`; with `exclusive`, fails with `AlreadyExists` when taken. */
  save(h: Handle, data: Uint8Array, options: SaveOptions = {}): Promise<void> {
    return Promise.try(() => {
      const key = keyOf(h);
      if (options.exclusive === true && this.#entries.has(key)) {
        throw new AlreadyExists(
          `${describeHandle(h)} already exists in memory: choose another name or remove it first`,
        );
      }
      this.#entries.set(key, { data: data.slice(), mtimeMs: Date.now() });
    });
  }

  /**
   * Stores the bytes of `chunks` (exactly `size` of them) under `h` once the
   * last one has come; when `chunks` throws or holds another number of bytes
   * (`RangeError`), nothing is stored.
   */
  async saveStream(
    h: Handle,
    chunks: AsyncIterable<Uint8Array>,
    size: number,
    options: SaveOptions = {},
  ): Promise<void> {
    keyOf(h);
    checkStreamSize(size);
    await this.save(h, await collectStream(h, chunks, size), options);
  }

  /**
   * A copy of the whole object, or of `range` of it. A range reaching past
   * the end returns the bytes that exist (possibly none).
   */
  load(h: Handle, range?: ByteRange): Promise<Uint8Array> {
    return Promise.try(() => {
      if (range !== undefined) checkRange(range);
      const entry = this.#get(h);
      if (range === undefined) return entry.data.slice();
      const start = Math.min(range.offset, entry.data.length);
      return entry.data.slice(start, Math.min(entry.data.length, start + range.length));
    });
  }

  /** Size and save time of one object. Throws `NotFound` when absent. */
  stat(h: Handle): Promise<FileInfo> {
    return Promise.try(() => {
      const entry = this.#get(h);
      return {
        kind: h.kind,
        name: canonicalName(h),
        size: entry.data.length,
        mtimeMs: entry.mtimeMs,
      };
    });
  }

  /** Every object of a kind, as a snapshot taken when iteration starts. */
  async *list(kind: FileKind): AsyncIterable<FileInfo> {
    checkKind(kind);
    const prefix = `${kind}\0`;
    const snapshot = [...this.#entries].filter(([key]) => key.startsWith(prefix));
    for (const [key, entry] of snapshot) {
      yield {
        kind,
        name: key.slice(prefix.length),
        size: entry.data.length,
        mtimeMs: entry.mtimeMs,
      };
    }
  }

  /** Removes an object; removing an absent one does nothing. */
  remove(h: Handle): Promise<void> {
    return Promise.try(() => {
      this.#entries.delete(keyOf(h));
    });
  }

  #get(h: Handle): Entry {
    const entry = this.#entries.get(keyOf(h));
    if (entry === undefined) {
      throw new NotFound(`${describeHandle(h)} was not found in memory: check the name`);
    }
    return entry;
  }
}

/** The map key of a handle; throws `TypeError` on a bad name, like every driver. */
function keyOf(h: Handle): string {
  objectKey(h); // checks the kind and the name
  return `${h.kind}\0${canonicalName(h)}`;
}
