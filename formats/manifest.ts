/**
 * Manifests: one protobuf `bendsave.v1.Manifest` per backup (FORMAT.md,
 * "Manifests"). A manifest's id is the SHA-256 of its bytes; writing it is a
 * backup's commit point.
 *
 * @module
 */
import { ManifestType, toNumber } from "../proto/mod.ts";
import { NEWEST_READABLE_FORMAT } from "./version.ts";
import { type ChunkerParams, validateChunkerParams } from "./chunker.ts";
import { equalBytes, sha256 } from "./hash.ts";

/** Statistics of a backup or of one part. */
export interface ManifestStats {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  addedBytes: number;
  newBlocks: number;
  filesNew: number;
  filesChanged: number;
  filesUnchanged: number;
  bytesRead: number;
  newBytes: number;
  errors: number;
  skipped: number;
}

/** A zeroed statistics record. */
export function emptyStats(): ManifestStats {
  return {
    files: 0,
    dirs: 0,
    symlinks: 0,
    bytes: 0,
    addedBytes: 0,
    newBlocks: 0,
    filesNew: 0,
    filesChanged: 0,
    filesUnchanged: 0,
    bytesRead: 0,
    newBytes: 0,
    errors: 0,
    skipped: 0,
  };
}

/** What was backed up, with every secret removed. */
export interface ManifestSource {
  type: string;
  key: string;
  description: string;
  settings: Record<string, string>;
}

/** One part of a backup (a tree, or a stream stored as a one-file tree). */
export interface ManifestPart {
  name: string;
  kind: "tree" | "stream";
  root: Uint8Array;
  stats: ManifestStats;
  /** Chunker that cut this part's files (null: the repository's). */
  chunker: ChunkerParams | null;
}

/**
 * One table snapshot a cluster backup holds (since 1.2): a `_ss/` object of
 * the table read at backup time.
 */
export interface CatalogSnapshot {
  /** The snapshot id, a hyphenated UUID. */
  id: string;
  /** The snapshot's timestamp in microseconds since the epoch; 0 when it has none. */
  timestampUs: number;
  /** Rows of the table in this snapshot. */
  rowCount: number;
  /** The snapshot object, relative to the storage root. */
  location: string;
  /** The snapshot's format version. */
  formatVersion: number;
  /** The previous snapshot's id, "" for the first. */
  prevId: string;
}

/** One table of a cluster's catalog. */
export interface CatalogTable {
  name: string;
  id: number;
  /** Storage prefix of the table's data, relative to the storage root, ending in `/`. */
  storagePrefix: string;
  /** The current snapshot named by the meta export (since 1.2), relative to the storage root. */
  snapshotLocation?: string;
  /** The snapshots the backup holds, oldest first (since 1.2). */
  snapshots?: CatalogSnapshot[];
}

/** Databases and tables of a cluster (for table-level restore). */
export interface Catalog {
  tenant: string;
  clusterId: string;
  databases: {
    name: string;
    id: number;
    tables: CatalogTable[];
  }[];
}

/** An archived log segment (reserved for point-in-time recovery). */
export interface LogSegment {
  name: string;
  startTimeMs: number;
  endTimeMs: number;
  startPosition: string;
  endPosition: string;
  root: Uint8Array;
}

/** A decoded manifest. */
export interface Manifest {
  formatVersion: number;
  formatMinor: number;
  timeMs: number;
  endTimeMs: number;
  kind: "full" | "incremental";
  parentName: string | null;
  parentId: Uint8Array | null;
  source: ManifestSource;
  parts: ManifestPart[];
  stats: ManifestStats;
  toolVersion: string;
  host: string;
  incomplete: boolean;
  warnings: string[];
  labels: Record<string, string>;
  logSegments: LogSegment[];
  catalog: Catalog | null;
}

const KIND = { full: 1, incremental: 2 } as const;
const PART_KIND = { tree: 1, stream: 2 } as const;

