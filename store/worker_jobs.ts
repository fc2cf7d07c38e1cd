/**
 * The engine's job kinds, run on the {@linkcode WorkerPool} (threads or
 * in-process): reading files for a backup (`backup.read`), cutting bytes
 * read on the main thread for a backup (`backup.chunk`), writing files
 * for a restore (`restore.write`) and checking packs for
 * `verify --read-data` (`verify.pack`), and reading, hashing and
 * compressing WAL files for the background pusher (`wal.encode`). It imports only pure handler
 * modules, so the worker entry (store/worker_entry.ts) loads little.
 *
 * @module
 */
import {
  ByteBlocks,
  type FileJob,
  type FileResult,
  type ReaderSettings,
  readFileBlocks,
  sealResults,
  threadSealKey,
} from "./archiver/file_blocks.ts";
import { keyedId } from "../formats/master_key.ts";
import { sealBlock } from "../formats/block_seal.ts";
import { freeWhole } from "./free_buffer.ts";
import { FileWriter, type WriteOp, type WriteReport } from "./restore/file_writer.ts";
import type { PackCheck } from "./pack_check.ts";
import type { JobKind, WorkerPool } from "./worker_pool.ts";
import { type CompressionOptions, encodeBlock } from "../formats/codec.ts";
import { ID_LENGTH, sha256 } from "../formats/hash.ts";
import * as fs from "node:fs";
import { readErrorCode, readWholeFile } from "./wal_file_read.ts";

/** A batch of files to read, with the backup's settings. */
export interface ReadBatch {
  readonly settings: ReaderSettings;
  readonly jobs: FileJob[];
}

/**
 * A piece of the bytes of one entry (`stream`, the caller's job number)
 * read on the main thread: an object loaded whole or in ranges, a stream.
 * Every piece of an entry must go to one lane, in order; `end` marks the
 * last; `abort` forgets the entry (a read that failed halfway).
 */
export interface ChunkPiece {
  readonly settings: ReaderSettings;
  readonly stream: number;
  readonly data?: Uint8Array;
  readonly end?: boolean;
  readonly abort?: boolean;
  /** On the first piece: ids the repository already holds (as {@linkcode FileJob.known}). */
  readonly known?: Uint8Array;
}

/** Results are sent in parts of about this many data bytes (a message costs much). */
const PART_BYTES = 4 * 1024 * 1024;

/**
 * Ids a reader remembers having sent with data (they are then sent
 * without): at most this many, the oldest forgotten first. A forgotten id
 * only costs compressing that block again; the writer keeps one copy.
 */
export const SEEN_LIMIT = 65_536;

