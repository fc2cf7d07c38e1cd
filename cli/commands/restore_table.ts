/**
 * `bendsave restore --from REPO --to query-node.toml --table DB.TABLE
 * [--as-of TIME] [--rename-to DB.NAME] [--clean] [--confirm [--execute]]`, or
 * `--table-list FILE --restore-target-list FILE`: tables of a Databend
 * cluster backup into a running cluster (sources/databend/table_restore.ts).
 *
 * @module
 */
import fs from "node:fs";
import { openStore, splitManifestLocation } from "../../store/open_store.ts";
import { Repository } from "../../store/repository.ts";
import { loadQueryConfig } from "../../sources/databend/query_config.ts";
import { openClusterStorage } from "../../sources/databend/cluster_storage.ts";
import {
  parseTableName,
  planTableRestore,
  removeStaged,
  stageTableRestore,
  type TableRestorePlan,
  type TableSelection,
} from "../../sources/databend/table_restore.ts";
import { type QueryEndpoint, runStatements } from "../../sources/databend/query_http.ts";
import { parseTimestampUs } from "../../sources/databend/table_snapshot.ts";
import { DatabaseError } from "../../store/errors.ts";
import { throwIfCancelled } from "../../store/cancel.ts";
import { parse, required } from "../args.ts";
import { ExitCode, UsageError } from "../exit_codes.ts";
import { formatBytes, type Output } from "../output.ts";

/** The help of the Databend table restore. */
export const RESTORE_TABLE_HELP =
  `Usage: bendsave restore --from <repo> --to <query-node.toml> --table <DB.TABLE> [options]

Databend tables into a running cluster (--to its query-node.toml): the table's objects as of a
snapshot are staged in the cluster's storage under a new prefix, with its snapshot hint, and
ATTACH TABLE, CREATE TABLE ... AS SELECT and DROP TABLE bring the table in. A dry run by default.
  --table <DB.TABLE>   a table of the backups (repeatable)
  --rename-to <DB.NAME>
                       with one --table: restore it under this name (default: its own name)
  --table-list <file>  one DB.TABLE per line (blank lines and # comments ignored)
  --restore-target-list <file>
                       with --table-list: one DB.NAME target per listed table, same order
  --as-of <time>       the newest snapshot at or before this time (RFC 3339; no zone is UTC) over
                       every backup of the cluster; default: the table's snapshot at backup time
  --clean              drop an existing target first; without it an existing target is refused
  --stage-prefix <p>   where to stage (default bendsave-restore/<time>-<random>/)
  --connection <name>  S3 storage: the Databend connection ATTACH TABLE uses (CREATE CONNECTION)
  --confirm            stage the objects and print the statements to run
  --execute            with --confirm: run them over the HTTP query API, then remove the
                       staged objects; --query-url (default http://<http_handler_host>:<port>
                       of the config, or BENDSAVE_QUERY_URL), --query-user (default root, or
                       BENDSAVE_QUERY_USER), the password from BENDSAVE_QUERY_PASSWORD
  --json               the plan or the result as JSON, with snapshot and statements

Exit codes: 0 ok, 1 failure (the query endpoint refused a statement), 2 usage or bad input,
130 cancelled (what it staged is removed).`;

/** True when `args` ask for a table restore into a Databend cluster. */
export function isTableRestore(args: readonly string[]): boolean {
  const to = args.findIndex((a) => a === "--to" || a.startsWith("--to="));
  if (to < 0) return false;
  const target = args[to]!.startsWith("--to=") ? args[to]!.slice(5) : args[to + 1] ?? "";
  if (!target.endsWith(".toml")) return false;
  return args.some((a) => /^--(table|table-list)(=|$)/.test(a));
}

function readList(file: string, flag: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(
      `${flag} "${file}" cannot be read (${
        (e as { code?: string }).code ?? e
      }): give a file of DB.TABLE lines`,
    );
  }
  return text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

/** `--as-of`: RFC 3339, or `YYYY-MM-DD HH:MM[:SS[.f]]` in UTC. */
export function parseAsOf(text: string): number {
  let t = text.trim().replace(" ", "T");
  if (/^\d{4}-\d\d-\d\d$/.test(t)) t += "T00:00:00";
  if (/T\d\d:\d\d$/.test(t) || /T\d\d:\d\d(Z|[+-]\d\d:\d\d)$/i.test(t)) {
    t = t.replace(/(T\d\d:\d\d)/, "$1:00");
  }
  if (!/(Z|[+-]\d\d:\d\d)$/i.test(t)) t += "Z";
  try {
    return parseTimestampUs(t);
  } catch {
    throw new UsageError(
      `--as-of "${text}" is not a time: give RFC 3339, e.g. 2025-11-09T20:00:00Z or "2025-11-09 20:00"`,
    );
  }
}

