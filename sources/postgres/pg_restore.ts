/**
 * Point-in-time recovery of a PostgreSQL cluster: `restore --to NEW_DATA_DIR
 * --as-of TIME` (or `--target-lsn`, or `latest`). Chooses the base backup and
 * the archived WAL that reach the target (recovery_plan.ts), restores the
 * data directory with the owner and modes PostgreSQL requires (and the
 * tablespaces, into their recorded locations), writes the backup's
 * `backup_label` and `tablespace_map`, `recovery.signal`, and the recovery
 * settings in `postgresql.auto.conf`: `restore_command` fetches WAL from the
 * same repository with this same bendsave, and the target makes starting
 * PostgreSQL replay to exactly it, then promote.
 *
 * @module
 */
import { shellQuote } from "../../formats/shell.ts";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import type { BlobStore } from "../../store/drivers/types.ts";
import { Cancelled, InvalidInput } from "../../store/errors.ts";
import { type CancelOptions, checkpoint, throwIfCancelled } from "../../store/cancel.ts";
import { type ManifestRecord, Repository } from "../../store/repository.ts";
import {
  planRestore,
  restore,
  type RestoreOptions,
  type RestorePlan,
  type RestoreResult,
} from "../../store/restore/restore.ts";
import { latestBackup, readableManifests } from "../../store/source_groups.ts";
import { archivedSegments, baseBackupOf } from "./pg_windows.ts";
import type { EventSink } from "../../store/backup/events.ts";
import type { Manifest } from "../../formats/manifest.ts";
import { NodeType } from "../../formats/tree.ts";
import { parseWalName, segmentStartLsn, walSegmentName } from "../../formats/wal_name.ts";
import { WalNotArchived } from "../../store/wal_archive.ts";
import { fetchIntoSpool } from "../../store/wal_prefetch_daemon.ts";
import { formatMicros, type RecoveryTarget } from "../../formats/pg_target.ts";
import {
  PG_DATA_PART,
  PG_LABEL_PART,
  PG_TABLESPACE_MAP_PART,
  tablespacePartName,
} from "./pg_source.ts";
import {
  type BaseBackup,
  OutsideWindow,
  planRecovery,
  type RecoveryPlan,
} from "./recovery_plan.ts";

/**
 * Options of {@linkcode planPgRestore} and {@linkcode restorePg}. A `signal`
 * that aborts stops the restore between files (`Cancelled`), before the
 * recovery settings are written: the data directory is then incomplete.
 */
export interface PgRestoreOptions extends CancelOptions {
  /** Where to recover to (default: `latest`; with `manifest`, that backup's end). */
  readonly target?: RecoveryTarget;
  /** A base backup to start from (default: the one the plan chooses). */
  readonly manifest?: string | null;
  /** The source (its key or data directory) when the repository holds several. */
  readonly source?: string;
  /**
   * The command that runs this bendsave for `restore_command` (the server
   * appends ` wal-fetch %f %p --from <repository>`), e.g. `/usr/local/bin/bendsave`.
   */
  readonly bendsaveCommand: string;
  /**
   * `restore_command` prefetches this many WAL segments ahead
   * (`wal-fetch --prefetch`, spooled in `pg_wal/bendsave-prefetch/`, which
   * base backups leave out; default 0: one segment per command).
   */
  readonly walPrefetch?: number;
  /**
   * How `restore_command` gets an encrypted repository's passphrase: the
   * `wal-fetch` option it passes, a file the server's user can read
   * (`--password-file`, an absolute path) or a command (`--password-command`),
   * never the passphrase itself. Required when the repository is encrypted:
   * the server's environment cannot be assumed to hold BENDSAVE_PASSWORD.
   */
  readonly walPassphrase?: {
    readonly flag: "--password-file" | "--password-command";
    readonly value: string;
  };
  /** The repository as `restore_command` must name it (default: the store's location). */
  readonly repositoryLocation?: string;
  /** Ownership and worker options of the data directory restore. */
  readonly restore?: Omit<RestoreOptions, "manifest" | "part" | "source" | "overwrite">;
  readonly onEvent?: EventSink;
  /**
   * Restore only some of the base backup's files (restore --table,
   * table_restore.ts): asked once the base backup is chosen.
   */
  readonly select?: (repo: Repository, record: ManifestRecord) => Promise<PgFileSelection>;
  /**
   * Restore each tablespace into `<tablespaceRoot>/<oid>` rather than its
   * recorded location (a scratch restore beside the live server); the
   * restored tablespace_map names the new places.
   */
  readonly tablespaceRoot?: string;
}

