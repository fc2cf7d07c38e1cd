/**
 * The blob-store output of the restorer: each file becomes the object named
 * by its path in the target store (a Databend cluster's S3 or fs storage).
 * An object is saved whole or not at all: a small one is built in memory and
 * saved; one larger than the stream threshold goes to a store with
 * `saveStream` block by block, each block checked as the driver asks for it
 * (a damaged block aborts the save, nothing takes the name). The saves in
 * flight hold a bounded number of bytes. Directories have no objects;
 * symlinks cannot be stored and are reported; names that are not valid
 * UTF-8 are refused. With `overwrite`, an object of the right size is
 * compared with its blocks (a large one range by range) and kept when equal.
 *
 * @module
 */
import type { BlobStore } from "../drivers/types.ts";
import { IntegrityError, InvalidInput } from "../errors.ts";
import type { EventSink } from "../backup/events.ts";
import type { ChunkerParams } from "../../formats/chunker.ts";
import { displayPath } from "../_byte_path.ts";
import type { Entry } from "./collect.ts";
import { NodeType } from "../../formats/tree.ts";
import type { Ledger, RestoreOutput, TargetView } from "./output.ts";
import type { RestorePlan } from "./restore.ts";
import { decodeChecked, type StoredBlock } from "./stored_block.ts";
import { sameBlocks, sameRanges } from "./same_blocks.ts";

const MiB = 1024 * 1024;

/** Bounds of a {@linkcode StoreOutput}; the defaults suit S3 and fs. */
export interface StoreOutputLimits {
  /** Saves that run at once, at most (default 8). */
  readonly saves?: number;
  /**
   * Bytes of object data the saves in flight hold, at most: an object built
   * in memory counts its size, a streamed one `streamCost` (default 64 MiB).
   * One object larger than this still goes, alone.
   */
  readonly saveBytes?: number;
  /** Objects larger than this are streamed to a store with `saveStream` (default 16 MiB). */
  readonly streamThreshold?: number;
  /**
   * What a streamed save counts against `saveBytes` (default 32 MiB): a
   * block being decoded and the driver's window (two 8 MiB parts for S3).
   */
  readonly streamCost?: number;
}

/** Options of a {@linkcode StoreOutput}. */
export interface StoreOutputOptions extends StoreOutputLimits {
  readonly onEvent?: EventSink;
}

/** Restores into the objects of a blob store (see the module). */
export class StoreOutput implements RestoreOutput {
  readonly hardLinks = false;
  readonly #target: BlobStore;
  readonly #emit: EventSink;
  readonly #saves: number;
  readonly #saveBytes: number;
  readonly #threshold: number;
  readonly #streamCost: number;
  /** Objects in the target and their sizes, listed by `inspect`. */
  #existing = new Map<string, number>();
  #ledger: Ledger | null = null;
  #manifest = "";
  readonly #inFlight = new Set<Promise<void>>();
  /** Bytes counted against `saveBytes` now, and at most. */
  #held = 0;
  #peak = 0;
  /** The first error of a save that stops the restore. */
  #failure: unknown = null;

  /** An output writing into the objects (kind "raw") of `target`. */
  constructor(target: BlobStore, options: StoreOutputOptions = {}) {
    this.#target = target;
    this.#emit = options.onEvent ?? (() => {});
    this.#saves = options.saves ?? 8;
    this.#saveBytes = options.saveBytes ?? 64 * MiB;
    this.#threshold = options.streamThreshold ?? 16 * MiB;
    this.#streamCost = options.streamCost ?? 32 * MiB;
  }

  get stopped(): boolean {
    return this.#failure !== null;
  }

  /** The most bytes counted against the saves' bound at once (see {@linkcode StoreOutputLimits.saveBytes}). */
  get peakHeld(): number {
    return this.#peak;
  }

