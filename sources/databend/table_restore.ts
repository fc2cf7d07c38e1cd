/**
 * Table-level restore from a Databend cluster backup: choose a table's
 * snapshot as of a time, stage the objects that snapshot needs into the
 * target cluster's storage under a fresh prefix, write that prefix's snapshot
 * hint, and produce the statements that bring the table in:
 *
 * ```sql
 * ATTACH TABLE `db`.`_bendsave_tmp_…` '<storage uri>/<stage root>/<db_id>/<table_id>/';
 * CREATE TABLE `db`.`target` AS SELECT * FROM `db`.`_bendsave_tmp_…`;
 * DROP TABLE `db`.`_bendsave_tmp_…`;
 * ```
 *
 * The staged objects keep their paths relative to the storage root under a
 * stage root (`bendsave-restore/<time>-<random>/` by default), so the
 * snapshot's segment and block locations resolve against the attached
 * table's root (the URI without its last two parts, which Databend takes as
 * the table's storage prefix) without rewriting anything. Nothing is ever
 * overwritten: an object already at a staged name is a collision and is
 * refused before anything is written.
 *
 * @module
 */
import type { Catalog, CatalogSnapshot, CatalogTable } from "../../formats/manifest.ts";
import { sha256Hex } from "../../formats/hash.ts";
import type { TreeNode } from "../../formats/tree.ts";
import type { BlobStore } from "../../store/drivers/types.ts";
import { AlreadyExists, Cancelled, InvalidInput, NotFound } from "../../store/errors.ts";
import { checkpoint } from "../../store/cancel.ts";
import type { ManifestRecord, Repository } from "../../store/repository.ts";
import type { QueryConfig } from "./query_config.ts";
import { decodeSegmentObjects } from "./table_segment.ts";
import { decodeTableSnapshot } from "./table_snapshot.ts";
import { formatTimestampUs } from "./table_window.ts";

/** One table to restore: `db.table` in the backup, `db.name` in the target cluster. */
export interface TableSelection {
  readonly from: string;
  readonly to: string;
}

/** Options of {@linkcode planTableRestore}. */
export interface TableRestoreOptions {
  /** Restore as of this time (µs since the epoch); default: each table's snapshot at backup time. */
  readonly asOfUs?: number;
  /** Drop an existing target table first (`DROP TABLE IF EXISTS`). */
  readonly clean?: boolean;
  /** The stage root in the target storage (ends in `/`); default `bendsave-restore/<time>-<random>/`. */
  readonly stageRoot?: string;
  /** For S3 targets: the Databend connection (`CREATE CONNECTION`) that ATTACH TABLE uses. */
  readonly connection?: string;
  /** The current time in ms (tests). */
  readonly now?: number;
}

/** One staged object. */
export interface StagedObject {
  /** Its name in the backup's storage part (relative to the storage root). */
  readonly name: string;
  /** Its name in the target storage. */
  readonly staged: string;
  readonly size: number;
}

/** The chosen snapshot of a table. */
export interface ChosenSnapshot {
  readonly id: string;
  /** RFC 3339 with microseconds, null when the snapshot has none. */
  readonly time: string | null;
  readonly timestampUs: number;
  readonly location: string;
  readonly rowCount: number;
  /** The backup (manifest name) the objects are read from. */
  readonly backup: string;
}

/** What restoring one table does. */
export interface PlannedTable {
  readonly source: string;
  readonly target: string;
  readonly snapshot: ChosenSnapshot;
  /** The table's restorable window over every backup of its cluster. */
  readonly window: { readonly from: string; readonly to: string } | null;
  readonly objects: readonly StagedObject[];
  readonly bytes: number;
  /** The staged table prefix (relative to the target storage root), ending in `/`. */
  readonly stagedPrefix: string;
  /** The snapshot hint written into the staged prefix. */
  readonly hint: { readonly name: string; readonly content: string };
  /** The temporary attached table. */
  readonly tempTable: string;
  /** The statements for this table, as printed. */
  readonly statements: readonly string[];
}

/** What a table restore does (the dry run's report). */
export interface TableRestorePlan {
  /** The target storage, as shown. */
  readonly target: string;
  readonly stageRoot: string;
  readonly tables: readonly PlannedTable[];
  /** Every statement, in order. */
  readonly statements: readonly string[];
  /** Objects staged and their bytes, over all tables. */
  readonly objects: number;
  readonly bytes: number;
}