/** Which files of a base backup a partial restore writes (see {@linkcode PgRestoreOptions.select}). */
export interface PgFileSelection {
  /** Per part name: globs of the paths to restore; a part not named is restored whole. */
  readonly include: Readonly<Record<string, readonly string[]>>;
  /**
   * Per part name: files made as sparse files of this many bytes (all zero
   * pages), relative path -> bytes: the relation files left out.
   */
  readonly sparse: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

/** A tablespace of the backup and where it is restored. */
export interface RestoredTablespace {
  readonly oid: string;
  readonly location: string;
  readonly part: string;
}

/** What a point-in-time restore will do (the dry run). */
export interface PgRestorePlan {
  readonly manifest: string;
  readonly systemId: string;
  readonly dataDirectory: string;
  readonly target: string;
  /** The WAL replay reads: first and last file, and how many segments. */
  readonly wal: { first: string; last: string; segments: number } | null;
  /** The recoverable window: from, to (timestamptz text). */
  readonly window: { from: string | null; to: string | null; gaps: string[] };
  readonly dataDir: RestorePlan;
  readonly tablespaces: (RestoredTablespace & { plan: RestorePlan })[];
  /** The files written beside the data: backup_label, tablespace_map, recovery.signal. */
  readonly files: string[];
  /** The settings appended to postgresql.auto.conf. */
  readonly settings: Record<string, string>;
  /** With a selection: the files made sparse, and their apparent bytes. */
  readonly sparse?: { readonly files: number; readonly bytes: number };
}

/** What a point-in-time restore did. */
export interface PgRestoreResult extends PgRestorePlan {
  readonly dataDirResult: RestoreResult;
  readonly durationMs: number;
}

/** The base backup of a manifest, or an InvalidInput naming what it lacks. */
function baseBackup(r: ManifestRecord): BaseBackup {
  const b = baseBackupOf(r);
  if (!b) {
    throw new InvalidInput(
      `backup ${r.name} is not a complete PostgreSQL base backup (its pg.* settings are missing or unreadable): choose another with --from <repo>/manifests/<name>`,
    );
  }
  return b;
}

const isPg = (m: Manifest) =>
  m.source.type === "postgresql" && m.parts.some((p) => p.name === PG_DATA_PART);

/** A schema- or table-level base backup (`pg.only`): only a table restore may start from it. */
const isPartial = (m: Manifest) => (m.source.settings["pg.only"] ?? "") !== "";

interface Chosen {
  readonly repo: Repository;
  readonly record: ManifestRecord;
  readonly recovery: RecoveryPlan | null;
  readonly target: RecoveryTarget | { kind: "immediate" };
  readonly systemId: string;
  readonly selection?: PgFileSelection;
}

/** {@linkcode choose}, then the selection of the chosen backup's files. */
async function chooseSelected(store: BlobStore, options: PgRestoreOptions): Promise<Chosen> {
  const c = await choose(store, options);
  return options.select ? { ...c, selection: await options.select(c.repo, c.record) } : c;
}

/** Where the part's selection restores: its globs, or everything. */
function includeOf(c: Chosen, part: string): { include?: readonly string[] } {
  const globs = c.selection?.include[part];
  if (!globs) return {};
  // No glob would mean everything: a name no backup holds means nothing.
  return { include: globs.length ? globs : [".bendsave-nothing-selected"] };
}

/** How many files a selection makes sparse, and their apparent bytes. */
function sparseTotals(s: PgFileSelection): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const part of Object.values(s.sparse)) {
    for (const size of Object.values(part)) {
      files++;
      bytes += size;
    }
  }
  return { files, bytes };
}