/** Encodes a manifest. */
export function encodeManifest(m: Manifest): Uint8Array {
  const obj = {
    formatVersion: m.formatVersion,
    formatMinor: m.formatMinor,
    timeMs: m.timeMs,
    endTimeMs: m.endTimeMs,
    kind: KIND[m.kind],
    parentName: m.parentName ?? "",
    parentId: m.parentId ?? new Uint8Array(0),
    source: m.source,
    parts: m.parts.map((p) => ({
      name: p.name,
      kind: PART_KIND[p.kind],
      root: p.root,
      stats: p.stats,
      chunker: p.chunker ? JSON.stringify(p.chunker) : "",
    })),
    stats: m.stats,
    toolVersion: m.toolVersion,
    host: m.host,
    incomplete: m.incomplete,
    warnings: m.warnings,
    labels: m.labels,
    logSegments: m.logSegments,
    ...(m.catalog ? { catalog: m.catalog } : {}),
  };
  return ManifestType.encode(ManifestType.fromObject(obj)).finish();
}

function stats(raw: Record<string, unknown> | undefined): ManifestStats {
  const s = emptyStats();
  if (!raw) return s;
  for (const k of Object.keys(s) as (keyof ManifestStats)[]) s[k] = toNumber(raw[k]);
  return s;
}

function bytes(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? new Uint8Array(v) : new Uint8Array(0);
}

/**
 * Decodes a manifest. Throws SyntaxError when the bytes are not a manifest
 * (truncated, garbled). Fields written by a newer minor version are ignored;
 * the major version is checked by the caller (see `checkFormatVersion`).
 */
export function decodeManifest(buf: Uint8Array): Manifest {
  // deno-lint-ignore no-explicit-any
  let r: any;
  try {
    r = ManifestType.toObject(ManifestType.decode(buf), { defaults: false, arrays: true });
  } catch (e) {
    throw new SyntaxError(`manifest does not decode (${(e as Error).message})`);
  }
  if (!r.formatVersion || !r.timeMs || !r.source) {
    throw new SyntaxError("manifest lacks its format version, time or source (truncated?)");
  }
  // deno-lint-ignore no-explicit-any
  const parts: ManifestPart[] = (r.parts ?? []).map((p: any) => ({
    name: p.name ?? "",
    kind: p.kind === PART_KIND.stream ? "stream" : "tree",
    root: bytes(p.root),
    stats: stats(p.stats),
    chunker: p.chunker ? parsePartChunker(p.name ?? "", p.chunker) : null,
  }));
  for (const p of parts) {
    if (p.root.length !== 32) {
      throw new SyntaxError(`manifest part "${p.name}" has no root tree id`);
    }
  }
  const parentId = bytes(r.parentId);
  return {
    formatVersion: r.formatVersion,
    formatMinor: r.formatMinor ?? 0,
    timeMs: toNumber(r.timeMs),
    endTimeMs: toNumber(r.endTimeMs),
    kind: r.kind === KIND.incremental ? "incremental" : "full",
    parentName: r.parentName || null,
    parentId: parentId.length ? parentId : null,
    source: {
      type: r.source.type ?? "",
      key: r.source.key ?? "",
      description: r.source.description ?? "",
      settings: { ...(r.source.settings ?? {}) },
    },
    parts,
    stats: stats(r.stats),
    toolVersion: r.toolVersion ?? "",
    host: r.host ?? "",
    incomplete: r.incomplete ?? false,
    warnings: r.warnings ?? [],
    labels: { ...(r.labels ?? {}) },
    // deno-lint-ignore no-explicit-any
    logSegments: (r.logSegments ?? []).map((l: any) => ({
      name: l.name ?? "",
      startTimeMs: toNumber(l.startTimeMs),
      endTimeMs: toNumber(l.endTimeMs),
      startPosition: l.startPosition ?? "",
      endPosition: l.endPosition ?? "",
      root: bytes(l.root),
    })),
    catalog: r.catalog
      ? {
        tenant: r.catalog.tenant ?? "",
        clusterId: r.catalog.clusterId ?? "",
        // deno-lint-ignore no-explicit-any
        databases: (r.catalog.databases ?? []).map((d: any) => ({
          name: d.name ?? "",
          id: toNumber(d.id),
          // deno-lint-ignore no-explicit-any
          tables: (d.tables ?? []).map((t: any): CatalogTable => ({
            name: t.name ?? "",
            id: toNumber(t.id),
            storagePrefix: t.storagePrefix ?? "",
            ...(t.snapshotLocation ? { snapshotLocation: t.snapshotLocation } : {}),
            ...(t.snapshots?.length
              ? {
                // deno-lint-ignore no-explicit-any
                snapshots: t.snapshots.map((s: any): CatalogSnapshot => ({
                  id: s.id ?? "",
                  timestampUs: toNumber(s.timestampUs),
                  rowCount: toNumber(s.rowCount),
                  location: s.location ?? "",
                  formatVersion: toNumber(s.formatVersion),
                  prevId: s.prevId ?? "",
                })),
              }
              : {}),
          })),
        })),
      }
      : null,
  };
}