/** Splits `db.table` (one dot; names with dots are not supported). */
export function parseTableName(text: string, what = "table"): { db: string; table: string } {
  const m = /^([^.\s`]+)\.([^.\s`]+)$/.exec(text.trim());
  if (m === null) {
    throw new InvalidInput(`${what} "${text}" is not DB.TABLE: give it as database.table`);
  }
  return { db: m[1]!, table: m[2]! };
}

/** Quotes a SQL identifier with backticks. */
function ident(name: string): string {
  return "`" + name.replaceAll("`", "``") + "`";
}

function findTable(c: Catalog, db: string, table: string): CatalogTable | undefined {
  return c.databases.find((d) => d.name === db)?.tables.find((t) => t.name === table);
}

/** Cluster backups (manifests with a catalog) grouped by source key, oldest first. */
function clusterBackups(records: readonly ManifestRecord[]): ManifestRecord[] {
  return records.filter((r) => r.manifest.catalog !== null);
}

/** A file of a backup's part tree, by path (directories cached). */
class TreeFiles {
  readonly #repo: Repository;
  readonly #root: Uint8Array;
  readonly #dirs = new Map<string, Promise<TreeNode[]>>();

  constructor(repo: Repository, root: Uint8Array) {
    this.#repo = repo;
    this.#root = root;
  }

  #dir(path: string): Promise<TreeNode[]> {
    let d = this.#dirs.get(path);
    if (d === undefined) {
      d = (async () => {
        if (path === "") return await this.#repo.loadTree(this.#root, "the storage part");
        const slash = path.lastIndexOf("/");
        const parent = await this.#dir(slash < 0 ? "" : path.slice(0, slash));
        const node = parent.find((n) => n.name === path.slice(slash + 1) && n.subtree);
        if (node?.subtree === undefined) return [];
        return await this.#repo.loadTree(node.subtree, path);
      })();
      this.#dirs.set(path, d);
    }
    return d;
  }

  async file(path: string): Promise<TreeNode | undefined> {
    const slash = path.lastIndexOf("/");
    const dir = await this.#dir(slash < 0 ? "" : path.slice(0, slash));
    return dir.find((n) => n.name === path.slice(slash + 1) && n.subtree === undefined);
  }

  async read(path: string): Promise<Uint8Array> {
    const node = await this.file(path);
    if (node === undefined) throw new NotFound(`${path} is not in the backup`);
    const out = new Uint8Array(node.size);
    let pos = 0;
    for (const id of node.blocks) {
      const b = await this.#repo.readBlob(id, path);
      out.set(b.subarray(0, Math.min(b.length, out.length - pos)), pos);
      pos += b.length;
    }
    if (pos !== node.size) {
      throw new InvalidInput(
        `the blocks of ${path} do not add up to its size: run bendsave verify`,
      );
    }
    return out;
  }
}

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z").replace("T", "-");
}

