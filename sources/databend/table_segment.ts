/**
 * Reads the objects a Databend segment file (`<prefix>/_sg/*`) refers to:
 * the blocks it lists and their indexes (bloom filter, inverted, vector,
 * virtual columns: every block-meta field whose name ends in `location`).
 *
 * The layouts (from `databendlabs/databend`
 * `src/query/storages/common/table_meta/src/meta/`):
 *
 * - **v0 to v2**: JSON (serde), `{"blocks": [{"location": [path, version] | path, …}], …}`.
 * - **v4** (`SegmentInfo::to_bytes`): format version (u64 LE), encoding (u8:
 *   2 MessagePack, 3 JSON), compression (u8: 0 none, 1 zstd), the sizes of
 *   the block-metas part and of the summary part (u64 LE each), then the two
 *   parts; the block metas are a list of `BlockMeta` maps with field names.
 * - **v3** wrote bincode, which bendsave does not read (refused with a reason).
 *
 * @module
 */
import { decode as decodeMsgpack } from "@msgpack/msgpack";
import { zstdDecompressSync } from "node:zlib";

const utf8 = new TextDecoder("utf-8", { fatal: true });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Every `…location` field of a block meta (any depth up to 3), as paths. */
function locationsOf(meta: unknown, out: Set<string>, depth = 0): void {
  if (!isObject(meta) || depth > 3) return;
  for (const [k, v] of Object.entries(meta)) {
    if (k.endsWith("location")) {
      const loc = Array.isArray(v) ? v[0] : v;
      if (typeof loc === "string" && loc !== "") out.add(loc);
    } else if (isObject(v)) {
      locationsOf(v, out, depth + 1);
    }
  }
}

function fromBlocks(blocks: unknown): string[] {
  if (!Array.isArray(blocks)) throw new SyntaxError("the segment has no block list");
  const out = new Set<string>();
  for (const b of blocks) {
    if (!isObject(b)) throw new SyntaxError("a block meta of the segment is not a map");
    locationsOf(b, out);
  }
  return [...out];
}

function u64(bytes: Uint8Array, at: number): number {
  if (at + 8 > bytes.length) throw new RangeError("the segment is truncated");
  const v = new DataView(bytes.buffer, bytes.byteOffset + at, 8).getBigUint64(0, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError("the segment is damaged");
  return Number(v);
}

/**
 * The objects (relative to the storage root) a segment file refers to: its
 * blocks and their index files, in the order the segment lists them.
 *
 * @throws {SyntaxError} or {RangeError} when the bytes are not a segment bendsave reads.
 */
export function decodeSegmentObjects(bytes: Uint8Array): string[] {
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  if (bytes[i] === 0x7b) {
    let json: unknown;
    try {
      json = JSON.parse(utf8.decode(bytes));
    } catch {
      throw new SyntaxError("the segment is neither valid JSON nor a binary segment");
    }
    if (!isObject(json)) throw new SyntaxError("the segment is not a JSON object");
    return fromBlocks(json["blocks"]);
  }
  const version = u64(bytes, 0);
  if (version !== 4 && version !== 3) {
    throw new RangeError(`unknown segment format version ${version} (known: 0 to 4)`);
  }
  if (bytes.length < 26) throw new RangeError("the segment is truncated");
  const encoding = bytes[8]!;
  const compression = bytes[9]!;
  const blocksSize = u64(bytes, 10);
  if (26 + blocksSize > bytes.length) throw new RangeError("the segment is truncated");
  let part = bytes.subarray(26, 26 + blocksSize);
  if (compression === 1) {
    try {
      part = new Uint8Array(zstdDecompressSync(part));
    } catch {
      throw new SyntaxError("the segment's block metas do not decompress (zstd)");
    }
  } else if (compression !== 0) {
    throw new RangeError(
      `the segment has compression ${compression}, which bendsave does not read`,
    );
  }
  if (encoding === 2) {
    let metas: unknown;
    try {
      metas = decodeMsgpack(part);
    } catch {
      throw new SyntaxError("the segment's block metas are not valid MessagePack");
    }
    return fromBlocks(metas);
  }
  if (encoding === 3) return fromBlocks(JSON.parse(utf8.decode(part)));
  throw new RangeError(
    `the segment has encoding ${encoding} (${
      encoding === 1 ? "bincode, " : ""
    }not read by bendsave)`,
  );
}