function parsePartChunker(name: string, json: string): ChunkerParams {
  try {
    return validateChunkerParams(JSON.parse(json));
  } catch (e) {
    throw new SyntaxError(
      `manifest part "${name}" has an invalid chunker (${(e as Error).message})`,
    );
  }
}

/** True when this code can read a manifest or repository of major version `v`. */
export function isReadableVersion(v: number): boolean {
  return Number.isInteger(v) && v >= 1 && v <= NEWEST_READABLE_FORMAT;
}

/**
 * Manifest file name for a backup at `timeMs`: `YYYYMMDD_HHMMSS` in UTC.
 * The name always sorts after every name in `existing` (by
 * {@linkcode compareManifestNames}), so names never go back in time and a
 * name a vacuum freed is never used again for a newer backup: when the
 * newest existing name is of the same second (or, clock gone backwards, a
 * later one), the new name is that name's time with the next `_N` suffix.
 */
export function manifestName(timeMs: number, existing: Iterable<string>): string {
  const d = new Date(timeMs);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const base = `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}_` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
  let newest: string | null = null;
  for (const n of existing) {
    if (isManifestName(n) && (newest === null || compareManifestNames(n, newest) > 0)) newest = n;
  }
  const m = newest ? /^(\d{8}_\d{6})(?:_(\d+))?\.manifest$/.exec(newest) : null;
  if (!m || m[1]! < base) return `${base}.manifest`;
  return `${m[1]}_${Number(m[2] ?? 1) + 1}.manifest`;
}

/** True when `name` has the form of a manifest file name. */
export function isManifestName(name: string): boolean {
  return /^\d{8}_\d{6}(_\d+)?\.manifest$/.test(name);
}

const NO_ID = new Uint8Array(0);

/**
 * The encoding of what says which backup `m` is: every field but its format
 * version, its roots and its parent's id, which a copy between repositories
 * of other keys changes (FORMAT.md section 21.10, copy between keys).
 */
function identity(m: Manifest): Uint8Array {
  return encodeManifest({
    ...m,
    formatVersion: 0,
    formatMinor: 0,
    parentId: null,
    parts: m.parts.map((p) => ({ ...p, root: NO_ID })),
    logSegments: m.logSegments.map((l) => ({ ...l, root: NO_ID })),
  });
}

/**
 * True when two manifests (of two repositories) record the same backup:
 * equal in every field but their format versions, roots and parent ids
 * (FORMAT.md section 21.10, copy between keys). A re-encoded copy of a backup is the same
 * backup; one of another source, time or content is not.
 */
export function sameBackup(a: Manifest, b: Manifest): boolean {
  return equalBytes(identity(a), identity(b));
}

