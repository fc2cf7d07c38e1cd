/**
 * `bendsave verify <repo> [--manifest NAME]... [--read-data | --read-data-subset <N%|n/t>]`
 *
 * @module
 */
import { parseSubset, verify, type VerifyReport } from "../../store/verify.ts";
import { openStore } from "../../store/open_store.ts";
import { Repository } from "../../store/repository.ts";
import { readableManifests } from "../../store/source_groups.ts";
import { describePgWindow, postgresWindows } from "../../sources/postgres/pg_windows.ts";
import { windowJson } from "./list.ts";
import { onePositional, parse } from "../args.ts";
import { ExitCode, UsageError } from "../exit_codes.ts";
import { formatBytes, type Output } from "../output.ts";

/** Help text. */
export const VERIFY_HELP =
  `Usage: bendsave verify <repo> [--manifest NAME]... [--read-data | --read-data-subset <N%|n/t>] [--json]

Audits a repository. The structural check (the default) parses the config and
every manifest, checks parent pointers, reads every tree, and checks that every
referenced block is indexed and every indexed pack exists with the right size
and a trailer that agrees with the index. --read-data also reads every pack
and re-hashes it and every block in it.

Options:
  --manifest NAME            check only these backups (repeatable; with --read-data,
                             only their packs are read)
  --read-data                read and re-hash every pack
  --read-data-subset S       read a deterministic slice n/t of the packs (1/7 .. 7/7
                             covers everything over a week) or a random N% of them
  --json                     a machine-readable audit report
  -h, --help                 this help

Exit codes: 0 clean, 1 damage found, 2 usage or bad input, 130 cancelled.`;

function render(r: VerifyReport): string {
  const lines: string[] = [];
  const c = r.checked;
  if (r.keyless) {
    lines.push(
      "encrypted repository, no passphrase given: checking hashes only (packs, index files, manifest envelopes, key files), not trees or blocks",
    );
  }
  lines.push(
    `checked ${c.manifests} manifest(s), ${c.trees} trees, ${c.files} files, ${c.blocks} blocks, ` +
      `${c.indexFiles} index file(s), ${c.packs} packs` +
      (c.walFiles > 0 ? `, ${c.walFiles} WAL file(s)` : "") +
      (r.scope.readData === "none"
        ? ""
        : `; read ${c.packsRead} of ${r.scope.packsInScope} packs (${
          formatBytes(c.bytesRead)
        }, ${r.scope.readData})`),
  );
  for (const v of r.vacuumedParents) {
    lines.push(`note: ${v.manifest}: parent ${v.parent} was vacuumed (it restores on its own)`);
  }
  for (const m of r.newerManifests) {
    lines.push(
      `note: manifest ${m} is of a newer format, skipped: verify it with a newer bendsave`,
    );
  }
  for (const p of r.problems) {
    lines.push(`damaged ${p.kind} ${p.id}: ${p.message}`);
    if (p.manifests.length) lines.push(`  affects backups: ${p.manifests.join(", ")}`);
    if (p.filesTotal) {
      lines.push(
        `  affects ${p.filesTotal} file(s): ${p.files.join(", ")}${
          p.filesTotal > p.files.length ? ", ..." : ""
        }`,
      );
    }
  }
  if (r.problems.some((p) => p.kind === "index" || p.kind === "block" || p.kind === "tree")) {
    lines.push(
      "hint: if index files are damaged or lost, run bendsave repair index <repo>, then verify again",
    );
  }
  if (r.reclaimable && r.reclaimable.packs > 0) {
    lines.push(
      `reclaimable: ${r.reclaimable.packs} pack(s), ${
        formatBytes(r.reclaimable.bytes)
      } that no backup uses (not damage)`,
    );
  }
  lines.push(
    r.ok
      ? `verdict: OK, no damage found in ${c.manifests - r.newerManifests.length} backup(s)` +
        (r.newerManifests.length ? ` (${r.newerManifests.length} of a newer format skipped)` : "")
      : `verdict: DAMAGED, ${r.problems.length} problem(s) affecting ${
        new Set(r.problems.flatMap((p) => p.manifests)).size
      } backup(s)`,
  );
  return lines.join("\n");
}

/** Runs the command. */
export async function verifyCommand(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parse("verify", args, {
    manifest: { type: "string", multiple: true },
    "read-data": { type: "boolean" },
    "read-data-subset": { type: "string" },
  });
  if (values.help) {
    console.log(VERIFY_HELP);
    return ExitCode.ok;
  }
  const repo = onePositional("verify", positionals, "repository");
  if (values["read-data"] && values["read-data-subset"] !== undefined) {
    throw new UsageError("give either --read-data or --read-data-subset, not both");
  }
  const subset = values["read-data-subset"] === undefined
    ? undefined
    : parseSubset(String(values["read-data-subset"]));
  const manifests = ((values.manifest as string[] | undefined) ?? []).map((m) =>
    m.endsWith(".manifest") ? m.replace(/^.*\//, "") : `${m}.manifest`
  );
  const store = await openStore(repo, { onWarning: out.warn });
  const report = await verify(store, {
    manifests,
    readData: values["read-data"] === true,
    ...(subset ? { subset } : {}),
    onEvent: out.event.bind(out),
    signal: out.signal,
  });
  out.done();
  // PostgreSQL: a WAL gap is damage to the recoverable window it cuts.
  const opened = report.keyless ? null : await Repository.open(store);
  const windows = opened ? await postgresWindows(opened, await readableManifests(opened)) : [];
  const gaps = windows.flatMap((w) =>
    w.gaps.map((g) => ({
      source: w.source,
      after: g.after,
      before: g.before,
      message:
        `WAL of ${w.source} is missing after ${g.after} (next archived: ${g.before}): the base backups before the gap cannot be recovered past it; copy the missing WAL back, or take a new base backup`,
    }))
  );
  const ok = report.ok && gaps.length === 0;
  if (out.json) {
    out.result({
      type: "report",
      ...report,
      ok,
      postgres: windows.map((w) => ({ source: w.source, ...windowJson(w) })),
      walGaps: gaps,
    });
  } else {
    const lines = render(report).split("\n");
    const verdict = lines.pop()!;
    for (const w of windows) lines.push(describePgWindow(w));
    for (const g of gaps) lines.push(`damage: ${g.message}`);
    lines.push(
      report.ok && gaps.length > 0
        ? `verdict: DAMAGED, ${gaps.length} WAL gap(s) cut the recoverable window of ${
          new Set(gaps.map((g) => g.source)).size
        } PostgreSQL source(s)`
        : verdict,
    );
    out.print(lines.join("\n"));
  }
  return ok ? ExitCode.ok : ExitCode.failure;
}
