/**
 * `bendsave copy --from <repo> --to <repo> [--manifest NAME]...`
 *
 * @module
 */
import { copy, type CopyResult } from "../../store/copy.ts";
import { openStore } from "../../store/open_store.ts";
import { FsStore } from "../../store/drivers/fs.ts";
import { parse, required } from "../args.ts";
import { ExitCode } from "../exit_codes.ts";
import { formatBytes, formatDuration, formatRate, type Output } from "../output.ts";

/** Help text. */
export const COPY_HELP =
  `Usage: bendsave copy --from <repo> --to <repo> [--manifest NAME]... [--json]

Copies backups to another repository, storing only the blocks it lacks
(local disk to S3, or S3 to a local disk that goes to tape). Manifests are
copied byte for byte, so their ids and parent pointers stay the same, and
every block is checked against its hash before it is copied.

The destination is created on first use with the source's settings (chunker,
compression, pack size; a new repository id). An existing destination is used
as it is, even with other settings: blocks are named by their content.
A backup the destination already holds is skipped; one of the same name with
other content stops the copy before anything is written. An interrupted copy
resumes: run it again. Both ends hold a shared lock, so a vacuum waits.

Options:
  --from <repo>        source repository: a path or fs:///path
  --to <repo>          destination repository (created on first use)
  --manifest NAME      copy only this backup (repeatable; a name as bendsave list
                       shows it, with or without .manifest); default: all
  --json               NDJSON progress events and a final summary object
  -h, --help           this help

Exit codes: 0 ok, 1 failure (damage in the source, a conflicting backup, locked),
2 usage or bad input, 130 cancelled (the backups copied before it stopped are kept).`;

function render(r: CopyResult, from: string, to: string): string {
  const lines: string[] = [];
  if (r.created) lines.push(`created repository ${to} with the settings of ${from}`);
  for (const m of r.manifests) {
    const name = m.name.replace(/\.manifest$/, "");
    lines.push(
      m.action === "copied"
        ? `copied  ${name}  ${m.blocks} blocks, ${formatBytes(m.bytes)}`
        : `skipped ${name}  (already in the destination)`,
    );
  }
  lines.push(
    `backups    ${r.manifestsCopied} copied, ${r.manifestsSkipped} already present`,
    `blocks     ${r.blocksCopied} copied (${
      formatBytes(r.bytesCopied)
    }), ${r.blocksPresent} already present`,
    `written    ${r.packsWritten} pack(s), ${
      formatBytes(r.packBytes)
    }, ${r.indexFiles} index file(s)`,
    `duration   ${formatDuration(r.durationMs)} (${formatRate(r.bytesCopied, r.durationMs)})`,
  );
  return lines.join("\n");
}

/** Runs the command. */
export async function copyCommand(args: string[], out: Output): Promise<number> {
  const { values } = parse("copy", args, {
    from: { type: "string" },
    to: { type: "string" },
    manifest: { type: "string", multiple: true },
  });
  if (values.help) {
    console.log(COPY_HELP);
    return ExitCode.ok;
  }
  const from = required("copy", values, "from");
  const to = required("copy", values, "to");
  const manifests = (values.manifest as string[] | undefined) ?? [];
  const source = await openStore(from, { onWarning: out.warn });
  const dest = await openStore(to, { create: true, onWarning: out.warn });
  const r = await (async () => {
    try {
      return await copy(source, dest, {
        manifests,
        onEvent: (e) => out.event(e),
        signal: out.signal,
      });
    } catch (e) {
      // A copy refused before it wrote anything (a missing --manifest) leaves no empty directory.
      if (dest instanceof FsStore) await dest.removeCreatedDirectory().catch(() => false);
      throw e;
    }
  })();
  out.done();
  out.result({
    type: "summary",
    from,
    to,
    repository_created: r.created,
    manifests_copied: r.manifestsCopied,
    manifests_skipped: r.manifestsSkipped,
    blocks_copied: r.blocksCopied,
    bytes_copied: r.bytesCopied,
    blocks_present: r.blocksPresent,
    packs_written: r.packsWritten,
    pack_bytes: r.packBytes,
    index_files: r.indexFiles,
    duration_ms: r.durationMs,
    manifests: r.manifests,
  });
  out.print(render(r, from, to));
  return ExitCode.ok;
}
