/**
 * `bendsave restore --from <repo>[/manifests/<name>.manifest] --to <dir> [--confirm]`
 *
 * @module
 */
import {
  planRestore,
  restore,
  type RestorePlan,
  type RestoreResult,
} from "../../store/restore/restore.ts";
import type { FailedFile } from "../../store/restore/file_writer.ts";
import { RestoreIncomplete } from "../../store/errors.ts";
import { restoresPostgres } from "../../sources/postgres/pg_restore.ts";
import { restorePgCommand } from "./restore_pg.ts";
import { includeMatcher } from "../../formats/glob.ts";
import { RESTORE_PG_TABLE_HELP, restorePgTableCommand } from "./restore_pg_table.ts";
import { isTableRestore, restoreTableCommand } from "./restore_table.ts";
import { isPgUri } from "../../sources/postgres/connection.ts";
import { openStore, splitManifestLocation } from "../../store/open_store.ts";
import { parseIdMap } from "../../store/restore/owner.ts";
import {
  type ClusterRestorePlan,
  planClusterRestore,
  restoreCluster,
} from "../../sources/databend/cluster_target.ts";
import { isConfigFile, parse, required } from "../args.ts";
import { ExitCode, UsageError } from "../exit_codes.ts";
import { formatBytes, formatDuration, formatRate, type Output } from "../output.ts";

/** Help text. */
export const RESTORE_HELP =
  `Usage: bendsave restore --from <repo>[/manifests/<name>.manifest] --to <dir | query-node.toml> [options]

Restores a backup into a directory, or a Databend cluster backup into the
cluster a query-node config describes: every data object into its storage
(fs or S3), then the meta export into a file, then (with --meta-config) the
import of that file by databend-metactl. Without --confirm it is a dry run:
it prints what would be written and writes nothing. --from <repo> alone
means the latest backup of the source being restored: with --source, of that
source; for a cluster, of the config's tenant and cluster; otherwise of the
only source the repository holds (with several, it refuses and lists them).

Options:
  --from <location>    <repo>/manifests/<name>.manifest, or <repo> for the latest backup
  --source <key>       with --from <repo>: restore the latest backup of this source (its key
                       as bendsave list --json shows it, its description, or its path)

PostgreSQL (point-in-time recovery into a new data directory; a PostgreSQL base backup is
always restored this way):
  --as-of <time>       recover to this time (RFC 3339, or a timestamptz as PostgreSQL prints
                       it), or "latest" (the default: the end of the archived WAL); a named
                       backup without --as-of recovers to the end of that backup
  --target-lsn <lsn>   recover to this LSN (X/Y) instead
  --bendsave-command <cmd>
                       the command restore_command runs bendsave with (default: this bendsave)
  --wal-prefetch <n>   restore_command fetches the next n WAL segments ahead in a background
                       process (wal-fetch --prefetch, into pg_wal/bendsave-prefetch/, which base
                       backups leave out and which is emptied once recovery ends); 0: one
                       segment per command (default 8)
                       An encrypted repository: give --password-file FILE (readable by the
                       server's user) or --password-command CMD; restore_command passes the
                       same option to wal-fetch (never the passphrase itself)
  --to <target>        target directory (must be empty unless --overwrite), or a
                       databend-query config (.toml) whose storage must be empty
  --meta-export-to <file>
                       cluster: where the meta export is written
                       (default: meta-export-<backup>.jsonl beside the config)
  --meta-config <databend-meta.toml>
                       cluster: import the export into this meta node's raft_dir
                       (which must be empty) with databend-metactl import; without it
                       the command to run is printed
  --metactl <program>  cluster: the databend-metactl to run (default: from PATH)
  --confirm            perform the restore
  --overwrite          restore into a non-empty directory or storage, rewriting only files
                       that differ (and replace an existing meta export file)
  --include <glob>     restore only matching paths (repeatable; * within a name, ** across dirs)
  --part <name>        part of the backup to restore (default: the only one, or "files")
  --no-owner           leave owners alone (by default a restore run as root gives every
                       entry its recorded uid and gid; not as root, owners are never set)
  --map-uid <FROM:TO[,FROM:TO...]>
                       as root, set uid TO where the backup recorded uid FROM (repeatable;
                       FROM * maps every other uid). Ids are numeric: backups record no
                       user or group names
  --map-gid <FROM:TO[,FROM:TO...]>
                       the same for group ids
  --list-packs         list every pack the restore reads (always on for staged: repositories,
                       so an operator knows which tapes to stage)
  --json               NDJSON progress events and a final summary object
  -h, --help           this help
${RESTORE_PG_TABLE_HELP}

Databend tables into a running cluster (--to query-node.toml with --table DB.TABLE or
--table-list FILE): see bendsave restore --to query-node.toml --table x.y --help`;

