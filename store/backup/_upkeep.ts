/**
 * A backup's upkeep of the repository: stale temporary files removed, a
 * repository that a failed first backup created removed again, and warnings
 * for creation settings given to an existing repository.
 *
 * @module
 */
import type { BlobStore } from "../drivers/types.ts";
import { FsStore } from "../drivers/fs.ts";
import type { InitOptions } from "../repository.ts";
import type { RepoConfig } from "../../formats/repo_config.ts";
import { describeCompression } from "../guide.ts";
import type { EventSink } from "./events.ts";

/**
 * Removes temporary files that interrupted saves (a killed backup, say) left
 * in a local repository, once they are an hour old, so they do not wait for
 * a vacuum; saves in flight are younger. A failure is a warning, not fatal.
 */
export async function removeStaleTemporaryFiles(store: BlobStore, emit: EventSink): Promise<void> {
  if (!(store instanceof FsStore)) return;
  try {
    await store.cleanTemporaryFiles();
  } catch (e) {
    emit({
      type: "warning",
      message: `could not remove old temporary files in ${store.location} (${
        (e as Error).message
      }); the next backup or vacuum tries again`,
    });
  }
}

/**
 * Removes what a backup that created the repository wrote before it failed
 * (packs, index files, the guide and the config), so a failed first backup
 * leaves no repository behind; the store stays usable (a directory the
 * caller created is the caller's to remove, see
 * {@linkcode FsStore.removeCreatedDirectory}). Call it after the backup's
 * lock is released. Nothing is removed when the
 * repository holds a manifest or another process holds a lock on it: then it
 * is in use. Returns true when the repository was removed.
 */
export async function abandonNewRepository(store: BlobStore): Promise<boolean> {
  for await (const _ of store.list("manifest")) return false;
  for await (const _ of store.list("lock")) return false;
  for (const kind of ["pack", "index", "key"] as const) {
    const names: string[] = [];
    for await (const f of store.list(kind)) names.push(f.name);
    for (const name of names) await store.remove({ kind, name });
  }
  await store.remove({ kind: "guide", name: "bendsave.md" });
  await store.remove({ kind: "config", name: "config" });
  return true;
}

/**
 * Warnings for creation settings that an existing repository ignores: its
 * compression and pack size were fixed when it was created.
 */
export function ignoredInitOptions(config: RepoConfig, init: InitOptions | undefined): string[] {
  const out: string[] = [];
  const MiB = 1024 * 1024;
  if (init?.compression && init.compression.codec !== config.compression.codec) {
    out.push(
      `compression ${init.compression.codec} is ignored: this repository keeps the compression it was created with (${
        describeCompression(config)
      }); back up into a new repository to use another`,
    );
  }
  if (init?.packSize !== undefined && init.packSize !== config.packSize) {
    out.push(
      `pack size ${
        init.packSize / MiB
      } MiB is ignored: this repository keeps the pack size it was created with (${
        config.packSize / MiB
      } MiB); back up into a new repository to use another`,
    );
  }
  return out;
}
