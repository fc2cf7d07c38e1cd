/**
 * `bendsave show <repo>/manifests/<name>.manifest` (or `<repo>` for the newest)
 *
 * @module
 */
import { Repository } from "../../store/repository.ts";
import { readableManifests } from "../../store/source_groups.ts";
import { openStore, splitManifestLocation } from "../../store/open_store.ts";
import { toHex } from "../../formats/hash.ts";
import type { Manifest } from "../../formats/manifest.ts";
import { onePositional, parse } from "../args.ts";
import { ExitCode, UsageError } from "../exit_codes.ts";
import {
  baseBackupOf,
  describePgWindow,
  postgresWindows,
} from "../../sources/postgres/pg_windows.ts";
import { windowJson } from "./list.ts";
import { describeRelationMap, loadRelationMap } from "../../sources/postgres/relation_map.ts";
import { formatBytes, formatDuration, type Output } from "../output.ts";
import { formatTimestampUs, tableSnapshots } from "../../sources/databend/table_window.ts";

/** Help text. */
export const SHOW_HELP = `Usage: bendsave show <repo>/manifests/<name>.manifest [--json]
       bendsave show <repo> [--json]          (the newest backup)

Prints a backup's manifest: time, kind, parent chain, source (without
secrets), parts with their statistics, warnings, and the catalog of
databases and tables when the backup is of a database cluster.`;

/** The manifest as plain JSON (ids in hex). */
export function manifestJson(name: string, id: Uint8Array, m: Manifest): Record<string, unknown> {
  return {
    name,
    id: toHex(id),
    format_version: `${m.formatVersion}.${m.formatMinor}`,
    time: new Date(m.timeMs).toISOString(),
    end_time: m.endTimeMs ? new Date(m.endTimeMs).toISOString() : null,
    kind: m.kind,
    parent: m.parentName,
    parent_id: m.parentId ? toHex(m.parentId) : null,
    source: m.source,
    host: m.host,
    tool_version: m.toolVersion,
    incomplete: m.incomplete,
    warnings: m.warnings,
    labels: m.labels,
    stats: m.stats,
    parts: m.parts.map((p) => ({
      name: p.name,
      kind: p.kind,
      root: toHex(p.root),
      chunker: p.chunker,
      stats: p.stats,
    })),
    catalog: m.catalog,
    log_segments: m.logSegments.map((l) => ({ ...l, root: toHex(l.root) })),
  };
}

/** Runs the command. */
export async function showCommand(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parse("show", args, {});
  if (values.help) {
    console.log(SHOW_HELP);
    return ExitCode.ok;
  }
  const { repo, manifest } = splitManifestLocation(onePositional("show", positionals, "manifest"));
  const r = await Repository.open(await openStore(repo, { onWarning: out.warn }));
  const names = await r.manifestNames();
  const name = manifest ?? names.at(-1);
  if (!name) throw new UsageError(`repository ${repo} holds no backups: nothing to show`);
  const rec = await r.loadManifest(name);
  const m = rec.manifest;
  const window = baseBackupOf(rec)
    ? (await postgresWindows(r, await readableManifests(r))).find((w) => w.source === m.source.key)
    : undefined;
  const relations = baseBackupOf(rec) ? await loadRelationMap(r, rec) : null;
  if (out.json) {
    console.log(JSON.stringify(
      {
        ...manifestJson(rec.name, rec.id, m),
        ...(window ? { recoverable_window: windowJson(window) } : {}),
        ...(relations ? { relation_map: relations } : {}),
        ...(m.catalog ? { tables: tableSnapshots(m.catalog) } : {}),
      },
      null,
      2,
    ));
    return ExitCode.ok;
  }
  const lines = [
    `backup     ${rec.name}${m.incomplete ? " (incomplete)" : ""}`,
    `id         ${toHex(rec.id)}`,
    `time       ${new Date(m.timeMs).toISOString()}` +
    (m.endTimeMs ? ` (took ${formatDuration(m.endTimeMs - m.timeMs)})` : ""),
    `kind       ${m.kind}${
      m.parentName
        ? `, parent ${m.parentName}${names.includes(m.parentName) ? "" : " (vacuumed)"}`
        : ""
    }`,
    `source     ${m.source.description}`,
    ...Object.entries(m.source.settings).map(([k, v]) => `           ${k} = ${v}`),
    `host       ${m.host}, bendsave ${m.toolVersion}, format ${m.formatVersion}.${m.formatMinor}`,
    `files      ${m.stats.files} (${
      formatBytes(m.stats.bytes)
    }), ${m.stats.dirs} dirs, ${m.stats.symlinks} symlinks`,
    `added      ${formatBytes(m.stats.addedBytes)} in ${m.stats.newBlocks} new blocks`,
  ];
  for (const p of m.parts) {
    lines.push(
      `part       ${p.name} (${p.kind}): ${p.stats.files} files, ${
        formatBytes(p.stats.bytes)
      }, root ${toHex(p.root)}`,
    );
  }
  for (const w of m.warnings) lines.push(`warning    ${w}`);
  if (m.catalog) {
    lines.push(`cluster    tenant ${m.catalog.tenant}, cluster ${m.catalog.clusterId}`);
    for (const d of m.catalog.databases) {
      lines.push(`database   ${d.name} (id ${d.id})`);
      for (const t of d.tables) {
        lines.push(`  table    ${d.name}.${t.name} (id ${t.id}) at ${t.storagePrefix}`);
        const snaps = t.snapshots ?? [];
        const timed = snaps.filter((x) => x.timestampUs > 0);
        if (timed.length > 0) {
          lines.push(
            `           restorable ${formatTimestampUs(timed[0]!.timestampUs)} to ${
              formatTimestampUs(timed.at(-1)!.timestampUs)
            } (${snaps.length} snapshot${snaps.length === 1 ? "" : "s"})`,
          );
        }
        for (const x of snaps) {
          lines.push(
            `           snapshot ${x.id} ${
              x.timestampUs > 0 ? formatTimestampUs(x.timestampUs) : "(no time)"
            } ${x.rowCount} rows${x.location === t.snapshotLocation ? " (current)" : ""}`,
          );
        }
      }
    }
  }
  if (window) lines.push(`window     ${describePgWindow(window)}`);
  if (relations) lines.push(...describeRelationMap(relations));
  out.print(lines.join("\n"));
  return ExitCode.ok;
}