/** Makes the selection's sparse files of `part` below `dir`; returns how many it made. */
function makeSparse(c: Chosen, part: string, dir: string, own: (p: string, mode: number) => void) {
  let made = 0;
  for (const [rel, size] of Object.entries(c.selection?.sparse[part] ?? {})) {
    const p = path.join(dir, rel);
    if (fs.existsSync(p)) continue;
    const parent = path.dirname(p);
    if (!fs.existsSync(parent)) {
      fs.mkdirSync(parent, { recursive: true, mode: 0o700 });
      own(parent, 0o700);
    }
    const fd = fs.openSync(p, "wx", 0o600);
    try {
      fs.ftruncateSync(fd, size);
    } finally {
      fs.closeSync(fd);
    }
    own(p, 0o600);
    made++;
  }
  return made;
}

/** The warning sink of `options`, as a message callback. */
function warn(options: PgRestoreOptions): (message: string) => void {
  return (message) => options.onEvent?.({ type: "warning", message });
}

/** Opens the repository, picks the base backup and the WAL for the target. */
async function choose(store: BlobStore, options: PgRestoreOptions): Promise<Chosen> {
  const repo = await Repository.open(store);
  if (repo.encrypted && !options.walPassphrase) {
    throw new InvalidInput(
      `repository ${store.location} is encrypted, and the restore_command this restore writes needs its passphrase too: give restore --password-file FILE (readable by the server's user) or --password-command CMD, which restore_command passes to wal-fetch`,
    );
  }
  await repo.loadIndex();
  const all = await readableManifests(repo, warn(options));
  let record: ManifestRecord;
  if (options.manifest) {
    record = await repo.loadManifest(options.manifest);
    if (!isPg(record.manifest)) {
      throw new InvalidInput(
        `backup ${record.name} is of ${record.manifest.source.description}, not a PostgreSQL base backup: restore it without --as-of`,
      );
    }
    if (!options.select && isPartial(record.manifest)) {
      throw new InvalidInput(
        `backup ${record.name} holds only ${
          record.manifest.source.settings["pg.only"]
        }, not the whole cluster: restore tables from it with --to postgresql://... --table, or choose a whole-cluster backup`,
      );
    }
  } else {
    record = latestBackup(all, {
      source: options.source,
      accept: (m) => isPg(m) && (options.select !== undefined || !isPartial(m)),
      location: store.location,
    });
  }
  const systemId = record.manifest.source.settings["pg.system_identifier"] ?? "";
  const sameSource = all.filter((r) =>
    isPg(r.manifest) && r.manifest.source.key === record.manifest.source.key &&
    (options.select !== undefined || !isPartial(r.manifest))
  );
  const wal = await archivedSegments(repo, systemId);
  // A named backup without a target recovers to the end of that backup only.
  if (options.manifest && options.target === undefined) {
    const b = baseBackup(record);
    const plan = planRecovery([b], wal, { kind: "lsn", lsn: b.stopLsn, text: "" });
    return { repo, record, recovery: plan, target: { kind: "immediate" }, systemId };
  }
  const target = options.target ?? { kind: "latest" as const };
  const candidates = (options.manifest ? [record] : sameSource).map(baseBackup);
  let recovery: RecoveryPlan;
  try {
    recovery = planRecovery(candidates, wal, target);
  } catch (e) {
    if (e instanceof OutsideWindow) throw new InvalidInput(e.message);
    throw e;
  }
  const chosen = sameSource.find((r) => r.name === recovery.backup.name) ?? record;
  return { repo, record: chosen, recovery, target, systemId };
}

