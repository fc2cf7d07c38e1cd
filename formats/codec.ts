/**
 * Block codecs. Each stored block records its codec, so a repository can mix
 * them: zstd (native node:zlib, the default), deflate (raw RFC 1951 through
 * fflate, a portable pure-JS codec any future reader can find), and raw for
 * blocks that do not compress (Databend's parquet files are compressed
 * already).
 *
 * @module
 */
import zlib from "node:zlib";
import { deflateSync, inflateSync } from "fflate";
import { zstdCompress, zstdDecompress, zstdOptions } from "./zstd_context.ts";

/** Codec numbers as stored in pack trailers and index files. Never renumber. */
export const Codec = { raw: 0, zstd: 1, deflate: 2 } as const;
/** A codec number. */
export type Codec = typeof Codec[keyof typeof Codec];
/** The codec names accepted in configuration. */
export type CompressionName = "zstd" | "deflate" | "none";

/** Compression settings of a repository. */
export interface CompressionOptions {
  readonly codec: CompressionName;
  /** Codec level (zstd 1-19, deflate 1-9). */
  readonly level: number;
  /**
   * A block is stored raw unless compression saves at least this fraction
   * of its size (0.03 = 3%).
   */
  readonly minSaving: number;
}

/** The default: zstd level 1 (bench/RESULTS.md), stored raw unless it saves 3%. */
export const DEFAULT_COMPRESSION: CompressionOptions = { codec: "zstd", level: 1, minSaving: 0.03 };

/** Blocks smaller than this are stored raw: compressing them costs more than it saves. */
export const MIN_COMPRESS_SIZE = 64;

/** The result of compressing a block. */
export interface Encoded {
  readonly codec: Codec;
  readonly data: Uint8Array;
}

function view(b: Uint8Array | Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Compresses one block, or returns it raw when that saves too little.
 *
 * @example
 * ```ts
 * import { encodeBlock, decodeBlock, DEFAULT_COMPRESSION } from "./codec.ts";
 * const e = encodeBlock(new Uint8Array(1000), DEFAULT_COMPRESSION);
 * decodeBlock(e.codec, e.data, 1000).length; // 1000
 * ```
 */
export function encodeBlock(raw: Uint8Array, options: CompressionOptions): Encoded {
  if (options.codec === "none" || raw.length < MIN_COMPRESS_SIZE) {
    return { codec: Codec.raw, data: raw };
  }
  if (options.codec === "zstd") {
    return chooseEncoded(raw, Codec.zstd, zstdCompress(raw, options.level), options);
  }
  return chooseEncoded(
    raw,
    Codec.deflate,
    deflateSync(raw, { level: options.level as 1 }),
    options,
  );
}

/** The compressed form, or the raw block when compression saves too little. */
function chooseEncoded(
  raw: Uint8Array,
  codec: Codec,
  data: Uint8Array,
  options: CompressionOptions,
): Encoded {
  if (data.length > raw.length * (1 - options.minSaving)) return { codec: Codec.raw, data: raw };
  return { codec, data };
}

/**
 * {@linkcode encodeBlock} off the calling thread for zstd (node:zlib's
 * asynchronous compression runs on the runtime's thread pool), so that one
 * thread can hash the next block, or another WAL file, meanwhile. The same
 * bytes as encodeBlock; deflate and tiny blocks are encoded at once.
 */
export function encodeBlockAsync(raw: Uint8Array, options: CompressionOptions): Promise<Encoded> {
  if (options.codec !== "zstd" || raw.length < MIN_COMPRESS_SIZE) {
    return Promise.resolve(encodeBlock(raw, options));
  }
  return new Promise((resolve, reject) =>
    zlib.zstdCompress(raw, zstdOptions(options.level), (e, out) => {
      if (e) reject(e);
      else resolve(chooseEncoded(raw, Codec.zstd, view(out), options));
    })
  );
}

/** This thread's output buffer of {@linkcode decodeBlockTransient}. */
let transient = new Uint8Array(0);

/**
 * {@linkcode decodeBlock} into one buffer this thread reuses: the result is
 * valid only until the next call (for content that is hashed and dropped,
 * as `verify --read-data` does with every block). A zstd block of a pack
 * then leaves no garbage behind, where a new buffer per block piled up
 * between collections.
 */
export function decodeBlockTransient(
  codec: number,
  data: Uint8Array,
  rawLength: number,
): Uint8Array {
  if (codec === Codec.zstd && transient.length <= rawLength) {
    transient = new Uint8Array(Math.max(rawLength + 1, 1 << 20));
  }
  return decodeBlock(codec, data, rawLength, transient);
}

/**
 * Decompresses one stored block. Throws SyntaxError when the bytes cannot be
 * decoded or do not decode to `rawLength` bytes. A zstd block decodes into
 * `into` when it has room for `rawLength + 1` bytes (the result is then a
 * view of it).
 */
export function decodeBlock(
  codec: number,
  data: Uint8Array,
  rawLength: number,
  into?: Uint8Array,
): Uint8Array {
  let out: Uint8Array;
  try {
    switch (codec) {
      case Codec.raw:
        out = data;
        break;
      case Codec.zstd:
        return zstdDecompress(data, rawLength, into);
      case Codec.deflate:
        // One spare byte: fflate silently drops output past the end of `out`
        // and returns `out` whole for empty input, so only a longer buffer
        // lets the length check below catch both.
        out = inflateSync(data, { out: new Uint8Array(rawLength + 1) });
        break;
      default:
        throw new SyntaxError(`unknown codec ${codec}`);
    }
  } catch (e) {
    if (e instanceof SyntaxError) throw e;
    throw new SyntaxError(`block does not decompress (${(e as Error).message})`);
  }
  if (out.length !== rawLength) {
    throw new SyntaxError(`block decompressed to ${out.length} bytes, expected ${rawLength}`);
  }
  return out;
}

/** Parses a codec name from configuration; throws RangeError on an unknown one. */
export function parseCompressionName(s: string): CompressionName {
  if (s === "zstd" || s === "deflate" || s === "none") return s;
  throw new RangeError(`unknown compression "${s}": use zstd, deflate or none`);
}
