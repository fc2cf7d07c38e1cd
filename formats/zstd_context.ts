/**
 * zstd with one reused context per thread. node:zlib's one-shot
 * `zstdCompressSync` and `zstdDecompressSync` build a stream object and a
 * new zstd context for every call: for a block of a few hundred bytes that
 * costs 60-100 µs under Deno and 15-25 µs under bun, several times the
 * compression itself, and a backup or restore of a tree of small files makes
 * one call per block (bench/RESULTS.md, "zstd contexts reused").
 *
 * The context is the native handle behind a `createZstdCompress()` (or
 * `createZstdDecompress()`) stream, driven directly: `writeSync` with
 * ZSTD_e_end compresses (or decompresses) one whole frame into an output
 * buffer, then `reset` readies it for the next. Those members are not
 * public node:zlib API, so their presence is checked once, and a runtime
 * without them (or a call that fails in an unexpected way) falls back to the
 * one-shot functions: the bytes are standard zstd frames either way, and
 * both decode with any zstd decoder.
 *
 * Errors on damaged input are reported as SyntaxError (the caller names the
 * block), and the context that saw them is dropped.
 *
 * @module
 */
import zlib from "node:zlib";

/** What this module needs of a zlib stream's native handle. */
interface NativeHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOff: number,
    inLen: number,
    out: Uint8Array,
    outOff: number,
    outLen: number,
  ): void;
  reset(): void;
  onerror?: (message: string, errno: number) => void;
}

interface Context {
  readonly handle: NativeHandle;
  /** [output bytes left, input bytes left] after a writeSync. */
  readonly state: Uint32Array;
  /** The message of the error the handle reported during the last call (bun), or null. */
  error: string | null;
}

function contextOf(stream: unknown): Context | null {
  const s = stream as { _handle?: Partial<NativeHandle>; _writeState?: unknown };
  const handle = s._handle;
  if (
    !handle || typeof handle.writeSync !== "function" || typeof handle.reset !== "function" ||
    !(s._writeState instanceof Uint32Array) || s._writeState.length < 2
  ) {
    return null;
  }
  const context: Context = { handle: handle as NativeHandle, state: s._writeState, error: null };
  // Deno throws from writeSync; bun reports through onerror (which would otherwise destroy the
  // stream asynchronously): both end up in run() below.
  context.handle.onerror = (message) => {
    context.error = String(message);
  };
  return context;
}

/** false once a runtime turned out not to have the handles: one-shot calls from then on. */
let reusable = true;
const compressors = new Map<number, Context>();
let decompressor: Context | null = null;

/**
 * One whole frame through `context` into `out`: the bytes written and the
 * input bytes left (a decompressor stops at the end of the first frame), or
 * null when the context failed (it is then dropped by the caller).
 */
function run(
  context: Context,
  input: Uint8Array,
  out: Uint8Array,
): { written: number; inputLeft: number } | null {
  context.error = null;
  try {
    context.handle.writeSync(
      zlib.constants.ZSTD_e_end,
      input,
      0,
      input.length,
      out,
      0,
      out.length,
    );
  } catch (e) {
    context.error = (e as Error)?.message ?? String(e);
  }
  if (context.error !== null) return null;
  const written = out.length - context.state[0]!;
  const inputLeft = context.state[1]!;
  try {
    context.handle.reset();
  } catch {
    return null;
  }
  return { written, inputLeft };
}

/**
 * The compression settings of every stored zstd block: `level`, no content
 * checksum (the block's id covers it). One-shot and asynchronous calls use
 * them too.
 */
export function zstdOptions(level: number): zlib.ZstdOptions {
  return {
    params: {
      [zlib.constants.ZSTD_c_compressionLevel]: level,
      [zlib.constants.ZSTD_c_checksumFlag]: 0,
    },
  };
}

