/**
 * `bendsave restore --from <repo>[/manifests/<name>.manifest] --to <dir> [--confirm]`
 *
 * @module
 */
import { planRestore, restore, type RestorePlan } from "../../store/restore/restore.ts";
import { openStore, splitManifestLocation } from "../../store/open_store.ts";
import { parse, required } from "../args.ts";
import { ExitCode } from "../exit_codes.ts";
import { formatBytes, formatDuration, formatRate, type Output } from "../output.ts";

/** Help text. */
export const RESTORE_HELP =
  `Usage: bendsave restore --from <repo>[/manifests/<name>.manifest] --to <dir> [options]

Restores a backup into a directory. Without --confirm it is a dry run: it
prints what would be written and writes nothing. --from <repo> alone means
the latest backup.

Options:
  --from <location>    <repo>/manifests/<name>.manifest, or <repo> for the latest backup
  --to <dir>           target directory (must be empty unless --overwrite)
  --confirm            perform the restore
  --overwrite          restore into a non-empty directory, rewriting only files that differ
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
  });
  if (values.help) {
    console.log(RESTORE_HELP);
    return ExitCode.ok;
  }
  const from = required("restore", values, "from");
  const to = required("restore", values, "to");
  const { repo, manifest } = splitManifestLocation(from);
  const store = await openStore(repo, { onWarning: out.warn });
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