function describePlan(plan: RestorePlan, listPacks: boolean, location: string, limit = 20): string {
  const lines = [
    `backup ${plan.manifest} -> ${plan.target}`,
    `  files      ${plan.files} (${
      formatBytes(plan.bytes)
    }), ${plan.dirs} dirs, ${plan.symlinks} symlinks`,
    ...(plan.hardLinks
      ? [`  hard links ${plan.hardLinks} of these files are restored as links of another one`]
      : []),
    ...(plan.ownership === "set"
      ? [`  owners     set: the numeric uid and gid the backup recorded`]
      : plan.ownership === "not-root"
      ? [`  owners     not restored: not running as root (files belong to the restoring user)`]
      : []),
    `  packs      ${plan.packs.length} (${
      formatBytes(plan.packs.reduce((a, p) => a + p.size, 0))
    }) to read` +
    (listPacks ? ":" : ""),
  ];
  if (listPacks) {
    const missing = new Set(plan.missingPacks);
    for (const p of plan.packs) {
      lines.push(
        `             ${p.id}  ${formatBytes(p.size)}${missing.has(p.id) ? "  (missing)" : ""}`,
      );
    }
  }
  if (plan.missingPacks.length) {
    lines.push(
      `  missing    ${plan.missingPacks.length} of these packs are not in ${location}: ` +
        `stage (or copy back) them and run again`,
    );
  }
  if (plan.unlistedDirs.length) {
    lines.push(
      `  unlisted   ${plan.unlistedDirs.length} director${
        plan.unlistedDirs.length === 1 ? "y is" : "ies are"
      } ` +
        `listed in a missing pack, so more packs may be needed: ${
          plan.unlistedDirs.slice(0, limit).map((d) => d === "" ? "/" : d).join(", ")
        }`,
    );
  }
  if (plan.replacedByDirectory.length) {
    lines.push(
      `  replaces   ${plan.replacedByDirectory.length} path(s) where the backup has a directory ` +
        `(the link or file itself is removed; nothing is written through a link):`,
    );
    for (const r of plan.replacedByDirectory.slice(0, limit)) {
      lines.push(`             ${r.path} (${r.was})`);
    }
    if (plan.replacedByDirectory.length > limit) {
      lines.push(`             ... and ${plan.replacedByDirectory.length - limit} more`);
    }
  }
  if (plan.replaced.length) {
    lines.push(`  replaces   ${plan.replaced.length} existing path(s) in the target:`);
    for (const r of plan.replaced.slice(0, limit)) lines.push(`             ${r}`);
    if (plan.replaced.length > limit) {
      lines.push(`             ... and ${plan.replaced.length - limit} more`);
    }
  }
  return lines.join("\n");
}