/** Quotes a value for postgresql.conf. */
function confString(s: string): string {
  return `'${s.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

function recoverySettings(
  c: Chosen,
  options: PgRestoreOptions,
  location: string,
): Record<string, string> {
  const out: Record<string, string> = {
    restore_command: `${options.bendsaveCommand} wal-fetch %f %p --from ${shellQuote(location)}${
      options.walPrefetch ? ` --prefetch ${options.walPrefetch}` : ""
    }${
      c.repo.encrypted && options.walPassphrase
        ? ` ${options.walPassphrase.flag} ${shellQuote(options.walPassphrase.value)}`
        : ""
    }`,
  };
  const t = c.target;
  if (t.kind === "time") out.recovery_target_time = t.text;
  else if (t.kind === "lsn") out.recovery_target_lsn = t.text;
  else if (t.kind === "immediate") out.recovery_target = "immediate";
  if (t.kind !== "latest") out.recovery_target_action = "promote";
  out.recovery_target_timeline = "latest";
  if (syncfsIsSafe()) out.recovery_init_sync_method = "syncfs";
  return out;
}

/**
 * Whether the restored server may sync its data directory with `syncfs`
 * before recovery (`recovery_init_sync_method`, PostgreSQL 14+) instead of
 * an fsync of every file: Linux 5.8 or later, where syncfs reports write-back
 * errors (PostgreSQL's documentation warns about earlier kernels). The
 * restore leaves its writes in the page cache, so that sync is where they
 * reach the disk: on the scale-70 cluster 0.52-0.62 s against 0.69-0.74 s
 * (bench/RESULTS.md).
 */
export function syncfsIsSafe(
  platform: string = process.platform,
  release: string = os.release(),
): boolean {
  if (platform !== "linux") return false;
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 5 || (major === 5 && minor >= 8);
}

function tablespacesOf(record: ManifestRecord, tablespaceRoot?: string): RestoredTablespace[] {
  const raw = record.manifest.source.settings["pg.tablespaces"];
  if (!raw) return [];
  let list: { oid: string | number; location: string }[];
  try {
    list = JSON.parse(raw);
  } catch {
    throw new InvalidInput(`backup ${record.name} records unreadable tablespaces: ${raw}`);
  }
  return list.map((t) => ({
    oid: String(t.oid),
    location: tablespaceRoot ? path.join(tablespaceRoot, String(t.oid)) : t.location,
    part: tablespacePartName(t.oid),
  })).filter((t) => record.manifest.parts.some((p) => p.name === t.part));
}

/** Works out what a point-in-time restore would do, writing nothing. */
export async function planPgRestore(
  store: BlobStore,
  target: string,
  options: PgRestoreOptions,
): Promise<PgRestorePlan> {
  const c = await chooseSelected(store, options);
  return await buildPlan(store, c, path.resolve(target), options);
}

async function buildPlan(
  store: BlobStore,
  c: Chosen,
  abs: string,
  options: PgRestoreOptions,
): Promise<PgRestorePlan> {
  const common = { ...(options.restore ?? {}), manifest: c.record.name, repository: c.repo };
  const dataDir = await planRestore(store, abs, {
    ...common,
    part: PG_DATA_PART,
    ...includeOf(c, PG_DATA_PART),
  });
  if (dataDir.targetNotEmpty) {
    throw new InvalidInput(
      `restore target "${abs}" is not empty: a PostgreSQL data directory is restored into an empty or new directory`,
    );
  }
  const tablespaces = [];
  for (const t of tablespacesOf(c.record, options.tablespaceRoot)) {
    const plan = await planRestore(store, t.location, {
      ...common,
      part: t.part,
      ...includeOf(c, t.part),
    });
    if (plan.targetNotEmpty) {
      throw new InvalidInput(
        `tablespace ${t.oid} is restored into its location "${t.location}", which is not empty: empty it (or move it away) first`,
      );
    }
    tablespaces.push({ ...t, plan });
  }
  const labels = await labelFiles(c);
  const w = c.recovery?.window;
  return {
    manifest: c.record.name,
    systemId: c.systemId,
    dataDirectory: abs,
    target: c.target.kind === "time" || c.target.kind === "lsn" ? c.target.text : c.target.kind,
    wal: c.recovery
      ? { first: c.recovery.firstWal, last: c.recovery.lastWal, segments: c.recovery.segments }
      : null,
    window: {
      from: w?.fromMicros != null ? formatMicros(w.fromMicros) : null,
      to: w?.toMicros != null ? formatMicros(w.toMicros) : null,
      gaps: (w?.gaps ?? []).map((g) => `${g.after}..${g.before}`),
    },
    dataDir,
    tablespaces,
    files: [...labels.keys(), "recovery.signal"],
    settings: recoverySettings(c, options, options.repositoryLocation ?? store.location),
    ...(c.selection ? { sparse: sparseTotals(c.selection) } : {}),
  };
}

/** The files pg_backup_stop returned (backup_label, tablespace_map), by name. */
async function labelFiles(c: Chosen): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const part of c.record.manifest.parts) {
    if (part.name !== PG_LABEL_PART && part.name !== PG_TABLESPACE_MAP_PART) continue;
    await readStreamFiles(c, part.root, part.name, out);
  }
  if (!out.has("backup_label")) {
    throw new InvalidInput(
      `backup ${c.record.name} has no backup_label, so it cannot be recovered consistently: choose another base backup`,
    );
  }
  return out;
}

/** Reads the files of a stream part's one-file tree into `out`. */
async function readStreamFiles(
  c: Chosen,
  root: Uint8Array,
  partName: string,
  out: Map<string, Uint8Array>,
): Promise<void> {
  for (const n of await c.repo.loadTree(root, `backup ${c.record.name}:${partName}`)) {
    if (n.type !== NodeType.file) continue;
    const chunks: Uint8Array[] = [];
    for (const b of n.blocks) chunks.push(await c.repo.readBlob(b, n.name));
    const data = new Uint8Array(chunks.reduce((a, x) => a + x.length, 0));
    let pos = 0;
    for (const x of chunks) {
      data.set(x, pos);
      pos += x.length;
    }
    out.set(n.name, data);
  }
}

/** Restores a PostgreSQL cluster to the target (see the module documentation). */
export async function restorePg(
  store: BlobStore,
  target: string,
  options: PgRestoreOptions,
): Promise<PgRestoreResult> {
  const started = Date.now();
  const abs = path.resolve(target);
  throwIfCancelled(options.signal, "restore");
  const c = await chooseSelected(store, options);
  const plan = await buildPlan(store, c, abs, options);
  const common = {
    ...(options.restore ?? {}),
    manifest: c.record.name,
    repository: c.repo,
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  let dataDirResult: RestoreResult;
  try {
    dataDirResult = await restore(store, abs, {
      ...common,
      part: PG_DATA_PART,
      ...includeOf(c, PG_DATA_PART),
    });
    for (const t of plan.tablespaces) {
      await restore(store, t.location, { ...common, part: t.part, ...includeOf(c, t.part) });
    }
    await checkpoint(options.signal, "restore");
  } catch (e) {
    if (!(e instanceof Cancelled)) throw e;
    throw new Cancelled(e.message, {
      cause: e,
      committed: `the data directory ${abs} is incomplete and has no recovery settings: ` +
        `remove it (and the tablespace directories) before you restore again`,
    });
  }
  // The owner of the cluster is the owner of PG_VERSION; PostgreSQL refuses
  // a data directory that is not 0700 (or 0750) or not owned by its user.
  const owner = fs.statSync(path.join(abs, "PG_VERSION"));
  const own = (p: string, mode: number) => {
    if (process.getuid?.() === 0) fs.chownSync(p, owner.uid, owner.gid);
    fs.chmodSync(p, mode);
  };
  own(abs, 0o700);
  if (c.selection) {
    makeSparse(c, PG_DATA_PART, abs, own);
    for (const t of plan.tablespaces) makeSparse(c, t.part, t.location, own);
  }
  if (options.tablespaceRoot) {
    // The restored links still point at the recorded locations: point them at the new ones
    // (PostgreSQL would do so from tablespace_map; a link into a live tablespace never stays).
    for (const t of plan.tablespaces) {
      const link = path.join(abs, "pg_tblspc", t.oid);
      fs.rmSync(link, { force: true });
      fs.mkdirSync(path.dirname(link), { recursive: true, mode: 0o700 });
      fs.symlinkSync(t.location, link);
    }
  }
  for (const d of ["pg_wal", path.join("pg_wal", "archive_status")]) {
    const p = path.join(abs, d);
    if (!fs.existsSync(p)) fs.mkdirSync(p, { mode: 0o700 });
    own(p, 0o700);
  }
  for (const [name, bytes] of await labelFiles(c)) {
    let data = bytes;
    if (name === "tablespace_map" && options.tablespaceRoot) {
      // Lines "<oid> <location>": the tablespaces are restored below tablespaceRoot.
      data = new TextEncoder().encode(
        plan.tablespaces.map((t) => `${t.oid} ${t.location}\n`).join(""),
      );
    }
    fs.writeFileSync(path.join(abs, name), data, { mode: 0o600 });
    own(path.join(abs, name), 0o600);
  }
  if (options.walPrefetch && plan.wal) {
    await seedFetchSpool(store, c, plan.wal, abs, options, own);
  }
  fs.writeFileSync(path.join(abs, "recovery.signal"), "", { mode: 0o600 });
  own(path.join(abs, "recovery.signal"), 0o600);
  const auto = path.join(abs, "postgresql.auto.conf");
  const lines = [
    "",
    `# bendsave restore: base backup ${c.record.name}, target ${plan.target}`,
    ...Object.entries(plan.settings).map(([k, v]) => `${k} = ${confString(v)}`),
    "",
  ];
  fs.appendFileSync(auto, lines.join("\n"));
  own(auto, 0o600);
  return { ...plan, dataDirResult, durationMs: Date.now() - started };
}

