/**
 * `bendsave restore --from REPO --to NEW_DATA_DIR [--as-of TIME | --target-lsn LSN] [--confirm]`:
 * point-in-time recovery of a PostgreSQL cluster (sources/postgres/pg_restore.ts).
 *
 * @module
 */
import {
  type PgRestoreOptions,
  type PgRestorePlan,
  planPgRestore,
  restorePg,
} from "../../sources/postgres/pg_restore.ts";
import { parseRecoveryTarget } from "../../formats/pg_target.ts";
import type { BlobStore } from "../../store/drivers/types.ts";
import type { RestoreOptions } from "../../store/restore/restore.ts";
import { selfCommand } from "../self_command.ts";
import { passphraseArgs } from "../passphrase.ts";
import { countOption } from "./wal_push.ts";
import { ExitCode, UsageError } from "../exit_codes.ts";
import { formatBytes, formatDuration, type Output } from "../output.ts";

function describe(p: PgRestorePlan): string {
  const lines = [
    `PostgreSQL base backup ${p.manifest} (system ${p.systemId}) -> ${p.dataDirectory}`,
    `  target     ${p.target}`,
    `  window     ${p.window.from ?? "-"} to ${p.window.to ?? "-"}${
      p.window.gaps.length ? ` (WAL gaps: ${p.window.gaps.join(", ")})` : ""
    }`,
    p.wal
      ? `  WAL        ${p.wal.first} .. ${p.wal.last} (${p.wal.segments} segment(s)), fetched by restore_command during replay`
      : `  WAL        none`,
    `  data       ${p.dataDir.files} files (${
      formatBytes(p.dataDir.bytes)
    }), ${p.dataDir.dirs} dirs, from ${p.dataDir.packs.length} pack(s)`,
  ];
  for (const t of p.tablespaces) {
    lines.push(
      `  tablespace ${t.oid} -> ${t.location}: ${t.plan.files} files (${
        formatBytes(t.plan.bytes)
      })`,
    );
  }
  lines.push(`  writes     ${p.files.join(", ")}; appends to postgresql.auto.conf:`);
  for (const [k, v] of Object.entries(p.settings)) lines.push(`             ${k} = '${v}'`);
  return lines.join("\n");
}

/** Runs a PostgreSQL restore from parsed `restore` flags. */
export async function restorePgCommand(
  store: BlobStore,
  to: string,
  values: Record<string, unknown>,
  choice: { manifest: string | null; source?: string; repository: string },
  restoreOptions: Omit<RestoreOptions, "manifest" | "part" | "source" | "overwrite">,
  out: Output,
): Promise<number> {
  const str = (k: string) => (typeof values[k] === "string" ? values[k] as string : undefined);
  if (values.overwrite || values.include !== undefined || values.part !== undefined) {
    throw new UsageError(
      "--overwrite, --include and --part do not apply to a PostgreSQL restore: restore into a new data directory",
    );
  }
  let target;
  try {
    const asOf = str("as-of");
    const lsn = str("target-lsn");
    target = asOf === undefined && lsn === undefined ? undefined : parseRecoveryTarget({
      ...(asOf !== undefined ? { asOf } : {}),
      ...(lsn !== undefined ? { targetLsn: lsn } : {}),
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const walPassphrase = passphraseArgs(values);
  const options: PgRestoreOptions = {
    ...(target ? { target } : {}),
    manifest: choice.manifest,
    ...(choice.source !== undefined ? { source: choice.source } : {}),
    bendsaveCommand: str("bendsave-command") ?? selfCommand(),
    // An encrypted repository: restore_command passes the passphrase option given here.
    ...(walPassphrase ? { walPassphrase } : {}),
    walPrefetch: countOption("restore", "wal-prefetch", values["wal-prefetch"], 8, 0),
    repositoryLocation: choice.repository,
    restore: restoreOptions,
    onEvent: out.event.bind(out),
    signal: out.signal,
  };
  if (!values.confirm) {
    const plan = await planPgRestore(store, to, options);
    out.result({ type: "plan", dry_run: true, ...plan });
    out.print(
      `dry run: nothing was written\n${describe(plan)}\nrun again with --confirm to restore`,
    );
    return ExitCode.ok;
  }
  const r = await restorePg(store, to, options);
  out.done();
  out.result({ type: "summary", dry_run: false, ...r });
  out.print(
    `restored ${describe(r)}\n  duration   ${formatDuration(r.durationMs)}\n` +
      `start PostgreSQL on ${r.dataDirectory}: it replays the WAL to the target, then promotes`,
  );
  return ExitCode.ok;
}
