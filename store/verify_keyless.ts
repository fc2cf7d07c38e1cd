/**
 * Verify of an encrypted repository without its key (FORMAT.md section
 * 21, "What verify checks"): what anyone who can read the storage can
 * prove. Every index file's SHA-256 equals its name and its header is a
 * sealed index's; every manifest's envelope checksum holds; every key
 * file's SHA-256 equals its name and it parses; every pack's footer is
 * well formed and, with `readData`, its SHA-256 equals its name; every WAL
 * record's envelope checksum holds and it is a sealed record. Trees and
 * blocks are sealed: that every block a backup needs exists cannot be
 * checked without the key.
 *
 * @module
 */
import type { BlobStore } from "./drivers/types.ts";
import type { EventSink } from "./backup/events.ts";
import type { Repository } from "./repository.ts";
import type { Problem, ProblemKind, VerifyOptions, VerifyReport } from "./verify.ts";
import { checkpoint } from "./cancel.ts";
import { isHexId, sha256, toHex } from "../formats/hash.ts";
import { isManifestName, openManifestFile } from "../formats/manifest.ts";
import {
  checkHeader,
  PACK_FOOTER_SIZE,
  PACK_HEADER_SIZE,
  parseFooter,
  storedTrailerLength,
} from "../formats/pack.ts";
import { INDEX_VERSION_SEALED } from "./repo_crypto.ts";
import { listKeySlots } from "./keys.ts";
import { openWalRecordFile, WAL_RECORD_SEALED } from "../formats/wal.ts";

/** Audits `repo` (encrypted, opened without its key) by hashes and checksums only. */
export async function verifyKeyless(
  repo: Repository,
  store: BlobStore,
  options: VerifyOptions,
  emit: EventSink,
): Promise<VerifyReport> {
  const problems: Problem[] = [];
  const add = (kind: ProblemKind, id: string, message: string, manifest?: string) => {
    problems.push({
      kind,
      id,
      message,
      manifests: manifest ? [manifest] : [],
      files: [],
      filesTotal: 0,
    });
  };
  const checked = {
    manifests: 0,
    trees: 0,
    files: 0,
    blocks: 0,
    indexFiles: 0,
    packs: 0,
    packsRead: 0,
    bytesRead: 0,
    walFiles: 0,
  };
  for (const s of await listKeySlots(store, repo.config.id)) {
    if (s.problem !== null) {
      add("config", s.name, `${s.problem}: restore it from a copy, or remove it`);
    }
  }
  for await (const f of store.list("index")) {
    if (!isHexId(f.name)) continue;
    checked.indexFiles++;
    const bytes = await store.load({ kind: "index", name: f.name });
    if (hashHex(bytes) !== f.name) {
      add(
        "index",
        f.name,
        `index file ${f.name} does not match its name (damaged): run bendsave repair index`,
      );
    } else if (bytes.length < 8 + 28 || bytes[4] !== INDEX_VERSION_SEALED) {
      add("index", f.name, `index file ${f.name} is not a sealed index file (damaged)`);
    }
  }
  const all = (await repo.manifestNames()).filter(isManifestName);
  const wanted = options.manifests?.length ? [...options.manifests] : all;
  for (const name of wanted) {
    checked.manifests++;
    try {
      const env = openManifestFile(await store.load({ kind: "manifest", name }));
      if (env.version !== repo.config.version) {
        throw new SyntaxError(`its envelope says format ${env.version}`);
      }
    } catch (e) {
      add(
        "manifest",
        name,
        `manifest ${name} is damaged (${(e as Error).message}): restore it from another copy`,
        name,
      );
    }
  }
  // WAL records (FORMAT.md 21.11): the envelope's checksum over the stored bytes and version 2.
  if (!options.manifests?.length) {
    for await (const f of store.list("wal")) {
      await checkpoint(options.signal, "verify");
      checked.walFiles++;
      try {
        const env = openWalRecordFile(await store.load({ kind: "wal", name: f.name }));
        if (env.version !== WAL_RECORD_SEALED) {
          throw new SyntaxError(`its envelope says version ${env.version}, not a sealed record`);
        }
      } catch (e) {
        add(
          "wal",
          f.name,
          `WAL record ${f.name} is damaged (${(e as Error).message}): restore it from another copy`,
        );
      }
    }
  }
  const readData = options.readData || options.subset !== undefined;
  const packs: { name: string; size: number }[] = [];
  for await (const f of store.list("pack")) if (isHexId(f.name)) packs.push(f);
  packs.sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const p of packs) {
    await checkpoint(options.signal, "verify");
    checked.packs++;
    const h = { kind: "pack" as const, name: p.name };
    try {
      if (p.size < PACK_HEADER_SIZE + PACK_FOOTER_SIZE) throw new SyntaxError("it is too short");
      checkHeader(await store.load(h, { offset: 0, length: PACK_HEADER_SIZE }), true);
      const footer = parseFooter(
        await store.load(h, { offset: p.size - PACK_FOOTER_SIZE, length: PACK_FOOTER_SIZE }),
      );
      if (p.size - PACK_FOOTER_SIZE - storedTrailerLength(footer.count, true) < PACK_HEADER_SIZE) {
        throw new SyntaxError("its trailer is longer than the pack");
      }
      if (readData) {
        const bytes = await store.load(h);
        checked.packsRead++;
        checked.bytesRead += bytes.length;
        if (hashHex(bytes) !== p.name) {
          throw new SyntaxError("it does not match its name");
        }
      }
    } catch (e) {
      add(
        "pack",
        p.name,
        `pack ${p.name} is damaged (${(e as Error).message}): restore it from another copy`,
      );
    }
  }
  emit({
    type: "progress",
    operation: "verify",
    phase: "read",
    files: checked.packsRead,
    totalFiles: packs.length,
    bytes: checked.bytesRead,
    totalBytes: checked.bytesRead,
    elapsedMs: 0,
  });
  return {
    repositoryId: repo.config.id,
    time: new Date().toISOString(),
    scope: { manifests: wanted, readData: readData ? "all" : "none", packsInScope: packs.length },
    checked,
    problems,
    vacuumedParents: [],
    newerManifests: [],
    reclaimable: null,
    ok: problems.length === 0,
    keyless: true,
  };
}

function hashHex(bytes: Uint8Array): string {
  return toHex(sha256(bytes));
}
