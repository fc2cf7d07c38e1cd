/**
 * The list operation: one summary per manifest, oldest first.
 *
 * @module
 */
import type { BlobStore } from "./drivers/types.ts";
import { Repository } from "./repository.ts";
import { toHex } from "../formats/hash.ts";
import type { BendsaveError } from "./errors.ts";
import type { Catalog } from "../formats/manifest.ts";

/** One backup as `bendsave list` shows it. */
export interface BackupSummary {
  readonly name: string;
  /** SHA-256 of the manifest file, hex. */
  readonly id: string;
  /** Backup time, RFC 3339 UTC. */
  readonly time: string;
  /** Parent manifest name, or null for a full backup. */
  readonly parent: string | null;
  /** False when the parent manifest is no longer in the repository (vacuumed). */
  readonly parentPresent: boolean;
  readonly kind: "full" | "incremental";
  readonly files: number;
  /** Logical size of all files. */
  readonly bytes: number;
  /** Stored bytes this backup added. */
  readonly added_bytes: number;
  readonly incomplete: boolean;
  /** What was backed up, as the source describes itself. */
  readonly source: string;
  /** The source's identity (retention groups and restore picks by it). */
  readonly sourceKey: string;
  readonly host: string;
  /** The catalog of a cluster backup (databases, tables, their snapshots), else null. */
  readonly catalog: Catalog | null;
}

/** A manifest that could not be read. */
export interface DamagedManifest {
  readonly name: string;
  readonly error: string;
}

/** Lists the backups of a repository; damaged manifests are reported apart. */
export async function listBackups(
  store: BlobStore,
): Promise<{ backups: BackupSummary[]; damaged: DamagedManifest[] }> {
  const repo = await Repository.open(store);
  const damaged: DamagedManifest[] = [];
  const records = await repo.listManifests((name: string, e: BendsaveError) =>
    damaged.push({ name, error: e.message })
  );
  const names = new Set(await repo.manifestNames());
  const backups = records.map((r): BackupSummary => ({
    name: r.name,
    id: toHex(r.id),
    time: new Date(r.manifest.timeMs).toISOString(),
    parent: r.manifest.parentName,
    parentPresent: r.manifest.parentName === null || names.has(r.manifest.parentName),
    kind: r.manifest.kind,
    files: r.manifest.stats.files,
    bytes: r.manifest.stats.bytes,
    added_bytes: r.manifest.stats.addedBytes,
    incomplete: r.manifest.incomplete,
    source: r.manifest.source.description,
    sourceKey: r.manifest.source.key,
    host: r.manifest.host,
    catalog: r.manifest.catalog,
  }));
  return { backups, damaged };
}
