/**
 * Restores a whole Databend cluster from a backup of it: every data object
 * into the storage the target query-node config describes (fs or S3), then
 * the meta export into a file, then (with a databend-meta config) the
 * import of that file into the meta node's raft directory by
 * `databend-metactl import`. Everything is checked before anything is
 * written: the backup is a cluster backup, the storage is empty (or
 * `overwrite` is set), the export file does not exist (or `overwrite`), the
 * raft directory is empty, and every pack needed is present. The export is
 * restored first, into a scratch directory beside its final path (so the
 * packs and hashes of the `meta` part are checked before the storage is
 * touched), and takes its final name after the storage is restored.
 *
 * @module
 */
import { shellQuote } from "../../formats/shell.ts";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { BlobStore } from "../../store/drivers/types.ts";
import { CommandFailed, InvalidInput, StorageFull } from "../../store/errors.ts";
import { Repository } from "../../store/repository.ts";
import type { EventSink } from "../../store/backup/events.ts";
import { type CancelOptions, checkpoint, throwIfCancelled } from "../../store/cancel.ts";
import {
  planRestore,
  restore,
  type RestorePlan,
  type RestoreResult,
} from "../../store/restore/restore.ts";
import { planWith, restoreWith } from "../../store/restore/restorer.ts";
import type { RestoreOutput } from "../../store/restore/output.ts";
import { DirOutput } from "../../store/restore/dir_output.ts";
import { StoreOutput } from "../../store/restore/store_output.ts";
import type { Manifest } from "../../formats/manifest.ts";
import { latestBackup, readableManifests } from "../../store/source_groups.ts";
import { toHex } from "../../formats/hash.ts";
import { loadQueryConfig, type QueryConfig, storageLocation } from "./query_config.ts";
import { loadMetaConfig, type MetaNodeConfig } from "./meta_config.ts";
import { openClusterStorage } from "./cluster_storage.ts";
import { META_EXPORT_FILE } from "./cluster_source.ts";

/**
 * Options of {@linkcode planClusterRestore} and {@linkcode restoreCluster}.
 * A `signal` that aborts stops the restore between files (`Cancelled`): the
 * staged meta export is removed, and databend-metactl import never starts.
 */
export interface ClusterRestoreOptions extends CancelOptions {
  /** Manifest name; default: the newest backup of the target's tenant and cluster. */
  readonly manifest?: string | null;
  /** Restore into storage that holds objects (rewriting those that differ) and replace the export file. */
  readonly overwrite?: boolean;
  /** Where the meta export is written (default: next to the query config). */
  readonly metaExportTo?: string;
  /** databend-meta config: import the export into its raft directory. */
  readonly metaConfig?: string;
  /** The databend-metactl program (default: `databend-metactl` on PATH). */
  readonly metactl?: string;
  readonly onEvent?: EventSink;
  /** Writer threads for fs storage (default: one per core). */
  readonly workers?: number;
}

/** What a cluster restore will do (the dry run's report). */
export interface ClusterRestorePlan {
  readonly manifest: string;
  readonly manifestId: string;
  /** Tenant and cluster of the backup. */
  readonly tenant: string;
  readonly clusterId: string;
  /** The storage restore: target is the storage location. */
  readonly storage: RestorePlan;
  readonly storageType: "fs" | "s3";
  /** Where the meta export goes, its size, and whether a file is already there. */
  readonly metaExport: { readonly path: string; readonly bytes: number; readonly exists: boolean };
  /** The import into the meta node (with a meta config), or null. */
  readonly metaImport: { readonly raftDir: string; readonly nodeId: number } | null;
  /** The `databend-metactl import` command line (with a placeholder raft dir without a meta config). */
  readonly importCommand: string;
  /** Things the operator should know (a tenant or cluster that differs from the target config). */
  readonly notes: string[];
}

/** What a cluster restore did. */
export interface ClusterRestoreResult extends ClusterRestorePlan {
  readonly storageResult: RestoreResult;
  /** True when databend-metactl imported the export. */
  readonly metaImported: boolean;
  readonly durationMs: number;
}

interface Prepared {
  readonly plan: ClusterRestorePlan;
  readonly config: QueryConfig;
  readonly meta: MetaNodeConfig | null;
  readonly target: BlobStore | null;
  readonly repo: Repository;
}

function importArgs(metaConfig: MetaNodeConfig | null, file: string): string[] {
  const args = ["import", "--raft-dir", metaConfig?.raftDir ?? "<raft_dir>", "--db", file];
  if (metaConfig) args.push(`--id=${metaConfig.id}`);
  return args;
}

/**
 * Where the storage part of a cluster backup is restored: the data directory
 * of fs storage, or the objects of the opened `target` (S3). The meta
 * export always goes into a directory: a cluster restore is these two
 * outputs, one after the other.
 */