/** A set of strings that forgets its oldest entries beyond `limit`. */
export class BoundedSet extends Set<string> {
  readonly #limit: number;
  /** A set holding at most `limit` strings. */
  constructor(limit: number) {
    super();
    this.#limit = limit;
  }
  /** Adds `value`, forgetting the oldest entry when the set is full. */
  override add(value: string): this {
    if (!this.has(value) && this.size >= this.#limit) {
      const oldest = this.values().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    return super.add(value);
  }
}

/** `backup.read`: reads, chunks, hashes and compresses files; parts are results in file order. */
export const backupRead: JobKind<ReadBatch, void, FileResult[]> = {
  create() {
    const seen = new BoundedSet(SEEN_LIMIT);
    return {
      async run(batch, ctx) {
        let results: FileResult[] = [];
        let bytes = 0;
        const send = async () => {
          if (results.length === 0) return;
          const [r, b] = [results, bytes];
          results = [];
          bytes = 0;
          await sealResults(r, batch.settings);
          await ctx.part(r, joinBlocks(r), b);
        };
        for (const job of batch.jobs) {
          for (const r of readFileBlocks(job, batch.settings, seen)) {
            for (const b of r.blocks) if (b.data) bytes += b.data.length;
            results.push(r);
            if (bytes >= PART_BYTES) await send();
          }
        }
        await send();
      },
    };
  },
};

/**
 * `backup.chunk`: cuts, hashes and compresses the pieces of an entry read
 * on the main thread; the one part of each piece is that entry's result so
 * far (`done` on the last piece), as `backup.read` reports a file.
 */
export const backupChunk: JobKind<ChunkPiece, void, FileResult[]> = {
  create() {
    const seen = new BoundedSet(SEEN_LIMIT);
    const open = new Map<number, ByteBlocks>();
    return {
      async run(piece, ctx) {
        if (piece.abort) {
          open.delete(piece.stream);
          return;
        }
        let blocks = open.get(piece.stream);
        if (!blocks) {
          blocks = new ByteBlocks(piece.settings, seen, piece.known);
          open.set(piece.stream, blocks);
        }
        if (piece.data) blocks.push(piece.data);
        if (piece.end) {
          blocks.finish();
          open.delete(piece.stream);
        }
        const out = blocks.take();
        let bytes = 0;
        for (const b of out) if (b.data) bytes += b.data.length;
        const r: FileResult = {
          job: piece.stream,
          blocks: out,
          done: piece.end === true,
          bytesRead: blocks.bytesRead,
        };
        await sealResults([r], piece.settings);
        await ctx.part([r], joinBlocks([r]), bytes);
      },
      close: () => open.clear(),
    };
  },
};

/**
 * Moves the block ids and data of `results` into two buffers (each block's
 * `id` and `data` become views of them) and returns them, to transfer with
 * the results: the receiver gets two buffers per part rather than two per
 * block (small files make tens of thousands of blocks a second, and every
 * small buffer costs its thread a backing store until a full collection;
 * the pack writer copies the data out, the archiver the ids). The blocks'
 * own buffers are freed: nothing but the results may hold them.
 */
export function joinBlocks(results: FileResult[]): ArrayBuffer[] {
  let count = 0;
  let total = 0;
  for (const r of results) {
    for (const b of r.blocks) {
      count++;
      if (b.data) total += b.data.length;
    }
  }
  if (count === 0) return [];
  const ids = new Uint8Array(count * ID_LENGTH);
  const data = new Uint8Array(total);
  // Each block's own buffer (the encoder's, or the sealed copy) is dead once copied: freed
  // after the loop, not when a collection finds it.
  const copied: Uint8Array[] = [];
  let at = 0;
  let pos = 0;
  for (const r of results) {
    for (let i = 0; i < r.blocks.length; i++) {
      const b = r.blocks[i]!;
      ids.set(b.id, at);
      const id = ids.subarray(at, at + ID_LENGTH);
      at += ID_LENGTH;
      if (!b.data) {
        r.blocks[i] = { ...b, id };
        continue;
      }
      data.set(b.data, pos);
      copied.push(b.data);
      r.blocks[i] = { ...b, id, data: data.subarray(pos, pos + b.data.length) };
      pos += b.data.length;
    }
  }
  for (const d of copied) freeWhole(d);
  return total > 0 ? [ids.buffer, data.buffer] : [ids.buffer];
}

/**
 * `restore.write`: applies write steps on one lane; a file's steps may span
 * batches (they must go to the same lane; a shared large file's runs go to
 * every lane, each lane's share, runs and release in order). Closing removes
 * the temporary files of files not complete.
 */
export const restoreWrite: JobKind<WriteOp[], WriteReport> = {
  create() {
    const writer = new FileWriter();
    return {
      run: async (ops) => {
        try {
          return await writer.apply(ops);
        } finally {
          // Each block's bytes are a copy of their own, made for this job (dir_output.ts) and
          // written by now: freed at once, not when a collection finds them.
          for (const op of ops) {
            if (op.op === "blocks" || op.op === "run") {
              for (const b of op.blocks) freeWhole(b.data);
            }
          }
        }
      },
      close: () => writer.abort(),
    };
  },
};

/**
 * `verify.pack`: checks one pack's bytes against its name and its blocks' ids
 * (and returns its tree blocks' content when asked).
 * pack_check.ts is imported on first use: formats/pack.ts awaits at its top
 * level (the CRC-32C hasher), and in the bun single executable a worker
 * whose static imports hold a top-level await never finishes loading.
 */
export const verifyPack: JobKind<
  {
    name: string;
    bytes: Uint8Array;
    keepTrees?: boolean;
    masterKey?: Uint8Array;
    /** `bytes` was transferred to this job: nothing else holds it, so it is freed when checked. */
    transferred?: boolean;
  },
  PackCheck
> = {
  create() {
    let module: Promise<typeof import("./pack_check.ts")> | null = null;
    return {
      run: async ({ name, bytes, keepTrees, masterKey, transferred }) => {
        const m = await (module ??= import("./pack_check.ts"));
        try {
          return await m.checkPack(name, bytes, keepTrees === true, masterKey);
        } finally {
          if (transferred === true) freeWhole(bytes);
        }
      },
    };
  },
};

/** A block hashed and compressed by `wal.encode`. */
export interface EncodedBlock {
  /** The block's id: its SHA-256, or with a master key its keyed id. */
  readonly id: Uint8Array;
  /** The plain SHA-256 of the block (with a master key; without one it is `id`). */
  readonly sha256: Uint8Array;
  readonly codec: number;
  /** The compressed bytes; with a master key sealed (`sealed` is then true). */
  readonly data: Uint8Array;
  readonly sealed: boolean;
}

/**
 * Hashes one block (its id) and compresses it. With an encrypted
 * repository's `masterKey` the id is keyed, the plain SHA-256 is returned
 * beside it (the pusher's spool status) and the block is sealed.
 */
async function encodeOne(
  raw: Uint8Array,
  compression: CompressionOptions,
  masterKey: Uint8Array | undefined,
): Promise<EncodedBlock> {
  const plain = sha256(raw);
  const e = encodeBlock(raw, compression);
  if (!masterKey) return { id: plain, sha256: plain, codec: e.codec, data: e.data, sealed: false };
  const id = keyedId(masterKey.subarray(32), raw);
  const data = await sealBlock(await threadSealKey(masterKey), id, e.data);
  return { id, sha256: plain, codec: e.codec, data, sealed: true };
}

/** What `wal.encode` made of a WAL file. */
export type EncodedWalFile =
  /** The file as one block: its size, its first bytes (the segment header) and the block. */
  | {
    readonly kind: "block";
    readonly size: number;
    readonly head: Uint8Array;
    readonly block: EncodedBlock;
  }
  /** Larger than `maxWhole` (not read): the caller reads and cuts it. */
  | { readonly kind: "large"; readonly size: number }
  /** It could not be read: the errno code (or the message). */
  | { readonly kind: "unreadable"; readonly code: string };

/**
 * `wal.encode`: reads one WAL file of at most `maxWhole` bytes, hashes and
 * compresses it as one block, and returns its first
 * `headBytes` bytes beside it for the caller's checks of the segment
 * header; the background pusher sends it each file to push, so its
 * 16 MiB are read on this thread and never cross to the caller's.
 */
export const walEncode: JobKind<
  {
    readonly file: string;
    readonly maxWhole: number;
    readonly headBytes: number;
    readonly compression: CompressionOptions;
    readonly masterKey?: Uint8Array;
  },
  EncodedWalFile
> = {
  create() {
    return {
      async run({ file, maxWhole, headBytes, compression, masterKey }) {
        let raw: Uint8Array;
        try {
          const size = fs.statSync(file).size;
          if (size > maxWhole) return { kind: "large", size };
          raw = readWholeFile(file);
          if (raw.length > maxWhole) return { kind: "large", size: raw.length };
        } catch (e) {
          return { kind: "unreadable", code: readErrorCode(e) };
        }
        const head = raw.slice(0, headBytes);
        const block = await encodeOne(raw, compression, masterKey);
        return { kind: "block", size: raw.length, head, block };
      },
    };
  },
};

/** Every job kind of the engine, by name. */
export const ENGINE_JOBS = {
  "backup.read": backupRead,
  "backup.chunk": backupChunk,
  "wal.encode": walEncode,
  "restore.write": restoreWrite,
  "verify.pack": verifyPack,
} as const;

/** A pool running the engine's jobs. */
export type EnginePool = WorkerPool<typeof ENGINE_JOBS>;
