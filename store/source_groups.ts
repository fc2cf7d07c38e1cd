/**
 * Backups grouped by what they are backups of. Retention applies per group,
 * and a restore with no backup named picks the newest of the source it
 * restores, never the newest of another source.
 *
 * A source's identity is the `source.key` of its manifests (FORMAT.md,
 * "Manifests"): `dir:<host>:<path>` for a directory, `databend:<tenant>:<cluster>`
 * for a Databend cluster.
 *
 * @module
 */
import type { Manifest } from "../formats/manifest.ts";
import { InvalidInput } from "./errors.ts";
import type { ManifestRecord, Repository } from "./repository.ts";

/** How backups are grouped for retention: by source (the default), by host, or all together. */
export type GroupBy = "source" | "host" | "repository";

/** The accepted `--group-by` values. */
export const GROUP_BY: readonly GroupBy[] = ["source", "host", "repository"];

/** Checks a `--group-by` value (RangeError quoting it otherwise). */
export function parseGroupBy(value: string): GroupBy {
  if ((GROUP_BY as readonly string[]).includes(value)) return value as GroupBy;
  throw new RangeError(`--group-by must be one of ${GROUP_BY.join(", ")}, not "${value}"`);
}

/**
 * The group of a backup.
 *
 * @example
 * ```ts ignore
 * groupOf(manifest, "source"); // "dir:db1:/var/lib/app"
 * ```
 */
export function groupOf(m: Manifest, by: GroupBy): string {
  switch (by) {
    case "source":
      return m.source.key;
    case "host":
      return `host:${m.host}`;
    case "repository":
      return "repository";
  }
}

/** One source of a repository: its key, how it describes itself, its newest backup. */
export interface SourceSummary {
  readonly key: string;
  readonly description: string;
  readonly backups: number;
  readonly newest: string;
}

/** The sources of `records` (oldest first), newest backup last in each. */
export function sourcesOf(records: readonly ManifestRecord[]): SourceSummary[] {
  const out = new Map<string, SourceSummary>();
  for (const r of records) {
    const s = r.manifest.source;
    const had = out.get(s.key);
    out.set(s.key, {
      key: s.key,
      description: s.description,
      backups: (had?.backups ?? 0) + 1,
      newest: r.name,
    });
  }
  return [...out.values()];
}

/** True when `wanted` names source `s`: its key, its description, or the path after its host. */
function names(s: Manifest["source"], wanted: string): boolean {
  return s.key === wanted || s.description === wanted || s.key.endsWith(`:${wanted}`);
}

/**
 * The newest backup to restore when none is named. With `source`, the newest
 * of that source; else the newest of `prefer` (a key) when it has one; else
 * the newest of the only source. When several sources qualify it refuses and
 * lists them, so a restore never silently picks another source's backup.
 * `records` are oldest first; `accept` narrows the candidates (a cluster
 * restore takes only cluster backups).
 */
export function latestBackup(
  records: readonly ManifestRecord[],
  options: {
    source?: string | undefined;
    prefer?: string | undefined;
    accept?: (m: Manifest) => boolean;
    location: string;
  },
): ManifestRecord {
  const accepted = records.filter((r) => options.accept?.(r.manifest) ?? true);
  const newest = (of: readonly ManifestRecord[]) => of[of.length - 1];
  const sources = sourcesOf(accepted);
  const list = () =>
    sources.map((s) => `${s.key} (newest ${s.newest.replace(/\.manifest$/, "")})`).join(", ");
  if (options.source !== undefined) {
    const pick = newest(accepted.filter((r) => names(r.manifest.source, options.source!)));
    if (pick) return pick;
    throw new InvalidInput(
      `repository ${options.location} holds no backup of source "${options.source}": name one of ${
        list() || "(none)"
      }`,
    );
  }
  if (options.prefer !== undefined) {
    const pick = newest(accepted.filter((r) => r.manifest.source.key === options.prefer));
    if (pick) return pick;
  }
  if (sources.length > 1) {
    throw new InvalidInput(
      `repository ${options.location} holds backups of ${sources.length} sources, so "the latest backup" is ambiguous: name the source with --source <key> or a backup as <repo>/manifests/<name>; sources: ${list()}`,
    );
  }
  const pick = newest(accepted);
  if (!pick) {
    throw new InvalidInput(`repository ${options.location} holds no backups: nothing to restore`);
  }
  return pick;
}

/**
 * Every manifest that can be read, oldest first, for choosing among them: a
 * damaged or newer one is passed over (and reported to `onWarning`), so it
 * never keeps the others from being listed or restored.
 */
export async function readableManifests(
  repo: Repository,
  onWarning: (message: string) => void = () => {},
): Promise<ManifestRecord[]> {
  return await repo.listManifests((name, e) =>
    onWarning(`backup ${name} is passed over: ${e.message}`)
  );
}
