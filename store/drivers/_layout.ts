/**
 * The repository layout every driver shares: where each typed name lives
 * as a relative, `/`-separated key, how names are checked, and the reverse
 * mapping used when listing.
 *
 * | kind       | key                                    |
 * |------------|----------------------------------------|
 * | `config`   | `config`                               |
 * | `guide`    | `bendsave.md`                          |
 * | `manifest` | `manifests/<name>`                     |
 * | `pack`     | `packs/<first two hex digits>/<name>`  |
 * | `index`    | `index/<name>`                         |
 * | `lock`     | `locks/<name>`                         |
 * | `key`      | `keys/<name>` (encrypted repositories) |
 * | `wal`      | `wal/<system id>/<WAL file name>`      |
 * | `raw`      | the relative path itself               |
 *
 * @module
 */
import type { ByteRange, FileKind, Handle } from "./types.ts";
import { parseWalKey } from "../../formats/wal_name.ts";

/** Pack names: 64 lowercase hex digits. */
export const PACK_NAME = /^[0-9a-f]{64}$/;

/** Directory of the kinds stored one file per name. */
export const KIND_DIRS = {
  manifest: "manifests",
  index: "index",
  lock: "locks",
  key: "keys",
} as const;

/** File name of the singleton kinds. */
export const SINGLETONS = { config: "config", guide: "bendsave.md" } as const;

/** Every file kind, in a fixed order. */
export const FILE_KINDS: readonly FileKind[] = [
  "config",
  "guide",
  "manifest",
  "pack",
  "index",
  "lock",
  "key",
  "raw",
  "wal",
];

/** Directory of WAL archive records (`wal/<system id>/<WAL file name>`, since format 1.2). */
export const WAL_DIR = "wal";

/** True when `name` is a WAL record name: a decimal system identifier, `/`, a WAL file name. */
export function isWalRecordName(name: string): boolean {
  return parseWalKey(name) !== null;
}

const KINDS: ReadonlySet<string> = new Set<string>(FILE_KINDS);

/** Prefix of temporary files (never listed, removed by vacuum). */
export const TEMP_PREFIX = ".tmp-";

/** The fan-out directories of packs: two lowercase hex digits. */
export const FAN_OUT_DIR = /^[0-9a-f]{2}$/;

/** Throws TypeError unless `kind` is a file kind. */
export function checkKind(kind: string): void {
  if (!KINDS.has(kind)) throw new TypeError(`unknown file kind "${String(kind)}"`);
}

/** The name a handle is reported under (the file name for the singleton kinds). */
export function canonicalName(h: Handle): string {
  return h.kind === "config" || h.kind === "guide" ? SINGLETONS[h.kind] : h.name;
}

/** A handle as a short phrase for messages. */
export function describeHandle(h: Handle): string {
  return `${h.kind} "${canonicalName(h)}"`;
}

/** True when `name` is one path segment (not empty, `.` or `..`; no `/` or NUL). */
export function isValidSegment(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/") &&
    !name.includes("\0");
}

/** Throws TypeError unless `name` is a plain relative path. */
export function checkRawPath(name: string): void {
  if (typeof name !== "string" || name === "") {
    throw new TypeError(`raw path "${String(name)}" is empty: give a relative path`);
  }
  if (name.startsWith("/")) {
    throw new TypeError(`raw path "${name}" is absolute: give a path relative to the store root`);
  }
  if (name.includes("\0")) {
    throw new TypeError(`raw path "${name.replaceAll("\0", "\\0")}" contains NUL: remove it`);
  }
  for (const segment of name.split("/")) {
    if (segment === "" || segment === "." || segment === "..") {
      throw new TypeError(
        `raw path "${name}" has an empty, "." or ".." segment: give a plain relative path`,
      );
    }
  }
}