/** Runs the command. */
export async function restoreCommand(args: string[], out: Output): Promise<number> {
  if (isTableRestore(args)) return await restoreTableCommand(args, out);
  const { values } = parse("restore", args, {
    from: { type: "string" },
    to: { type: "string" },
    confirm: { type: "boolean" },
    overwrite: { type: "boolean" },
    include: { type: "string", multiple: true },
    part: { type: "string" },
    source: { type: "string" },
    "as-of": { type: "string" },
    "target-lsn": { type: "string" },
    "bendsave-command": { type: "string" },
    "wal-prefetch": { type: "string" },
    "no-owner": { type: "boolean" },
    "map-uid": { type: "string", multiple: true },
    "map-gid": { type: "string", multiple: true },
    "list-packs": { type: "boolean" },
    "meta-export-to": { type: "string" },
    "meta-config": { type: "string" },
    metactl: { type: "string" },
    table: { type: "string", multiple: true },
    "table-list": { type: "string" },
    "restore-target-list": { type: "string" },
    "rename-to": { type: "string" },
    clean: { type: "boolean" },
    "pg-bin": { type: "string" },
    "scratch-dir": { type: "string" },
  });
  if (values.help) {
    console.log(RESTORE_HELP);
    return ExitCode.ok;
  }
  const from = required("restore", values, "from");
  const to = required("restore", values, "to");
  const { repo, manifest } = splitManifestLocation(from);
  if (manifest && values.source !== undefined) {
    throw new UsageError(
      "--source picks the latest backup of a source: give --from <repo> without a manifest name, or leave out --source",
    );
  }
  const tableFlags = [
    "table",
    "table-list",
    "restore-target-list",
    "rename-to",
    "clean",
    "pg-bin",
    "scratch-dir",
  ] as const;
  if (isPgUri(to)) {
    const store = await openStore(repo, { onWarning: out.warn });
    return await restorePgTableCommand(store, to, values, {
      manifest,
      ...(values.source !== undefined ? { source: values.source as string } : {}),
      repository: repo,
    }, out);
  }
  if (tableFlags.some((f) => values[f] !== undefined)) {
    throw new UsageError(
      "--table, --table-list, --restore-target-list, --rename-to, --clean, --pg-bin and --scratch-dir restore tables into a PostgreSQL server: give its postgresql:// URI to --to",
    );
  }
  const cluster = isConfigFile(to);
  const clusterFlags = ["meta-export-to", "meta-config", "metactl"] as const;
  if (!cluster && clusterFlags.some((f) => values[f] !== undefined)) {
    throw new UsageError(
      "--meta-export-to, --meta-config and --metactl are for a cluster: give its query-node .toml to --to",
    );
  }
  if (cluster && (values.include !== undefined || values.part !== undefined)) {
    throw new UsageError(
      "--include and --part restore into a directory: a cluster is restored whole (give a directory to --to)",
    );
  }
  const maps = {
    uid: values["map-uid"] as string[] | undefined,
    gid: values["map-gid"] as string[] | undefined,
  };
  if (cluster && (values["no-owner"] !== undefined || maps.uid || maps.gid)) {
    throw new UsageError(
      "--no-owner, --map-uid and --map-gid restore into a directory: a cluster's files get their recorded owners as root",
    );
  }
  if (values["no-owner"] && (maps.uid || maps.gid)) {
    throw new UsageError(
      "--map-uid and --map-gid set owners, --no-owner leaves them: give one or the other",
    );
  }
  let owner: {
    owner?: false;
    uidMap?: Map<number | "*", number>;
    gidMap?: Map<number | "*", number>;
  };
  try {
    owner = {
      ...(values["no-owner"] ? { owner: false as const } : {}),
      ...(maps.uid ? { uidMap: parseIdMap(maps.uid) } : {}),
      ...(maps.gid ? { gidMap: parseIdMap(maps.gid) } : {}),
    };
  } catch (e) {
    throw new UsageError(`${(e as Error).message} (--map-uid, --map-gid)`);
  }
  try {
    includeMatcher((values.include as string[] | undefined) ?? []);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const store = await openStore(repo, { onWarning: out.warn });
  if (cluster) {
    return await restoreClusterCommand(store, to, values, manifest, out);
  }
  const pgFlags = values["as-of"] !== undefined || values["target-lsn"] !== undefined;
  const source = values.source as string | undefined;
  if (
    pgFlags ||
    await restoresPostgres(store, { manifest, ...(source !== undefined ? { source } : {}) })
  ) {
    return await restorePgCommand(
      store,
      to,
      values,
      { manifest, ...(source !== undefined ? { source } : {}), repository: repo },
      owner,
      out,
    );
  }
  if (values["bendsave-command"] !== undefined || values["wal-prefetch"] !== undefined) {
    throw new UsageError(
      "--bendsave-command and --wal-prefetch are for a PostgreSQL restore (with --as-of)",
    );
  }
  const listPacks = values["list-packs"] === true || !store.capabilities.writable;
  const options = {
    manifest,
    overwrite: values.overwrite === true,
    include: (values.include as string[] | undefined) ?? [],
    onEvent: out.event.bind(out),
    signal: out.signal,
    ...(values.source !== undefined ? { source: values.source as string } : {}),
    ...(values.part ? { part: values.part as string } : {}),
    ...owner,
  };
  const noOwner = values["no-owner"] ? `\n  owners     not restored (--no-owner)` : "";
  if (!values.confirm) {
    const plan = await planRestore(store, to, options);
    out.result({ type: "plan", dry_run: true, ...plan });
    out.print(
      `dry run: nothing was written\n${describePlan(plan, listPacks, store.location)}${noOwner}`,
    );
    if (plan.targetNotEmpty && !options.overwrite) {
      out.print(
        `  note: the target is not empty; --confirm will refuse unless --overwrite is given`,
      );
    }
    out.print(`run again with --confirm to restore`);
    return ExitCode.ok;
  }
  let r: RestoreResult;
  let failed: readonly FailedFile[] = [];
  try {
    r = await restore(store, to, options);
  } catch (e) {
    if (!(e instanceof RestoreIncomplete)) throw e;
    r = e.result as RestoreResult;
    failed = e.failed;
  }
  out.done();
  out.result({ type: "summary", dry_run: false, ...r });
  out.print(
    `restored ${describePlan(r, false, store.location)}${noOwner}\n` +
      `  written    ${r.filesWritten} files, ${formatBytes(r.bytesWritten)}` +
      (r.filesUnchanged ? `; ${r.filesUnchanged} unchanged files left as they were` : "") +
      `\n  duration   ${formatDuration(r.durationMs)} (${
        formatRate(r.bytesWritten, r.durationMs)
      })`,
  );
  if (failed.length === 0) return ExitCode.ok;
  out.error(
    `${failed.length} file(s) could not be restored; everything else was (run bendsave verify to see the damage, then restore them from another backup or copy of the repository):`,
  );
  for (const f of failed) out.error(`  ${f.path}: ${f.message}`);
  return ExitCode.failure;
}

function describeClusterPlan(plan: ClusterRestorePlan, location: string): string {
  const lines = [
    `cluster backup ${plan.manifest} (tenant ${plan.tenant}, cluster ${plan.clusterId})`,
    `storage (${plan.storageType}): ${describePlan(plan.storage, false, location)}`,
    `meta export: ${formatBytes(plan.metaExport.bytes)} -> ${plan.metaExport.path}${
      plan.metaExport.exists ? " (exists: replaced only with --overwrite)" : ""
    }`,
    plan.metaImport
      ? `meta import: into raft_dir ${plan.metaImport.raftDir} (node ${plan.metaImport.nodeId}): ${plan.importCommand}`
      : `meta import: not run (no --meta-config); with the meta service stopped, run: ${plan.importCommand}`,
  ];
  for (const n of plan.notes) lines.push(`note: ${n}`);
  return lines.join("\n");
}

async function restoreClusterCommand(
  store: Awaited<ReturnType<typeof openStore>>,
  to: string,
  values: Record<string, unknown>,
  manifest: string | null,
  out: Output,
): Promise<number> {
  const str = (k: string) => (typeof values[k] === "string" ? values[k] as string : undefined);
  const options = {
    manifest,
    overwrite: values.overwrite === true,
    onEvent: out.event.bind(out),
    signal: out.signal,
    ...(str("meta-export-to") ? { metaExportTo: str("meta-export-to")! } : {}),
    ...(str("meta-config") ? { metaConfig: str("meta-config")! } : {}),
    ...(str("metactl") ? { metactl: str("metactl")! } : {}),
  };
  if (!values.confirm) {
    const plan = await planClusterRestore(store, to, options);
    out.result({ type: "plan", dry_run: true, ...plan });
    out.print(`dry run: nothing was written\n${describeClusterPlan(plan, store.location)}`);
    if (plan.storage.targetNotEmpty && !options.overwrite) {
      out.print(
        `  note: the storage is not empty; --confirm will refuse unless --overwrite is given`,
      );
    }
    out.print(`run again with --confirm to restore`);
    return ExitCode.ok;
  }
  const r = await restoreCluster(store, to, options);
  out.done();
  out.result({ type: "summary", dry_run: false, ...r });
  const s = r.storageResult;
  out.print(
    `restored ${describeClusterPlan(r, store.location)}\n` +
      `  written    ${s.filesWritten} objects, ${formatBytes(s.bytesWritten)}` +
      (s.filesUnchanged ? `; ${s.filesUnchanged} unchanged objects left as they were` : "") +
      `\n  meta       ${
        r.metaImported
          ? "imported by databend-metactl"
          : "export written; import it with the command above"
      }\n  duration   ${formatDuration(r.durationMs)}`,
  );
  return ExitCode.ok;
}