function storageOutput(
  config: QueryConfig,
  target: BlobStore | null,
  options: ClusterRestoreOptions,
): RestoreOutput {
  const onEvent = options.onEvent ? { onEvent: options.onEvent } : {};
  if (config.storage.type === "fs") {
    return new DirOutput(config.storage.dataPath, {
      ...onEvent,
      ...(options.workers !== undefined ? { workers: options.workers } : {}),
    });
  }
  return new StoreOutput(target!, onEvent);
}

/** The newest cluster backup, preferring the target's tenant and cluster. */
async function chooseManifest(
  repo: Repository,
  config: QueryConfig,
  wanted: string | null | undefined,
): Promise<{ name: string; id: string; manifest: Manifest }> {
  const check = (name: string, m: Manifest) => {
    const parts = new Set(m.parts.map((p) => p.name));
    if (m.source.type !== "databend" || !parts.has("meta") || !parts.has("storage")) {
      throw new InvalidInput(
        `backup ${name} is of ${m.source.description}, not a Databend cluster: restore it with --to <directory>`,
      );
    }
  };
  if (wanted) {
    const r = await repo.loadManifest(wanted);
    check(r.name, r.manifest);
    return { name: r.name, id: toHex(r.id), manifest: r.manifest };
  }
  const all = await readableManifests(repo);
  const accept = (m: Manifest) => m.source.type === "databend";
  if (!all.some((r) => accept(r.manifest))) {
    throw new InvalidInput(
      `repository ${repo.store.location} holds no Databend cluster backup: back one up with --from <query-node.toml>`,
    );
  }
  // The target's own tenant and cluster first; another cluster's backup only
  // when it is the only one (restoring into a new cluster), never a guess.
  const pick = latestBackup(all, {
    prefer: `databend:${config.tenantId}:${config.clusterId}`,
    accept,
    location: repo.store.location,
  });
  return { name: pick.name, id: toHex(pick.id), manifest: pick.manifest };
}

function exists(p: string): boolean {
  try {
    return fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false; // ENOTDIR and the like: nothing there (writing it fails later, with its reason)
  }
}

async function prepare(
  store: BlobStore,
  configPath: string,
  options: ClusterRestoreOptions,
  create: boolean,
): Promise<Prepared> {
  const config = await loadQueryConfig(configPath);
  const meta = options.metaConfig ? await loadMetaConfig(options.metaConfig) : null;
  const repo = await Repository.open(store);
  const chosen = await chooseManifest(repo, config, options.manifest);
  const settings = chosen.manifest.source.settings;
  if (settings["partial"] !== undefined) {
    throw new InvalidInput(
      `backup ${chosen.name} is partial (it holds the objects of ${
        settings["partial"].split(",").join(", ")
      } only): a whole-cluster restore needs a full backup; restore its tables with --table DB.TABLE`,
    );
  }
  const tenant = settings["tenant"] ?? "";
  const clusterId = settings["cluster"] ?? "";
  const notes: string[] = [];
  if (tenant !== config.tenantId) {
    notes.push(
      `the backup is of tenant "${tenant}" but ${configPath} says tenant_id "${config.tenantId}": databend-query shows only its own tenant's databases`,
    );
  }
  if (clusterId !== config.clusterId) {
    notes.push(
      `the backup is of cluster "${clusterId}"; ${configPath} says cluster_id "${config.clusterId}"`,
    );
  }
  // One open repository for every plan and restore: its index is loaded once.
  const partOptions = { manifest: chosen.name, part: "storage", repository: repo } as const;
  const target = config.storage.type === "fs" ? null : await openClusterStorage(config.storage, {
    create,
    onWarning: (message) => options.onEvent?.({ type: "warning", message }),
  });
  const storage = await planWith(store, storageOutput(config, target, options), partOptions);
  const metaPlan = await planRestore(store, path.dirname(path.resolve(configPath)), {
    manifest: chosen.name,
    part: "meta",
    repository: repo,
  });
  const stem = chosen.name.replace(/\.manifest$/, "");
  const exportPath = path.resolve(
    options.metaExportTo ??
      path.join(path.dirname(path.resolve(configPath)), `meta-export-${stem}.jsonl`),
  );
  const command = [options.metactl ?? "databend-metactl", ...importArgs(meta, exportPath)];
  return {
    config,
    meta,
    target,
    repo,
    plan: {
      manifest: chosen.name,
      manifestId: chosen.id,
      tenant,
      clusterId,
      storage: { ...storage, target: storageLocation(config.storage) },
      storageType: config.storage.type,
      metaExport: { path: exportPath, bytes: metaPlan.bytes, exists: exists(exportPath) },
      metaImport: meta ? { raftDir: meta.raftDir, nodeId: meta.id } : null,
      importCommand: command.map(shellQuote).join(" "),
      notes,
    },
  };
}

/**
 * Works out what restoring the cluster backup into the cluster of the
 * query-node config at `configPath` would do, writing nothing (the dry run).
 */
export async function planClusterRestore(
  store: BlobStore,
  configPath: string,
  options: ClusterRestoreOptions = {},
): Promise<ClusterRestorePlan> {
  const p = await prepare(store, configPath, options, false);
  await p.target?.close?.();
  return p.plan;
}