  async inspect(): Promise<TargetView> {
    const existing = new Map<string, number>();
    for await (const f of this.#target.list("raw")) existing.set(f.name, f.size);
    this.#existing = existing;
    return {
      target: this.#target.location,
      targetNotEmpty: existing.size > 0,
      ownership: "off",
    };
  }

  /** An object in the place of a file; a directory has no object, so nothing is in its way. */
  existing(e: Entry): Promise<string | null> {
    if (e.node.type === NodeType.dir) return Promise.resolve("directory");
    const there = e.node.type === NodeType.file && this.#existing.has(e.rel);
    return Promise.resolve(there ? "object" : null);
  }

  notEmpty(): Error {
    return new InvalidInput(
      `restore target ${this.#target.location} holds ${this.#existing.size} objects: restore into an empty location, or pass --overwrite to rewrite objects that differ`,
    );
  }

  begin(
    plan: RestorePlan,
    ledger: Ledger,
    exact: { dir: string; bytes: Uint8Array } | null,
  ): Promise<void> {
    this.#ledger = ledger;
    this.#manifest = plan.manifest;
    if (exact !== null) {
      throw new InvalidInput(
        `backup ${plan.manifest} holds names that are not valid UTF-8 (in "${exact.dir}", ${
          displayPath(exact.bytes)
        }), which cannot be object names in ${this.#target.location}: restore it into a directory`,
      );
    }
    return Promise.resolve();
  }

  /** Directories have no objects. */
  dir(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * True when object `f.rel` holds exactly the blocks of `f`: read whole and
   * cut by `chunker` when small, else one block-sized range at a time (each
   * must match its block's hash), so a large object is never held whole.
   */
  async unchanged(
    f: Entry,
    chunker: ChunkerParams,
    lengths: readonly number[],
  ): Promise<boolean> {
    if (this.#existing.get(f.rel) !== f.node.size) return false;
    const h = { kind: "raw", name: f.rel } as const;
    if (f.node.size <= this.#threshold) {
      return sameBlocks(await this.#target.load(h), f.node, chunker);
    }
    return await sameRanges(
      f.node.blocks,
      lengths,
      f.node.size,
      (offset, length) => this.#target.load(h, { offset, length }),
    );
  }

  async file(f: Entry, blocks: AsyncIterable<StoredBlock>): Promise<void> {
    const h = { kind: "raw", name: f.rel } as const;
    const size = f.node.size;
    const sizeError = () =>
      new IntegrityError(
        `the blocks of ${f.rel} in backup ${this.#manifest} do not add up to its size ${size}: run bendsave verify`,
      );
    if (this.#target.saveStream !== undefined && size > this.#threshold) {
      await this.#admit(this.#streamCost);
      if (this.#failure !== null) return;
      // Blocks are read, decoded and checked one at a time, in order, as the driver asks for
      // them; a damaged one throws, the driver aborts the save and nothing takes the name.
      let damaged: IntegrityError | null = null;
      const chunks = async function* (): AsyncGenerator<Uint8Array> {
        try {
          let pos = 0;
          for await (const b of blocks) {
            const raw = decodeChecked(b, f.rel);
            if (pos + raw.length > size) break;
            pos += raw.length;
            yield raw;
          }
          if (pos !== size) throw sizeError();
        } catch (e) {
          if (e instanceof IntegrityError) damaged = e;
          throw e;
        }
      };
      this.#track(f, this.#streamCost, this.#target.saveStream(h, chunks(), size), () => damaged);
      return;
    }
    await this.#admit(size);
    if (this.#failure !== null) return;
    const data = new Uint8Array(size);
    let pos = 0;
    try {
      for await (const b of blocks) {
        const raw = decodeChecked(b, f.rel);
        if (pos + raw.length > data.length) break;
        data.set(raw, pos);
        pos += raw.length;
      }
      if (pos !== size) throw sizeError();
    } catch (e) {
      if (!(e instanceof IntegrityError)) throw e;
      this.#ledger!.failed(f.rel, e.message); // left out; the others go on
      return;
    }
    this.#track(f, size, this.#target.save(h, data), () => null);
  }

  /** Waits until a save costing `cost` bytes fits beside those in flight. */
  async #admit(cost: number): Promise<void> {
    while (
      this.#inFlight.size > 0 &&
      (this.#inFlight.size >= this.#saves || this.#held + cost > this.#saveBytes)
    ) {
      await Promise.race(this.#inFlight);
    }
  }

  /**
   * Runs a save of `f` costing `cost` bytes in flight; when it fails,
   * `damage` says whether the file was damaged (it goes to the ledger's
   * failed) or the restore must stop.
   */
  #track(f: Entry, cost: number, saving: Promise<void>, damage: () => IntegrityError | null) {
    this.#held += cost;
    this.#peak = Math.max(this.#peak, this.#held);
    const save: Promise<void> = saving.then(
      () => this.#ledger!.written(1, f.node.size),
      (e: unknown) => {
        const damaged = damage();
        if (damaged !== null) this.#ledger!.failed(f.rel, damaged.message);
        else this.#failure ??= e;
      },
    ).finally(() => {
      this.#held -= cost;
      this.#inFlight.delete(save);
    });
    this.#inFlight.add(save);
  }

  async drain(): Promise<void> {
    await Promise.all(this.#inFlight);
    if (this.#failure !== null) throw this.#failure;
  }

  link(): Promise<"made" | "kept" | "failed"> {
    return Promise.reject(new TypeError("a blob store holds no hard links"));
  }

  symlink(s: Entry): Promise<void> {
    this.#emit({
      type: "warning",
      path: s.rel,
      message: `symlink to ${
        s.node.linkTarget ?? ""
      } not restored: ${this.#target.location} cannot hold links`,
    });
    return Promise.resolve();
  }

  /** Directories have no objects, so no metadata. */
  done(): Promise<void> {
    return Promise.resolve();
  }

  /** Waits for the saves in flight: an object is saved whole or not at all. */
  async close(): Promise<void> {
    await Promise.all(this.#inFlight);
  }

  cancelled(done: number, total: number): string {
    return `${done} of ${total} objects were restored into ${this.#target.location}: ` +
      `restore again with --overwrite to complete it`;
  }
}