/** The selections of the command line. */
function selections(values: Record<string, unknown>): TableSelection[] {
  const tables = (values["table"] as string[] | undefined) ?? [];
  const listFile = values["table-list"] as string | undefined;
  const targetList = values["restore-target-list"] as string | undefined;
  const rename = values["rename-to"] as string | undefined;
  if (tables.length > 0 && listFile !== undefined) {
    throw new UsageError("give --table or --table-list, not both");
  }
  if (targetList !== undefined && listFile === undefined) {
    throw new UsageError("--restore-target-list goes with --table-list");
  }
  if (rename !== undefined && (tables.length !== 1 || listFile !== undefined)) {
    throw new UsageError(
      "--rename-to renames one --table: for several, use --table-list with --restore-target-list",
    );
  }
  const check = (t: string, flag: string) => {
    try {
      parseTableName(t);
    } catch (e) {
      throw new UsageError(`${(e as Error).message} (${flag})`);
    }
    return t;
  };
  if (listFile !== undefined) {
    const from = readList(listFile, "--table-list").map((t) => check(t, "--table-list"));
    if (from.length === 0) throw new UsageError(`--table-list "${listFile}" lists no table`);
    const to = targetList === undefined
      ? from
      : readList(targetList, "--restore-target-list").map((t) => check(t, "--restore-target-list"));
    if (to.length !== from.length) {
      throw new UsageError(
        `--table-list lists ${from.length} table(s) but --restore-target-list ${to.length}: give one target per table, in the same order`,
      );
    }
    return from.map((f, i) => ({ from: f, to: to[i]! }));
  }
  if (tables.length === 0) throw new UsageError("give --table DB.TABLE or --table-list FILE");
  return tables.map((t) => ({
    from: check(t, "--table"),
    to: rename === undefined ? t : check(rename, "--rename-to"),
  }));
}

/** `http://<http_handler_host>:<http_handler_port>` of a query-node config (defaults 127.0.0.1:8000). */
function endpointOf(configFile: string): string {
  const text = fs.readFileSync(configFile, "utf8");
  const host = /^\s*http_handler_host\s*=\s*"([^"]*)"/m.exec(text)?.[1] ?? "127.0.0.1";
  const port = /^\s*http_handler_port\s*=\s*(\d+)/m.exec(text)?.[1] ?? "8000";
  const shown = host === "0.0.0.0" ? "127.0.0.1" : host;
  return `http://${shown.includes(":") ? `[${shown}]` : shown}:${port}`;
}

function planJson(plan: TableRestorePlan) {
  const snapshots = plan.tables.map((t) => ({ ...t.snapshot, table: t.source, target: t.target }));
  return {
    target: plan.target,
    stage_prefix: plan.stageRoot,
    objects: plan.objects,
    bytes: plan.bytes,
    snapshot: snapshots[0],
    snapshots,
    tables: plan.tables.map((t) => ({
      source: t.source,
      target: t.target,
      snapshot: t.snapshot,
      window: t.window,
      staged_prefix: t.stagedPrefix,
      hint: t.hint.name,
      objects: t.objects,
      bytes: t.bytes,
      statements: t.statements,
    })),
    statements: plan.statements,
  };
}

function describe(plan: TableRestorePlan, listObjects: boolean): string {
  const lines: string[] = [];
  for (const t of plan.tables) {
    lines.push(
      `table      ${t.source} -> ${t.target}`,
      `  snapshot ${t.snapshot.id} at ${
        t.snapshot.time ?? "(no time)"
      } (${t.snapshot.rowCount} rows, backup ${t.snapshot.backup})`,
      ...(t.window ? [`  window   ${t.window.from} to ${t.window.to}`] : []),
      `  objects  ${t.objects.length} (${formatBytes(t.bytes)}) staged under ${t.stagedPrefix}`,
    );
    if (listObjects) {
      for (const o of t.objects) lines.push(`           ${o.staged} (${formatBytes(o.size)})`);
      lines.push(`           ${t.hint.name} (snapshot hint)`);
    }
  }
  lines.push(`target     ${plan.target}`, "statements:", ...plan.statements.map((s) => `  ${s}`));
  return lines.join("\n");
}

