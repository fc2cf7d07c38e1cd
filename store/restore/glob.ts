/**
 * `--include` patterns: the matcher lives in formats/glob.ts (shared with
 * backup's `--exclude`).
 *
 * @module
 */
export { globToRegExp, includeMatcher } from "../../formats/glob.ts";
