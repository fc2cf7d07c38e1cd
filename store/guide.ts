/**
 * The `bendsave.md` guide written at the root of every repository, for the
 * person who finds it years from now.
 *
 * @module
 */
import type { ChunkerParams } from "../formats/chunker.ts";
import type { RepoConfig } from "../formats/repo_config.ts";

/** The text of `bendsave.md` for a repository. */
export function repositoryGuide(c: RepoConfig): string {
  return `# bendsave repository

This directory is a bendsave backup repository (format version ${c.version}.${c.minor},
repository id \`${c.id}\`, created ${c.created}).

## What is here

- \`config\`: JSON with the format version, the default chunker, compression and pack size.
- \`manifests/\`: one file per backup, named by its UTC time (\`YYYYMMDD_HHMMSS.manifest\`).
  Each manifest points to its parent: every backup is logically full.
- \`packs/\`: packfiles holding compressed blocks of file data and directory trees,
  fanned out by the first two hex digits of their SHA-256 name.
- \`index/\`: which pack holds which block (can be rebuilt from the packs).
- \`locks/\`: present only while a bendsave process works on the repository.

Never edit or rename files here by hand: every name is a checksum.

## How to restore

    bendsave list <this directory>
    bendsave restore --from <this directory>/manifests/<name>.manifest --to <empty dir>            # dry run
    bendsave restore --from <this directory>/manifests/<name>.manifest --to <empty dir> --confirm  # restore

\`bendsave verify <this directory> --read-data\` checks every byte.

Without bendsave: the byte format is described in FORMAT.md of the bendsave
source; a SHA-256, a zstd decoder and a protobuf decoder are enough.

Chunking: every backup records in its manifest the chunker that cut its
files (directory and cluster backups use FastCDC by default). The config's
chunker applies only to parts that record none (streams): ${describeChunker(c.chunker)}.

Compression: ${describeCompression(c)}; target pack size: ${formatMiB(c.packSize)}.
Both are fixed when the repository is created.
${c.encryption ? ENCRYPTED : ""}`;
}

const ENCRYPTED = `
## This repository is encrypted

Every pack, index file and manifest is sealed with AES-256-GCM under a master
key; \`keys/\` holds that key wrapped under each passphrase (Argon2id). Give
the passphrase to every command in BENDSAVE_PASSWORD, or with
\`--password-file FILE\` or \`--password-command CMD\`. Without it,
\`bendsave verify <this directory> --read-data\` still checks every file's
SHA-256 against its name and every manifest's checksum. FORMAT.md section 21
describes the encryption.
`;

/**
 * A chunker in words, as the guide and messages print it.
 *
 * @example
 * ```ts
 * import { describeChunker } from "./guide.ts";
 * describeChunker({ kind: "fixed", size: 8 * 1024 * 1024 }); // "fixed 8 MiB blocks"
 * ```
 */
export function describeChunker(p: ChunkerParams): string {
  if (p.kind === "fixed") return `fixed ${formatMiB(p.size)} blocks`;
  return `FastCDC (min ${formatMiB(p.min)}, average ${formatMiB(p.avg)}, max ${formatMiB(p.max)})`;
}

/** A repository's compression in words, e.g. "zstd level 1". */
export function describeCompression(c: RepoConfig): string {
  return c.compression.codec === "none"
    ? "none"
    : `${c.compression.codec} level ${c.compression.level}`;
}

function formatMiB(bytes: number): string {
  return bytes % (1024 * 1024) === 0
    ? `${bytes / (1024 * 1024)} MiB`
    : bytes % 1024 === 0
    ? `${bytes / 1024} KiB`
    : `${bytes} bytes`;
}