/**
 * Fetches the first WAL segments the replay reads (up to `walPrefetch`) into
 * the restored server's prefetch spool (`pg_wal/bendsave-prefetch/`, as the
 * prefetcher would), so that its first `restore_command` runs are served at
 * once rather than wait for a fetch. Best effort: a segment that cannot be
 * fetched ends the seeding with a warning, and recovery fetches it itself.
 */
async function seedFetchSpool(
  store: BlobStore,
  c: Chosen,
  wal: { first: string; segments: number },
  abs: string,
  options: PgRestoreOptions,
  own: (p: string, mode: number) => void,
): Promise<void> {
  const first = parseWalName(wal.first);
  if (first?.type !== "segment") return;
  const spool = path.join(abs, "pg_wal", "bendsave-prefetch");
  const repository = options.repositoryLocation ?? store.location;
  fs.mkdirSync(spool, { recursive: true, mode: 0o700 });
  own(spool, 0o700);
  let name = wal.first;
  let segno: bigint | null = null;
  for (let i = 0; i < Math.min(options.walPrefetch ?? 0, wal.segments); i++) {
    await checkpoint(options.signal, "restore");
    try {
      const r = await fetchIntoSpool(store, spool, name, repository, { systemId: c.systemId });
      for (const f of [name, `${name}.meta`]) own(path.join(spool, f), 0o600);
      segno ??= segmentStartLsn(first, r.size) / BigInt(r.size);
      name = walSegmentName(first.timeline, segno + BigInt(i + 1), r.size);
    } catch (e) {
      if (e instanceof Cancelled) throw e;
      if (!(e instanceof WalNotArchived)) {
        options.onEvent?.({
          type: "warning",
          message: `WAL file ${name} was not fetched ahead (${
            (e as Error).message
          }): recovery fetches it itself`,
        });
      }
      return;
    }
  }
}

/**
 * True when a restore with these choices restores a PostgreSQL base backup
 * (and so must recover it): the named backup is one, or the newest backup of
 * `source` is, or every backup of the repository is.
 */
export async function restoresPostgres(
  store: BlobStore,
  options: { manifest?: string | null; source?: string },
): Promise<boolean> {
  const repo = await Repository.open(store);
  if (options.manifest) return isPg((await repo.loadManifest(options.manifest)).manifest);
  const all = await readableManifests(repo);
  if (options.source !== undefined) {
    return isPg(latestBackup(all, { source: options.source, location: store.location }).manifest);
  }
  return all.length > 0 && all.every((r) => isPg(r.manifest));
}
