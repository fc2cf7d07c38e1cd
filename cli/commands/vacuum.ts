/**
 * `bendsave vacuum <repo> [retention flags] [--dry-run]`
 *
 * @module
 */
import { vacuum, type VacuumOptions, type VacuumPlan } from "../../store/vacuum.ts";
import { type RetentionRules, RULE_KEYS } from "../../store/retention.ts";
import { openStore } from "../../store/open_store.ts";
import { type GroupBy, parseGroupBy } from "../../store/source_groups.ts";
import { onePositional, parse } from "../args.ts";
import { ExitCode, UsageError } from "../exit_codes.ts";
import { formatBytes, formatDuration, type Output } from "../output.ts";

/** Help text. */
export const VACUUM_HELP = `Usage: bendsave vacuum <repo> [options] [--dry-run] [--json]

Deletes backups by the retention rules, then removes the blocks no kept backup
needs (garbage collection) and repacks sparse packs. Holds the exclusive lock:
backups, restores and verifies wait for it or fail with "locked".

Retention (how the rules combine is in the README):
  --retention-days N        delete backups older than N days
  --min-retention-days N    never delete backups younger than N days
  --max-backups N           keep at most the N newest (others are deleted)
  --min-backups N           never keep fewer than the N newest
  --keep-last N             always keep the N newest
  --keep-daily N            keep the newest backup of each of the last N days with a backup
  --keep-weekly N           ... of each of the last N ISO weeks
  --keep-monthly N          ... of each of the last N months
  --keep-yearly N           ... of each of the last N years
The rules apply to each source on its own: "the newest", "the N newest" and
"the newest of each day" are those of that source (a directory is its host and
path, a Databend cluster its tenant and cluster id). The newest backup of each
group is never deleted. With no rule, no backup is deleted and vacuum only
collects garbage.

Options:
  --group-by G              what the rules apply within: source (default), host (every
                            source of a host together), or repository (all backups together)
  --repack-below F          repack packs whose live fraction is below F (default 0.5)
  --dry-run                 print the plan and change nothing
  --json                    the plan (or result) as one JSON object
  -h, --help                this help`;

const FLAGS: [keyof RetentionRules, string][] = RULE_KEYS.map((k) => [
  k,
  k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()),
]);

function renderPlan(p: VacuumPlan): string {
  const lines: string[] = [];
  for (const g of p.groups) {
    lines.push(
      `group ${g.group} (${g.sources.join(", ")}): ${g.backups} backup(s), ${g.deleted} to delete`,
    );
    for (const m of [...p.manifests].reverse()) {
      if (m.group !== g.group) continue;
      lines.push(
        `  ${m.delete ? "delete" : "keep  "} ${m.name.replace(/\.manifest$/, "")}  ${
          new Date(m.timeMs).toISOString().replace(/\.\d+Z$/, "Z")
        }  ${m.reasons.join("; ")}`,
      );
    }
  }
  lines.push(
    `backups: ${p.deleteManifests.length} to delete, ${
      p.manifests.length - p.deleteManifests.length
    } kept`,
    `packs:   ${p.deletePacks.length} to delete (no live block), ${p.repackPacks.length} to repack ` +
      `(${
        formatBytes(p.repackBytes)
      } of live blocks copied), ${p.unindexedPacks.length} left by interrupted backups`,
    `wal:     ${p.deleteWal.length} archived WAL file(s) no kept base backup needs to delete`,
    `frees:   ${formatBytes(Math.max(0, p.freeBytes))} of ${
      formatBytes(p.packBytesBefore)
    } in ${p.packsBefore} packs`,
  );
  return lines.join("\n");
}

/** Runs the command. */
export async function vacuumCommand(args: string[], out: Output): Promise<number> {
  const spec = Object.fromEntries(FLAGS.map(([, flag]) => [flag, { type: "string" as const }]));
  const { values, positionals } = parse("vacuum", args, {
    ...spec,
    "repack-below": { type: "string" },
    "group-by": { type: "string" },
    "dry-run": { type: "boolean" },
  });
  if (values.help) {
    console.log(VACUUM_HELP);
    return ExitCode.ok;
  }
  const repo = onePositional("vacuum", positionals, "repository");
  const rules: Record<string, number> = {};
  for (const [key, flag] of FLAGS) {
    const v = values[flag];
    if (v === undefined) continue;
    const n = Number(v);
    if (!/^\d+$/.test(String(v)) || !Number.isSafeInteger(n)) {
      throw new UsageError(`--${flag} must be a whole number of at least 0, not "${v}"`);
    }
    rules[key] = n;
  }
  let groupBy: GroupBy = "source";
  if (values["group-by"] !== undefined) {
    try {
      groupBy = parseGroupBy(String(values["group-by"]));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const options: VacuumOptions = {
    ...rules,
    groupBy,
    dryRun: values["dry-run"] === true,
    onEvent: out.event.bind(out),
    signal: out.signal,
  };
  if (values["repack-below"] !== undefined) {
    const f = Number(values["repack-below"]);
    if (!(f >= 0 && f <= 1)) {
      throw new UsageError(
        `--repack-below must be a fraction from 0 to 1, not "${values["repack-below"]}"`,
      );
    }
    Object.assign(options, { repackBelow: f });
  }
  const r = await vacuum(await openStore(repo, { onWarning: out.warn }), options);
  out.done();
  out.result({ type: r.dryRun ? "plan" : "summary", ...r });
  out.print(
    r.dryRun
      ? `dry run: nothing was changed\n${renderPlan(r)}`
      : `${renderPlan(r)}\ndone in ${
        formatDuration(r.durationMs)
      }: ${r.newPacks} new pack(s), ${r.removedIndexFiles} old index file(s) replaced${
        r.temporaryFilesRemoved
          ? `, ${r.temporaryFilesRemoved} stale temporary file(s) removed`
          : ""
      }`,
  );
  return ExitCode.ok;
}
