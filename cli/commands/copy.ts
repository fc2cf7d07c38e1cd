/**
 * `bendsave copy --from <repo> --to <repo> [--manifest NAME]... [--encrypt | --decrypt]`
 *
 * @module
 */
import { copy, type CopyResult } from "../../store/copy.ts";
import { openStore } from "../../store/open_store.ts";
import { FsStore } from "../../store/drivers/fs.ts";
import { parse, required } from "../args.ts";
import { ExitCode, UsageError } from "../exit_codes.ts";
import { TO_PASSPHRASE_OPTIONS, toPassphraseFromOptions } from "../passphrase.ts";
import { passphraseSource } from "../../store/passphrase_source.ts";
import { formatBytes, formatDuration, formatRate, type Output } from "../output.ts";

/** Help text. */
export const COPY_HELP =
  `Usage: bendsave copy --from <repo> --to <repo> [--manifest NAME]... [--encrypt | --decrypt] [--json]

Copies backups to another repository, storing only the blocks it lacks
(local disk to S3, or S3 to a local disk that goes to tape). Every block is
checked against its id (and, encrypted, authenticated) before it is copied.

The destination is created on first use with the source's settings (chunker,
compression, pack size; a new repository id). From an encrypted source it is
encrypted with the source's master key (its first key slot takes the
destination's passphrase); --encrypt gives it a new master key instead.
An existing destination is used as it is, even with other settings.

Both ends unencrypted, or encrypted with the same master key: manifests are
copied byte for byte (their ids and parent pointers stay the same) and blocks
as stored. Otherwise (other keys, or one end unencrypted) the copy re-encodes:
each block is stored under the destination's id of its content and sealed
under its key, trees and manifests are encoded anew with the new ids (new
manifest ids); blocks keep the source's cut points. That is how an
unencrypted repository is encrypted (copy --encrypt into a new location) and
how a master key is rotated (the same, from the encrypted repository).
From an encrypted source into an unencrypted destination only with --decrypt.

A backup the destination already holds is skipped; one of the same name that
is another backup stops the copy before anything is written. An interrupted
copy resumes: run it again. Both ends hold a shared lock, so a vacuum waits.

Options:
  --from <repo>        source repository: a path or fs:///path
  --to <repo>          destination repository (created on first use)
  --manifest NAME      copy only this backup (repeatable; a name as bendsave list
                       shows it, with or without .manifest); default: all
  --encrypt            create the destination encrypted with a new master key
                       (refused when it holds an unencrypted repository)
  --decrypt            let an encrypted source's backups into an unencrypted
                       destination, stored there in plaintext
  --to-password-file FILE, --to-password-command CMD
                       the destination's passphrase (or BENDSAVE_TO_PASSWORD);
                       without them, the source's (--password-file,
                       --password-command, BENDSAVE_PASSWORD)
  --json               NDJSON progress events and a final summary object
  -h, --help           this help

Exit codes: 0 ok, 1 failure (damage in the source, a conflicting backup, locked),
2 usage or bad input (an encrypted source into an unencrypted destination
without --decrypt), 4 an encrypted end and no passphrase or a wrong one
(nothing written), 130 cancelled (the backups copied before it stopped are kept).`;

function render(r: CopyResult, from: string, to: string): string {
  const lines: string[] = [];
  if (r.created) {
    const key = r.masterKey === "source"
      ? ", encrypted with its master key"
      : r.masterKey === "new"
      ? ", encrypted with a new master key"
      : "";
    lines.push(`created repository ${to} with the settings of ${from}${key}`);
  }
  if (r.mode === "reencoded") {
    lines.push(
      `re-encoded for the destination's ${
        r.encrypted ? "key" : "plaintext ids"
      }: new block and manifest ids`,
    );
  }
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
    encrypt: { type: "boolean" },
    decrypt: { type: "boolean" },
    ...TO_PASSPHRASE_OPTIONS,
  });
  if (values.help) {
    console.log(COPY_HELP);
    return ExitCode.ok;
  }
  const from = required("copy", values, "from");
  const to = required("copy", values, "to");
  const manifests = (values.manifest as string[] | undefined) ?? [];
  if (values.encrypt && values.decrypt) {
    throw new UsageError("give either --encrypt or --decrypt, not both: see bendsave copy --help");
  }
  const toPassphrase = toPassphraseFromOptions(values, passphraseSource());
  const source = await openStore(from, { onWarning: out.warn });
  const dest = await openStore(to, { create: true, onWarning: out.warn });
  const r = await (async () => {
    try {
      return await copy(source, dest, {
        manifests,
        toPassphrase,
        ...(values.encrypt ? { encrypt: true } : {}),
        ...(values.decrypt ? { decrypt: true } : {}),
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
    mode: r.mode,
    encrypted: r.encrypted,
    master_key: r.masterKey,
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
