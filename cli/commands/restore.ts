/**
 * `bendsave restore --from <repo>[/manifests/<name>.manifest] --to <dir> [--confirm]`
 *
 * @module
 */
import { planRestore, restore, type RestorePlan } from "../../store/restore/restore.ts";
import { openStore, splitManifestLocation } from "../../store/open_store.ts";
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
means the latest backup (for a cluster: the latest of the config's tenant
and cluster).

Options:
  --from <location>    <repo>/manifests/<name>.manifest, or <repo> for the latest backup
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
  --list-packs         list every pack the restore reads (always on for staged: repositories,
                       so an operator knows which tapes to stage)
  --json               NDJSON progress events and a final summary object
  -h, --help           this help`;

function describePlan(plan: RestorePlan, listPacks: boolean, location: string, limit = 20): string {
  const lines = [
    `backup ${plan.manifest} -> ${plan.target}`,
    `  files      ${plan.files} (${
      formatBytes(plan.bytes)
    }), ${plan.dirs} dirs, ${plan.symlinks} symlinks`,
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
  const { values } = parse("restore", args, {
    from: { type: "string" },
    to: { type: "string" },
    confirm: { type: "boolean" },
    overwrite: { type: "boolean" },
    include: { type: "string", multiple: true },
    part: { type: "string" },
    "list-packs": { type: "boolean" },
    "meta-export-to": { type: "string" },
    "meta-config": { type: "string" },
    metactl: { type: "string" },
  });
  if (values.help) {
    console.log(RESTORE_HELP);
    return ExitCode.ok;
  }
  const from = required("restore", values, "from");
  const to = required("restore", values, "to");
  const { repo, manifest } = splitManifestLocation(from);
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
  const store = await openStore(repo, { onWarning: out.warn });
  if (cluster) {
    return await restoreClusterCommand(store, to, values, manifest, out);
  }
  const listPacks = values["list-packs"] === true || !store.capabilities.writable;
  const options = {
    manifest,
    overwrite: values.overwrite === true,
    include: (values.include as string[] | undefined) ?? [],
    onEvent: out.event.bind(out),
    ...(values.part ? { part: values.part as string } : {}),
  };
  if (!values.confirm) {
    const plan = await planRestore(store, to, options);
    out.result({ type: "plan", dry_run: true, ...plan });
    out.print(`dry run: nothing was written\n${describePlan(plan, listPacks, store.location)}`);
    if (plan.targetNotEmpty && !options.overwrite) {
      out.print(
        `  note: the target is not empty; --confirm will refuse unless --overwrite is given`,
      );
    }
    out.print(`run again with --confirm to restore`);
    return ExitCode.ok;
  }
  const r = await restore(store, to, options);
  out.done();
  out.result({ type: "summary", dry_run: false, ...r });
  out.print(
    `restored ${describePlan(r, false, store.location)}\n` +
      `  written    ${r.filesWritten} files, ${formatBytes(r.bytesWritten)}` +
      (r.filesUnchanged ? `; ${r.filesUnchanged} unchanged files left as they were` : "") +
      `\n  duration   ${formatDuration(r.durationMs)} (${
        formatRate(r.bytesWritten, r.durationMs)
      })`,
  );
  return ExitCode.ok;
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
