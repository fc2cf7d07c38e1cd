/**
 * The manifest step of `verify`: each selected manifest must parse, and a
 * parent that is present must match the id its child recorded.
 *
 * @module
 */
import type { BlobStore } from "../drivers/types.ts";
import { BendsaveError, InvalidInput, UnsupportedFormat } from "../errors.ts";
import type { ManifestRecord, Repository } from "../repository.ts";
import { equalBytes } from "../../formats/hash.ts";
import type { Problems } from "./problems.ts";

/** What the manifest step found. */
export interface ManifestScan {
  /** The manifests checked (the selection, or every one). */
  readonly wanted: string[];
  /** The selected manifests that parsed. */
  readonly records: ManifestRecord[];
  /** Manifests whose parent is no longer in the repository (not a problem). */
  readonly vacuumedParents: { manifest: string; parent: string }[];
  /** Manifests of a newer major format version: skipped, not checked (not damage). */
  readonly newerManifests: string[];
}

/**
 * Loads and checks the manifests named in `selected` (every manifest when
 * empty); throws InvalidInput for a name the repository does not have.
 */
export async function checkManifests(
  repo: Repository,
  store: BlobStore,
  selected: readonly string[] | undefined,
  problems: Problems,
): Promise<ManifestScan> {
  const allNames = await repo.manifestNames();
  const wanted = selected?.length ? [...selected] : allNames;
  for (const n of wanted) {
    if (!allNames.includes(n)) {
      throw new InvalidInput(
        `no manifest ${n} in ${store.location}: run bendsave list to see the backups`,
      );
    }
  }
  const records: ManifestRecord[] = [];
  const vacuumedParents: { manifest: string; parent: string }[] = [];
  const newerManifests: string[] = [];
  for (const name of wanted) {
    try {
      const r = await repo.parseManifest(name, await store.load({ kind: "manifest", name }));
      records.push(r);
      const parent = r.manifest.parentName;
      if (parent && !allNames.includes(parent)) vacuumedParents.push({ manifest: name, parent });
    } catch (e) {
      if (!(e instanceof BendsaveError)) throw e;
      if (e instanceof UnsupportedFormat) newerManifests.push(name); // newer, skipped: not damage
      else problems.add("manifest", name, e.message).manifests.push(name);
    }
  }
  // Parent ids must match the parent's bytes when the parent is present.
  for (const r of records) {
    const parent = r.manifest.parentName;
    const parentRec = parent ? records.find((x) => x.name === parent) : undefined;
    if (parentRec && r.manifest.parentId && !equalBytes(parentRec.id, r.manifest.parentId)) {
      problems.add(
        "manifest",
        parent!,
        `manifest ${parent} does not match the id its child ${r.name} recorded (replaced or damaged)`,
      ).manifests.push(parent!);
    }
  }
  return { wanted, records, vacuumedParents, newerManifests };
}
