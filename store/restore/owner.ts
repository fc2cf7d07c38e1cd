/**
 * Ownership on restore: which numeric uid and gid a restored entry gets.
 * Backups record numeric ids only (no user or group names), so a restore
 * sets exactly the recorded numbers (like `tar --numeric-owner`), changed by
 * an optional map. Only root can give files away, so ownership is set by
 * default when the restore runs as root and left alone otherwise.
 *
 * @module
 */
import process from "node:process";
import type { TreeNode } from "../../formats/tree.ts";

/**
 * A map of numeric ids: recorded id -> restored id; the key `"*"` maps every
 * id that has no entry of its own.
 */
export type IdMap = ReadonlyMap<number | "*", number>;

/** Ownership options of a restore. */
export interface OwnerOptions {
  /**
   * Set the recorded uid and gid on every restored entry. Default: true when
   * the restore runs as root (only root may give files to other users),
   * false otherwise.
   */
  readonly owner?: boolean;
  /** Recorded uid -> uid to set. */
  readonly uidMap?: IdMap;
  /** Recorded gid -> gid to set. */
  readonly gidMap?: IdMap;
}

/**
 * What a restore does about ownership: `"set"` sets the (mapped) recorded
 * ids, `"not-root"` leaves them because the restore does not run as root,
 * `"off"` leaves them because it was told to.
 */
export type Ownership = "set" | "not-root" | "off";

/** True when this process runs as root. */
export function runningAsRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** What a restore with `options` does about ownership. */
export function ownership(options: OwnerOptions): Ownership {
  if (options.owner === false) return "off";
  if (options.owner === true) return "set";
  return runningAsRoot() ? "set" : "not-root";
}

function mapId(map: IdMap | undefined, id: number): number {
  if (!map) return id;
  return map.get(id) ?? map.get("*") ?? id;
}

/**
 * The uid and gid to set on a restored `node`, or null to leave the owner
 * alone; `decided` is {@linkcode ownership} of `options`, when the caller
 * asked once for a whole restore.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ownerOf, parseIdMap } from "./owner.ts";
 * const node = { uid: 1000, gid: 1000 } as Parameters<typeof ownerOf>[0];
 * const options = { owner: true, uidMap: parseIdMap("1000:26") };
 * assert.deepEqual(ownerOf(node, options), [26, 1000]);
 * assert.equal(ownerOf(node, { owner: false }), null);
 * ```
 */
export function ownerOf(
  node: Pick<TreeNode, "uid" | "gid">,
  options: OwnerOptions,
  decided: Ownership = ownership(options),
): readonly [number, number] | null {
  if (decided !== "set") return null;
  return [mapId(options.uidMap, node.uid), mapId(options.gidMap, node.gid)];
}

const MAX_ID = 0xffff_fffe; // 2^32-1 is (uid_t)-1, "no change" to chown

function parseId(text: string, whole: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > MAX_ID) {
    throw new RangeError(
      `invalid id "${text}" in the id map "${whole}": give numeric ids from 0 to ${MAX_ID}`,
    );
  }
  return Number(text);
}

/**
 * Parses id maps written `FROM:TO[,FROM:TO...]` (numeric ids; `*` as FROM
 * maps every other id), one string or several; throws RangeError on a
 * malformed entry or a FROM given twice.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIdMap } from "./owner.ts";
 * assert.deepEqual([...parseIdMap(["1000:26,1001:26", "*:999"])], [
 *   [1000, 26],
 *   [1001, 26],
 *   ["*", 999],
 * ]);
 * ```
 */
export function parseIdMap(text: string | readonly string[]): Map<number | "*", number> {
  const out = new Map<number | "*", number>();
  for (const whole of typeof text === "string" ? [text] : text) {
    for (const entry of whole.split(",")) {
      const m = /^\s*([^:\s]+)\s*:\s*([^:\s]+)\s*$/.exec(entry);
      if (!m) {
        throw new RangeError(
          `invalid entry "${entry}" in the id map "${whole}": write FROM:TO with numeric ids, for example 1000:26`,
        );
      }
      const from = m[1] === "*" ? "*" : parseId(m[1]!, whole);
      if (out.has(from)) {
        throw new RangeError(`id ${from} is mapped twice in the id map "${whole}": map it once`);
      }
      out.set(from, parseId(m[2]!, whole));
    }
  }
  return out;
}