function raftDirNotEmpty(dir: string): boolean {
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (!st) return false;
  if (!st.isDirectory()) {
    throw new InvalidInput(
      `raft_dir "${dir}" of the meta config is not a directory: fix [raft_config] raft_dir`,
    );
  }
  return fs.readdirSync(dir).length > 0;
}

/**
 * Restores the cluster backup into the cluster of the query-node config at
 * `configPath`: storage first, then the meta export file, then the import
 * into the meta node when `metaConfig` is given.
 */
export async function restoreCluster(
  store: BlobStore,
  configPath: string,
  options: ClusterRestoreOptions = {},
): Promise<ClusterRestoreResult> {
  const started = Date.now();
  throwIfCancelled(options.signal, "restore");
  const { plan, meta, target, config, repo } = await prepare(store, configPath, options, true);
  try {
    // Refuse before writing anything.
    if (plan.storage.targetNotEmpty && !options.overwrite) {
      throw new InvalidInput(
        `the cluster storage ${plan.storage.target} is not empty: restore into empty storage, or pass --overwrite to rewrite objects that differ`,
      );
    }
    if (plan.metaExport.exists && !options.overwrite) {
      throw new InvalidInput(
        `${plan.metaExport.path} exists: choose another file with --meta-export-to, or pass --overwrite to replace it`,
      );
    }
    if (meta && raftDirNotEmpty(meta.raftDir)) {
      throw new InvalidInput(
        `raft_dir "${meta.raftDir}" of the meta node is not empty: databend-metactl import would erase it; move it aside (bendsave never deletes it) and run again`,
      );
    }
    // The export first, into a scratch directory beside its final path: its packs and
    // hashes are checked before the storage is touched; it takes its name last.
    const scratch = await stageMetaExport(store, repo, plan, options);
    let storageResult: RestoreResult;
    try {
      const common = {
        manifest: plan.manifest,
        part: "storage",
        repository: repo,
        ...(options.overwrite ? { overwrite: true } : {}),
        ...(options.onEvent ? { onEvent: options.onEvent } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      };
      storageResult = await restoreWith(store, storageOutput(config, target, options), common);
      fs.renameSync(path.join(scratch, META_EXPORT_FILE), plan.metaExport.path);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
    let metaImported = false;
    if (meta) {
      await checkpoint(options.signal, "restore");
      await runImport(
        options.metactl ?? "databend-metactl",
        importArgs(meta, plan.metaExport.path),
      );
      metaImported = true;
    }
    return {
      ...plan,
      storage: { ...storageResult, target: plan.storage.target },
      storageResult,
      metaImported,
      durationMs: Date.now() - started,
    };
  } finally {
    await target?.close?.();
  }
}

/**
 * Restores the `meta` part into a new scratch directory beside the export
 * path and returns the directory (the caller renames the file and removes it).
 */
async function stageMetaExport(
  store: BlobStore,
  repo: Repository,
  plan: ClusterRestorePlan,
  options: ClusterRestoreOptions,
): Promise<string> {
  const dir = path.dirname(plan.metaExport.path);
  let scratch: string;
  try {
    fs.mkdirSync(dir, { recursive: true });
    scratch = fs.mkdtempSync(path.join(dir, ".bendsave-meta-"));
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOSPC") {
      throw new StorageFull(`the disk holding "${dir}" is full: free space and run again`);
    }
    throw new InvalidInput(
      `cannot write the meta export into "${dir}" (${
        (e as Error).message
      }): choose a writable place with --meta-export-to`,
    );
  }
  try {
    await restore(store, scratch, {
      manifest: plan.manifest,
      part: "meta",
      repository: repo,
      workers: 0,
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return scratch;
  } catch (e) {
    fs.rmSync(scratch, { recursive: true, force: true });
    throw e;
  }
}

async function runImport(program: string, args: string[]): Promise<void> {
  const shown = [program, ...args].map(shellQuote).join(" ");
  const result = await new Promise<{ code: number | null; stderr: string; error?: Error }>(
    (resolve) => {
      const child = spawn(program, args, { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (text: string) => {
        stderr = (stderr + text).slice(-4096);
      });
      child.on("error", (error) => resolve({ code: null, stderr, error }));
      child.on("close", (code) => resolve({ code, stderr }));
    },
  );
  if (result.error) {
    if ((result.error as { code?: string }).code === "ENOENT") {
      throw new CommandFailed(
        `${program} was not found: install databend-metactl (or pass --metactl PATH) and run: ${shown}`,
      );
    }
    throw new CommandFailed(
      `cannot run ${program} (${result.error.message}): run by hand: ${shown}`,
    );
  }
  if (result.code !== 0) {
    const last = result.stderr.trim().split("\n").pop() ?? "";
    throw new CommandFailed(
      `${program} import exited with status ${result.code}${
        last ? ` (${last})` : ""
      }: fix the cause and run: ${shown}`,
    );
  }
}
