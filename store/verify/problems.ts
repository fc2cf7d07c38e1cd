/**
 * What `verify` reports: the problem record, the list that collects them in
 * the order they are found, and how a problem names the files it affects.
 *
 * @module
 */

/** What kind of thing is damaged. */
export type ProblemKind = "config" | "manifest" | "index" | "pack" | "tree" | "block" | "wal";

/** One problem found by verify. */
export interface Problem {
  readonly kind: ProblemKind;
  /** Name or hex id of the damaged thing. */
  readonly id: string;
  readonly message: string;
  /** Manifests affected (cannot restore in full). */
  manifests: string[];
  /** Some affected files, as `<manifest>:<path>`. */
  files: string[];
  /** Number of affected files in all. */
  filesTotal: number;
}

/** Files a problem names at most (the rest are counted in `filesTotal`). */
export const FILES_PER_PROBLEM = 20;

/** Problems in the order they were found. */
export class Problems {
  /** The problems so far. */
  readonly list: Problem[] = [];

  /** Records a problem and returns it (to attribute files to it later). */
  add(kind: ProblemKind, id: string, message: string): Problem {
    const p: Problem = { kind, id, message, manifests: [], files: [], filesTotal: 0 };
    this.list.push(p);
    return p;
  }
}

/** Names `label` (a file as `<manifest>:<path>`, or a WAL file) as affected by `p`. */
export function addAffectedFile(p: Problem, label: string): void {
  p.filesTotal++;
  if (p.files.length < FILES_PER_PROBLEM) p.files.push(label);
}

/** Names `manifest` as affected by `p`, and `file` in it unless null. */
export function attachProblem(p: Problem, manifest: string, file: string | null): void {
  if (!p.manifests.includes(manifest)) p.manifests.push(manifest);
  if (file !== null) addAffectedFile(p, `${manifest}:${file}`);
}
