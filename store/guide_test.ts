import assert from "node:assert/strict";
import { describeChunker, repositoryGuide } from "./guide.ts";
import { DEFAULT_FASTCDC, DEFAULT_FIXED } from "../formats/chunker.ts";
import { DEFAULT_COMPRESSION } from "../formats/codec.ts";
import { DEFAULT_PACK_SIZE, newRepoConfig } from "../formats/repo_config.ts";

Deno.test("repositoryGuide says backups record their chunker, not that the config's cuts them all", () => {
  const config = newRepoConfig("a".repeat(64), {
    chunker: DEFAULT_FIXED,
    compression: DEFAULT_COMPRESSION,
    packSize: DEFAULT_PACK_SIZE,
    now: new Date(Date.UTC(2026, 0, 1)),
  });
  const guide = repositoryGuide(config);
  assert.doesNotMatch(guide, /^Chunker: /m, "it called the fixed chunker the repository's chunker");
  assert.match(guide, /directory and\s+cluster backups use FastCDC by default/);
  assert.match(guide, /only to parts that record none \(streams\): fixed 8 MiB blocks\./);
  assert.match(guide, /Compression: zstd level 1; target pack size: 32 MiB\./);
});

Deno.test("describeChunker names FastCDC's sizes", () => {
  assert.equal(describeChunker(DEFAULT_FASTCDC), "FastCDC (min 512 KiB, average 2 MiB, max 8 MiB)");
  assert.equal(describeChunker({ kind: "fixed", size: 1024 * 1024 }), "fixed 1 MiB blocks");
});