function randomHex(n: number): string {
  const b = crypto.getRandomValues(new Uint8Array(n));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** The storage URI Databend's ATTACH TABLE reads a staged prefix from, and the hint's root. */
function stagedUri(config: QueryConfig, stagedPrefix: string): { uri: string; root: string } {
  const s = config.storage;
  if (s.type === "fs") {
    const base = s.dataPath.replace(/\/+$/, "");
    return { uri: `fs://${base}/${stagedPrefix}`, root: `${base}/` };
  }
  const root = s.root.replace(/^\/+|\/+$/g, "");
  const rooted = root === "" ? "" : `${root}/`;
  return { uri: `s3://${s.bucket}/${rooted}${stagedPrefix}`, root: `/${rooted}` };
}

/** The window of a table's snapshots (by time). */
function windowOf(snaps: readonly CatalogSnapshot[]): PlannedTable["window"] {
  const timed = snaps.filter((s) => s.timestampUs > 0).sort((a, b) =>
    a.timestampUs - b.timestampUs
  );
  if (timed.length === 0) return null;
  return {
    from: formatTimestampUs(timed[0]!.timestampUs),
    to: formatTimestampUs(timed.at(-1)!.timestampUs),
  };
}

/**
 * Works out a table restore, writing nothing: for each selection the
 * snapshot (the newest at or before `asOfUs` over every backup of the
 * table's cluster, or the table's current snapshot in the newest backup), the
 * objects to stage (the snapshot, its segments, their blocks and indexes, the
 * table statistics file it names when the backup has it,
 * read from the newest backup holding the snapshot), the hint and the
 * statements.
 *
 * @throws {InvalidInput} for an unknown table (named), a time before the oldest
 * snapshot (with the window), an existing target without `clean`, a staged
 * name already taken in the target storage, or objects the backup lacks.
 */
export async function planTableRestore(
  repo: Repository,
  target: { readonly config: QueryConfig; readonly storage: BlobStore },
  selections: readonly TableSelection[],
  options: TableRestoreOptions = {},
): Promise<TableRestorePlan> {
  if (selections.length === 0) throw new InvalidInput("no table to restore: give --table DB.TABLE");
  const now = options.now ?? Date.now();
  const stageRoot = options.stageRoot ?? `bendsave-restore/${stamp(now)}-${randomHex(3)}/`;
  if (!/^([A-Za-z0-9_.-]+\/)+$/.test(stageRoot) || stageRoot.split("/").includes("..")) {
    throw new InvalidInput(
      `stage prefix "${stageRoot}" must be a relative path of plain names ending in "/"`,
    );
  }
  await repo.loadIndex();
  const backups = clusterBackups(await repo.listManifests());
  if (backups.length === 0) {
    throw new InvalidInput(
      `the repository holds no cluster backup: nothing to restore a table from`,
    );
  }
  const targetKey = `databend:${target.config.tenantId}:${target.config.clusterId}`;
  const targetCatalog = [...backups].reverse().find((b) => b.manifest.source.key === targetKey)
    ?.manifest.catalog ?? null;
  // No live table's prefix may be under the stage root.
  for (const d of targetCatalog?.databases ?? []) {
    for (const t of d.tables) {
      if (t.storagePrefix.startsWith(stageRoot) || stageRoot.startsWith(t.storagePrefix)) {
        throw new InvalidInput(
          `stage prefix ${stageRoot} collides with the storage prefix ${t.storagePrefix} of table ${d.name}.${t.name}: choose another --stage-prefix`,
        );
      }
    }
  }
  const seenTargets = new Set<string>();
  const tables: PlannedTable[] = [];
  for (const sel of selections) {
    const src = parseTableName(sel.from);
    const dst = parseTableName(sel.to, "target table");
    if (seenTargets.has(sel.to)) throw new InvalidInput(`target table ${sel.to} is given twice`);
    seenTargets.add(sel.to);
    const listing = backups.filter((b) => findTable(b.manifest.catalog!, src.db, src.table));
    // A partial backup lists every table but holds the objects of its selection only.
    const holding = listing.filter((b) =>
      b.manifest.source.settings["partial"] === undefined ||
      (findTable(b.manifest.catalog!, src.db, src.table)!.snapshots?.length ?? 0) > 0
    );
    const newest = holding.at(-1);
    if (newest === undefined) {
      throw new InvalidInput(
        listing.length > 0
          ? `table ${sel.from} is only in partial backups that left its objects out: nothing to restore it from`
          : `table ${sel.from} is in no backup of the repository: check the name`,
      );
    }
    const group = holding.filter((b) => b.manifest.source.key === newest.manifest.source.key);
    // Every snapshot any backup of the cluster holds, with the newest backup holding it.
    const byId = new Map<string, { snap: CatalogSnapshot; backup: ManifestRecord }>();
    for (const b of group) {
      for (const s of findTable(b.manifest.catalog!, src.db, src.table)!.snapshots ?? []) {
        byId.set(s.id, { snap: s, backup: b });
      }
    }
    const all = [...byId.values()].sort((a, b) => a.snap.timestampUs - b.snap.timestampUs);
    const window = windowOf(all.map((x) => x.snap));
    let chosen: { snap: CatalogSnapshot; backup: ManifestRecord } | undefined;
    if (options.asOfUs === undefined) {
      const t = findTable(newest.manifest.catalog!, src.db, src.table)!;
      chosen = all.find((x) => x.snap.location === t.snapshotLocation);
      if (chosen === undefined) {
        throw new InvalidInput(
          t.snapshotLocation === undefined
            ? `table ${sel.from} has no data in backup ${newest.name}: nothing to restore`
            : `backup ${newest.name} does not hold the current snapshot of ${sel.from}: give --as-of`,
        );
      }
    } else {
      const asOf = options.asOfUs;
      chosen = all.filter((x) => x.snap.timestampUs > 0 && x.snap.timestampUs <= asOf).at(-1);
      if (chosen === undefined) {
        throw new InvalidInput(
          window === null
            ? `the backups hold no timed snapshot of ${sel.from}: restore it without --as-of`
            : `${
              formatTimestampUs(asOf)
            } is before the oldest snapshot of ${sel.from} the backups hold: its window is ${window.from} to ${window.to}`,
        );
      }
    }
    if (!options.clean && targetCatalog !== null && findTable(targetCatalog, dst.db, dst.table)) {
      throw new InvalidInput(
        `table ${sel.to} exists in the target cluster: pass --clean to drop it first, or --rename-to another name`,
      );
    }
    const storagePart = chosen.backup.manifest.parts.find((p) => p.name === "storage");
    if (storagePart === undefined) {
      throw new InvalidInput(`backup ${chosen.backup.name} has no storage part`);
    }
    const files = new TreeFiles(repo, storagePart.root);
    const snapBytes = await files.read(chosen.snap.location).catch((e) => {
      throw new InvalidInput(
        `backup ${chosen.backup.name} cannot give the snapshot ${chosen.snap.location} (${
          (e as Error).message
        })`,
      );
    });
    const info = decodeTableSnapshot(snapBytes);
    if (info.segments === null) {
      throw new InvalidInput(
        `the snapshot ${chosen.snap.location} is of format version ${info.formatVersion}, whose segment list bendsave does not read`,
      );
    }
    const names = new Set<string>([chosen.snap.location]);
    for (const seg of info.segments) {
      names.add(seg);
      let segBytes: Uint8Array;
      try {
        segBytes = await files.read(seg);
      } catch {
        throw new InvalidInput(
          `backup ${chosen.backup.name} lacks the segment ${seg} of snapshot ${chosen.snap.id}: it was purged before the backup; choose a later --as-of`,
        );
      }
      for (const o of decodeSegmentObjects(segBytes)) names.add(o);
    }
    // The table statistics file (ANALYZE) the snapshot names, when the backup has it.
    const tsl = info.tableStatisticsLocation;
    if (tsl !== null && (await files.file(tsl)) !== undefined) names.add(tsl);
    const objects: StagedObject[] = [];
    for (const name of [...names].sort()) {
      const node = await files.file(name);
      if (node === undefined) {
        throw new InvalidInput(
          `backup ${chosen.backup.name} lacks ${name}, which snapshot ${chosen.snap.id} of ${sel.from} needs: choose a later --as-of`,
        );
      }
      objects.push({ name, staged: stageRoot + name, size: node.size });
    }
    const prefix = findTable(chosen.backup.manifest.catalog!, src.db, src.table)!.storagePrefix;
    const stagedPrefix = stageRoot + prefix;
    const { uri, root } = stagedUri(target.config, stagedPrefix);
    const hint = {
      name: `${stagedPrefix}last_snapshot_location_hint_v2`,
      content: JSON.stringify({
        snapshot_full_path: `${root}${stageRoot}${chosen.snap.location}`,
        entity_comments: { table_comment: "", field_comments: [] },
        indexes: {},
      }),
    };
    const tempTable = `_bendsave_tmp_${dst.table}_${
      sha256Hex(new TextEncoder().encode(stageRoot + sel.to)).slice(0, 6)
    }`;
    const tmp = `${ident(dst.db)}.${ident(tempTable)}`;
    const targetName = `${ident(dst.db)}.${ident(dst.table)}`;
    const connection = target.config.storage.type === "s3"
      ? ` CONNECTION = (CONNECTION_NAME = '${
        (options.connection ?? "<connection>").replaceAll("'", "''")
      }')`
      : "";
    const statements = [
      ...(options.clean ? [`DROP TABLE IF EXISTS ${targetName};`] : []),
      `ATTACH TABLE ${tmp} '${uri.replaceAll("'", "''")}'${connection};`,
      `CREATE TABLE ${targetName} AS SELECT * FROM ${tmp};`,
      `DROP TABLE ${tmp};`,
    ];
    tables.push({
      source: sel.from,
      target: sel.to,
      snapshot: {
        id: chosen.snap.id,
        time: chosen.snap.timestampUs > 0 ? formatTimestampUs(chosen.snap.timestampUs) : null,
        timestampUs: chosen.snap.timestampUs,
        location: chosen.snap.location,
        rowCount: chosen.snap.rowCount,
        backup: chosen.backup.name,
      },
      window,
      objects,
      bytes: objects.reduce((a, o) => a + o.size, 0),
      stagedPrefix,
      hint,
      tempTable,
      statements,
    });
  }
  // Never overwrite: every staged name (and hint) must be free.
  for (const t of tables) {
    for (const name of [...t.objects.map((o) => o.staged), t.hint.name]) {
      const taken = await target.storage.stat({ kind: "raw", name }).then(() => true, (e) => {
        if (e instanceof NotFound) return false;
        throw e;
      });
      if (taken) {
        throw new InvalidInput(
          `${name} already exists in ${target.storage.location}: the stage prefix ${stageRoot} is in use; choose another --stage-prefix`,
        );
      }
    }
  }
  const staged = new Set<string>();
  for (const t of tables) {
    for (const o of t.objects) {
      if (staged.has(o.staged)) {
        throw new InvalidInput(
          `two tables of this restore stage ${o.staged} (they share a storage prefix): restore them one at a time`,
        );
      }
      staged.add(o.staged);
    }
  }
  return {
    target: target.storage.location,
    stageRoot,
    tables,
    statements: tables.flatMap((t) => t.statements),
    objects: tables.reduce((a, t) => a + t.objects.length, 0),
    bytes: tables.reduce((a, t) => a + t.bytes, 0),
  };
}

/**
 * Stages the objects of a plan into the target storage (each read from the
 * backup and checked block by block) and writes each table's snapshot hint
 * last. An object that appeared at a staged name since the plan is never
 * overwritten: the stage fails (exclusive create where the store has it).
 * A `signal` that aborts stops it between objects with `Cancelled`, after
 * it removed what it staged.
 *
 * @returns the staged names, hints included, in the order written.
 */
export async function stageTableRestore(
  repo: Repository,
  storage: BlobStore,
  plan: TableRestorePlan,
  options: { onStaged?: (name: string, size: number) => void; signal?: AbortSignal } = {},
): Promise<string[]> {
  const written: string[] = [];
  const exclusive = storage.capabilities.exclusiveCreate;
  const records = new Map((await repo.listManifests()).map((r) => [r.name, r]));
  for (const t of plan.tables) {
    const rec = records.get(t.snapshot.backup)!;
    const files = new TreeFiles(repo, rec.manifest.parts.find((p) => p.name === "storage")!.root);
    const put = async (name: string, data: Uint8Array) => {
      if (!exclusive) {
        const taken = await storage.stat({ kind: "raw", name }).then(() => true, () => false);
        if (taken) throw new AlreadyExists(`${name} appeared in ${storage.location} while staging`);
      }
      await storage.save({ kind: "raw", name }, data, exclusive ? { exclusive: true } : {});
      written.push(name);
      options.onStaged?.(name, data.length);
    };
    try {
      for (const o of t.objects) {
        await checkpoint(options.signal, "restore");
        await put(o.staged, await files.read(o.name));
      }
    } catch (e) {
      // Cancelled: nothing refers to the staged objects yet, so they go again.
      if (e instanceof Cancelled) await removeStaged(storage, written);
      throw e;
    }
    await put(t.hint.name, new TextEncoder().encode(t.hint.content));
  }
  return written;
}

/**
 * Removes staged objects (after the statements ran, or after a failure);
 * objects already gone are skipped.
 */
export async function removeStaged(storage: BlobStore, names: readonly string[]): Promise<void> {
  for (const name of [...names].reverse()) {
    await storage.remove({ kind: "raw", name }).catch((e) => {
      if (!(e instanceof NotFound)) throw e;
    });
  }
}