function compressor(level: number): Context | null {
  let c = compressors.get(level) ?? null;
  if (c === null && reusable) {
    c = contextOf(zlib.createZstdCompress(zstdOptions(level)));
    if (c === null) reusable = false;
    else compressors.set(level, c);
  }
  return c;
}

/** An upper bound of zstd's output for `n` bytes of input (ZSTD_COMPRESSBOUND, with room). */
function compressBound(n: number): number {
  return n + (n >>> 8) + (n < 128 * 1024 ? (128 * 1024 - n) >>> 11 : 0) + 64;
}

/**
 * Blocks up to this size are compressed through the reused context, into a
 * scratch buffer of this thread, and copied out; larger ones spend far more
 * in compressing than in setting up, and go one-shot (no large scratch kept).
 */
const REUSE_MAX = 1024 * 1024;
let scratch = new Uint8Array(0);

/** Compresses `raw` into one zstd frame at `level`, without a content checksum. */
export function zstdCompress(raw: Uint8Array, level: number): Uint8Array {
  const c = raw.length <= REUSE_MAX ? compressor(level) : null;
  if (c !== null) {
    const bound = compressBound(raw.length);
    if (scratch.length < bound) scratch = new Uint8Array(compressBound(REUSE_MAX));
    const r = run(c, raw, scratch);
    // A full scratch buffer could hold a frame cut short: never taken (the bound leaves room).
    if (r !== null && r.inputLeft === 0 && r.written > 0 && r.written < scratch.length) {
      return scratch.slice(0, r.written);
    }
    if (r === null) compressors.delete(level);
  }
  const b = zlib.zstdCompressSync(raw, zstdOptions(level));
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Decompresses one zstd frame that must hold exactly `rawLength` bytes,
 * into `into` when it has room for `rawLength + 1` bytes (the result is then
 * a view of it). Throws SyntaxError when it does not decode, or decodes to
 * another length.
 */
export function zstdDecompress(
  data: Uint8Array,
  rawLength: number,
  into?: Uint8Array,
): Uint8Array {
  // A block's bytes start with its frame (FORMAT.md section 7): not with a skippable frame,
  // which some decoders would step over.
  if (data[0] !== 0x28 || data[1] !== 0xb5 || data[2] !== 0x2f || data[3] !== 0xfd) {
    throw new SyntaxError("block does not decompress (it does not start with a zstd frame)");
  }
  if (decompressor === null && reusable) {
    decompressor = contextOf(zlib.createZstdDecompress());
    if (decompressor === null) reusable = false;
  }
  // One byte more than expected, so that a longer frame shows as a full buffer.
  const out = into && into.length > rawLength
    ? into.subarray(0, rawLength + 1)
    : new Uint8Array(rawLength + 1);
  if (decompressor !== null) {
    const r = run(decompressor, data, out);
    if (r === null) {
      const message = decompressor.error;
      decompressor = null; // a context that failed is not used again
      throw new SyntaxError(
        `block does not decompress (${message ?? "zstd context reset failed"})`,
      );
    }
    // Bytes after the first frame (empty frames libzstd may add, FORMAT.md section 7) are
    // ignored; a full buffer means the frame holds more than the block.
    if (r.written !== rawLength) {
      throw new SyntaxError(
        r.written > rawLength
          ? `block decompresses to more than ${rawLength} bytes`
          : `block decompressed to ${r.written} bytes, expected ${rawLength}`,
      );
    }
    return out.subarray(0, rawLength);
  }
  let b: Uint8Array;
  try {
    b = zlib.zstdDecompressSync(data, {
      maxOutputLength: Math.max(rawLength, 1),
      chunkSize: Math.min(Math.max(rawLength + 1, 64), 8 * 1024 * 1024 + 1),
    });
  } catch (e) {
    throw new SyntaxError(`block does not decompress (${(e as Error).message})`);
  }
  if (b.length !== rawLength) {
    throw new SyntaxError(`block decompressed to ${b.length} bytes, expected ${rawLength}`);
  }
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