/** Runs the table restore. */
export async function restoreTableCommand(args: string[], out: Output): Promise<number> {
  const { values } = parse("restore", args, {
    from: { type: "string" },
    to: { type: "string" },
    table: { type: "string", multiple: true },
    "table-list": { type: "string" },
    "restore-target-list": { type: "string" },
    "rename-to": { type: "string" },
    "as-of": { type: "string" },
    clean: { type: "boolean" },
    "stage-prefix": { type: "string" },
    connection: { type: "string" },
    confirm: { type: "boolean" },
    execute: { type: "boolean" },
    "query-url": { type: "string" },
    "query-user": { type: "string" },
  });
  if (values.help) {
    console.log(RESTORE_TABLE_HELP);
    return ExitCode.ok;
  }
  const from = required("restore", values, "from");
  const to = required("restore", values, "to");
  const { repo: repoPath, manifest } = splitManifestLocation(from);
  if (manifest) {
    throw new UsageError(
      "a table restore chooses its snapshot over every backup of the repository: give --from <repo> without a manifest name",
    );
  }
  const sel = selections(values);
  if (values.execute && !values.confirm) {
    throw new UsageError("--execute runs the statements after staging: give it with --confirm");
  }
  const asOfUs = values["as-of"] === undefined ? undefined : parseAsOf(String(values["as-of"]));
  const config = await loadQueryConfig(to);
  if (values.execute && config.storage.type === "s3" && values.connection === undefined) {
    throw new UsageError(
      "--execute into S3 storage needs --connection NAME: the Databend connection ATTACH TABLE reads the staged objects with",
    );
  }
  const repo = await Repository.open(await openStore(repoPath, { onWarning: out.warn }));
  const storage = await openClusterStorage(config.storage, { onWarning: out.warn });
  try {
    const plan = await planTableRestore(repo, { config, storage }, sel, {
      ...(asOfUs !== undefined ? { asOfUs } : {}),
      ...(values.clean ? { clean: true } : {}),
      ...(values["stage-prefix"] !== undefined
        ? { stageRoot: String(values["stage-prefix"]).replace(/\/*$/, "/") }
        : {}),
      ...(values.connection !== undefined ? { connection: String(values.connection) } : {}),
    });
    if (!values.confirm) {
      out.result({ type: "plan", dry_run: true, ...planJson(plan) });
      out.print(`dry run: nothing was written\n${describe(plan, true)}`);
      return ExitCode.ok;
    }
    const staged = await stageTableRestore(repo, storage, plan, { signal: out.signal });
    const removal = plan.tables.map((t) => t.stagedPrefix).join(", ");
    if (!values.execute) {
      out.result({ type: "summary", dry_run: false, executed: false, ...planJson(plan) });
      out.print(
        `staged ${staged.length} objects (${formatBytes(plan.bytes)})\n${describe(plan, false)}\n` +
          `run these statements on the cluster; then remove the staged objects under ${removal} (they are no longer needed once CREATE TABLE has copied the data)`,
      );
      return ExitCode.ok;
    }
    const endpoint: QueryEndpoint = {
      url: String(values["query-url"] ?? Deno.env.get("BENDSAVE_QUERY_URL") ?? endpointOf(to)),
      user: String(values["query-user"] ?? Deno.env.get("BENDSAVE_QUERY_USER") ?? "root"),
      password: Deno.env.get("BENDSAVE_QUERY_PASSWORD") ?? "",
    };
    if (out.signal.aborted) {
      // Cancelled before the first statement: nothing refers to the staged objects.
      await removeStaged(storage, staged);
      throwIfCancelled(out.signal, "restore");
    }
    let ran = 0;
    try {
      ran = await runStatements(endpoint, plan.statements, { onDone: (i) => (ran = i + 1) });
    } catch (e) {
      // Before any ATTACH ran nothing refers to the staged objects: remove them.
      const attached = plan.statements.slice(0, ran).some((s) => s.startsWith("ATTACH"));
      if (!attached) {
        await removeStaged(storage, staged);
        throw new DatabaseError(
          `${(e as Error).message}; the staged objects were removed again, ${
            ran === 0
              ? "nothing was changed"
              : `after ${ran} statement(s) ran: ${plan.statements[0]}`
          }`,
          { cause: e },
        );
      }
      throw new DatabaseError(
        `${
          (e as Error).message
        }; ${ran} statement(s) ran: the staged objects are left under ${removal} ` +
          `(run the remaining statements by hand, then remove that prefix)`,
        { cause: e },
      );
    }
    await removeStaged(storage, staged);
    out.result({ type: "summary", dry_run: false, executed: true, ...planJson(plan) });
    out.print(
      `restored ${plan.tables.map((t) => `${t.source} -> ${t.target}`).join(", ")}\n${
        describe(plan, false)
      }\nran ${ran} statements on ${endpoint.url}; the staged objects were removed`,
    );
    return ExitCode.ok;
  } finally {
    await storage.close?.();
  }
}
