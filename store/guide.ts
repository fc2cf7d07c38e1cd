/**
 * The `bendsave.md` guide written at the root of every repository, for the
 * person who finds it years from now.
 *
 * @module
 */
import type { RepoConfig } from "../formats/repo_config.ts";

/** The text of `bendsave.md` for a repository. */
export function repositoryGuide(c: RepoConfig): string {
  return `# bendsave repository

This directory is a bendsave backup repository (format version ${c.version}.${c.minor},
repository id \`${c.id}\`, created ${c.created}).

## What is here

- \`config\`: JSON with the format version, chunking and compression settings.
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

Chunker: ${
    JSON.stringify(c.chunker)
  }; compression: ${c.compression.codec} level ${c.compression.level}.
`;
}
