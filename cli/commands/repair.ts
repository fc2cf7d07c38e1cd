/**
 * `bendsave repair index <repo>`
 *
 * @module
 */
import { repairIndex } from "../../store/repair.ts";
import { openStore } from "../../store/open_store.ts";
import { parse } from "../args.ts";
import { ExitCode, UsageError } from "../exit_codes.ts";
import type { Output } from "../output.ts";

/** Help text. */
export const REPAIR_HELP = `Usage: bendsave repair index <repo> [--json]

Rebuilds the index from the trailers of the packs (every pack lists its own
blocks). Use it when verify reports damaged or missing index files. Takes the
exclusive lock; the new index is written before the old index files are removed.`;

/** Runs the command. */
export async function repairCommand(args: string[], out: Output): Promise<number> {
  const { values, positionals } = parse("repair", args, {});
  if (values.help) {
    console.log(REPAIR_HELP);
    return ExitCode.ok;
  }
  if (positionals.length !== 2 || positionals[0] !== "index") {
    throw new UsageError("use bendsave repair index <repo>: see bendsave repair --help");
  }
  const r = await repairIndex(await openStore(positionals[1]!, { onWarning: out.warn }), {
    onEvent: out.event.bind(out),
    signal: out.signal,
  });
  out.result({ type: "summary", ...r });
  out.print(
    `rebuilt the index from ${r.packs} pack(s), ${r.blocks} blocks; removed ${r.removedIndexFiles} old index file(s)` +
      (r.damagedPacks.length
        ? `\n${r.damagedPacks.length} damaged pack(s) left out: ${
          r.damagedPacks.map((p) => p.id).join(", ")
        }`
        : ""),
  );
  return r.damagedPacks.length ? ExitCode.failure : ExitCode.ok;
}