/** The relative key of a handle; throws TypeError on an unknown kind or a bad name. */
export function objectKey(h: Handle): string {
  checkKind(h.kind);
  switch (h.kind) {
    case "config":
    case "guide":
      return SINGLETONS[h.kind];
    case "manifest":
    case "index":
    case "lock":
    case "key":
      if (typeof h.name !== "string" || !isValidSegment(h.name)) {
        throw new TypeError(
          `${h.kind} name "${
            String(h.name)
          }" is not a single path segment: use a name without "/" or NUL that is not "." or ".."`,
        );
      }
      return `${KIND_DIRS[h.kind]}/${h.name}`;
    case "pack":
      if (typeof h.name !== "string" || !PACK_NAME.test(h.name)) {
        throw new TypeError(
          `pack name "${String(h.name)}" is not 64 lowercase hex digits: use the pack's SHA-256`,
        );
      }
      return `packs/${h.name.slice(0, 2)}/${h.name}`;
    case "raw":
      checkRawPath(h.name);
      return h.name;
    case "wal":
      if (!isWalRecordName(h.name)) {
        throw new TypeError(
          `WAL record name "${
            String(h.name)
          }" is not <system identifier>/<WAL file name>: use a decimal system identifier and a name such as 000000010000000000000001`,
        );
      }
      return `${WAL_DIR}/${h.name}`;
  }
}

/**
 * The handle a repository key stands for, or null when the key is not a
 * repository file (temporary files, misplaced packs, anything else).
 */
export function handleOfKey(key: string): Handle | null {
  const parts = key.split("/");
  const base = parts[parts.length - 1]!;
  if (base.startsWith(TEMP_PREFIX)) return null;
  if (parts.length === 1) {
    if (key === SINGLETONS.config) return { kind: "config", name: "config" };
    if (key === SINGLETONS.guide) return { kind: "guide", name: "bendsave.md" };
    return null;
  }
  if (parts.length === 2) {
    for (const [kind, dir] of Object.entries(KIND_DIRS) as [keyof typeof KIND_DIRS, string][]) {
      if (parts[0] === dir && isValidSegment(base)) return { kind, name: base };
    }
    return null;
  }
  if (
    parts.length === 3 && parts[0] === "packs" && PACK_NAME.test(base) && base.startsWith(parts[1]!)
  ) {
    return { kind: "pack", name: base };
  }
  if (parts.length === 3 && parts[0] === WAL_DIR) {
    const name = `${parts[1]}/${base}`;
    if (isWalRecordName(name)) return { kind: "wal", name };
  }
  return null;
}

/** Throws RangeError unless the range is two non-negative integers. */
export function checkRange(range: ByteRange): void {
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(
      `byte range {offset: ${offset}, length: ${length}} is invalid: use non-negative integers`,
    );
  }
}

/** Checks the announced size of a streamed save; `RangeError` when it is no byte count. */
export function checkStreamSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`stream size ${size} is invalid: use a non-negative integer`);
  }
}

/**
 * The chunks of a streamed save gathered into one buffer of exactly `size`
 * bytes; throws {@linkcode streamSizeError} when they hold more or fewer.
 */
export async function collectStream(
  h: Handle,
  chunks: AsyncIterable<Uint8Array>,
  size: number,
): Promise<Uint8Array> {
  const data = new Uint8Array(size);
  let written = 0;
  for await (const chunk of chunks) {
    if (written + chunk.length > size) throw streamSizeError(h, written + chunk.length, size);
    data.set(chunk, written);
    written += chunk.length;
  }
  if (written !== size) throw streamSizeError(h, written, size);
  return data;
}

/** The error of a streamed save whose chunks held `got` bytes (so far) instead of `size`. */
export function streamSizeError(h: Handle, got: number, size: number): RangeError {
  const held = got > size
    ? `more than the announced ${size}`
    : `${got}, not the announced ${size},`;
  return new RangeError(
    `the stream saved as ${
      describeHandle(h)
    } held ${held} bytes: nothing was stored, announce the exact size`,
  );
}