const MANIFEST_MAGIC = [0x42, 0x53, 0x4d, 0x46]; // "BSMF"
const ENVELOPE_HEADER = 8;
const ENVELOPE_CHECKSUM = 32;

/**
 * The bytes of a manifest file: an 8-byte header (`"BSMF"`, the major format
 * version, three zero bytes), the protobuf message, and the SHA-256 of
 * everything before it, so a truncated or garbled manifest is always
 * detected. The manifest's id is the SHA-256 of the whole file.
 */
export function encodeManifestFile(m: Manifest): Uint8Array {
  return manifestEnvelope(m.formatVersion, encodeManifest(m));
}

/**
 * The envelope of a manifest file around `body`: the protobuf message, or
 * in an encrypted repository (version 2) the sealed message; the checksum
 * covers the bytes as stored, so it is checked without the key.
 */
export function manifestEnvelope(version: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(ENVELOPE_HEADER + body.length + ENVELOPE_CHECKSUM);
  out.set([...MANIFEST_MAGIC, version, 0, 0, 0]);
  out.set(body, ENVELOPE_HEADER);
  out.set(sha256(out.subarray(0, ENVELOPE_HEADER + body.length)), ENVELOPE_HEADER + body.length);
  return out;
}

/** The envelope check result: the major version in the header and the protobuf body. */
export interface ManifestEnvelope {
  readonly version: number;
  readonly body: Uint8Array;
}

/**
 * Thrown by {@linkcode openManifestFile} for a manifest whose envelope names a
 * newer major version: its checksum and body may follow rules this reader
 * does not know, so they are not checked.
 */
export class NewerManifestError extends Error {
  /** The major version in the envelope (byte 4). */
  readonly version: number;
  constructor(version: number) {
    super(
      `manifest format version ${version} is newer than this bendsave reads (${NEWEST_READABLE_FORMAT})`,
    );
    this.name = "NewerManifestError";
    this.version = version;
  }
}

/**
 * Checks a manifest file's envelope (header and checksum) and returns the
 * protobuf body. Throws SyntaxError when truncated or garbled, and
 * {@linkcode NewerManifestError} for a newer major version (checked before
 * the checksum, which a newer major may compute differently).
 */
export function openManifestFile(buf: Uint8Array): ManifestEnvelope {
  if (buf.length < ENVELOPE_HEADER || MANIFEST_MAGIC.some((b, i) => buf[i] !== b)) {
    throw new SyntaxError("not a bendsave manifest (no BSMF header, or truncated)");
  }
  if (buf[4]! > NEWEST_READABLE_FORMAT) throw new NewerManifestError(buf[4]!);
  if (buf.length < ENVELOPE_HEADER + ENVELOPE_CHECKSUM) {
    throw new SyntaxError("not a bendsave manifest (no BSMF header, or truncated)");
  }
  const end = buf.length - ENVELOPE_CHECKSUM;
  const sum = sha256(buf.subarray(0, end));
  for (let i = 0; i < ENVELOPE_CHECKSUM; i++) {
    if (sum[i] !== buf[end + i]) {
      throw new SyntaxError("manifest checksum mismatch (truncated or garbled)");
    }
  }
  return { version: buf[4]!, body: buf.subarray(ENVELOPE_HEADER, end) };
}

/**
 * Orders manifest names by time, then by same-second suffix as a number
 * (no suffix counts as 1, so `_10` comes after `_9`), then by the name.
 */
export function compareManifestNames(a: string, b: string): number {
  const key = (n: string) => {
    const m = /^(\d{8}_\d{6})(?:_(\d+))?\.manifest$/.exec(n);
    return [m?.[1] ?? n, Number(m?.[2] ?? 1)] as const;
  };
  const [ta, sa] = key(a);
  const [tb, sb] = key(b);
  return ta < tb ? -1 : ta > tb ? 1 : sa - sb || (a < b ? -1 : a > b ? 1 : 0);
}
