/**
 * Path globs, for restore's `--include` and backup's `--exclude`: `*`
 * matches within one path segment, `**` across segments, `?` one character.
 * A pattern selects a path when it matches the path itself or one of its
 * parent directories. Paths are relative and `/`-separated.
 *
 * @module
 */

/**
 * Compiles a glob to a RegExp over a relative `/`-separated path. Throws
 * TypeError for an empty pattern; `option` names the option in that message.
 *
 * @example
 * ```ts
 * import { globToRegExp } from "./glob.ts";
 * globToRegExp("etc/*.conf").test("etc/a.conf"); // true
 * ```
 */
export function globToRegExp(glob: string, option = "include"): RegExp {
  const g = glob.replace(/^\.?\/+/, "").replace(/\/+$/, "");
  if (g === "") {
    throw new TypeError(
      `${option} pattern "${glob}" is empty: give a path or a glob such as "etc/*.conf"`,
    );
  }
  let re = "";
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === "*") {
      if (g[i + 1] === "*") {
        re += ".*";
        i++;
        if (g[i + 1] === "/") i++;
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/**
 * A matcher true when a pattern matches `rel` or one of its parent
 * directories. Patterns without `*` or `?` are looked up in a set, so that
 * thousands of exact paths (a PostgreSQL table restore's files) cost one
 * lookup per path and parent, not one test per pattern.
 */
function anyMatcher(globs: readonly string[], option: string): (rel: string) => boolean {
  const literal = new Set<string>();
  const res: RegExp[] = [];
  for (const g of globs) {
    const re = globToRegExp(g, option);
    if (/[*?]/.test(g)) res.push(re);
    else literal.add(g.replace(/^\.?\/+/, "").replace(/\/+$/, ""));
  }
  return (rel: string) => {
    let p = rel;
    for (;;) {
      if (literal.has(p) || res.some((r) => r.test(p))) return true;
      const slash = p.lastIndexOf("/");
      if (slash < 0) return false;
      p = p.slice(0, slash);
    }
  };
}

/**
 * A matcher for `--include` patterns; with none, everything matches.
 *
 * @example
 * ```ts
 * import { includeMatcher } from "./glob.ts";
 * const inc = includeMatcher(["docs"]);
 * inc("docs/readme.md"); // true
 * inc("src/main.ts"); // false
 * ```
 */
export function includeMatcher(globs: readonly string[]): (rel: string) => boolean {
  if (globs.length === 0) return () => true;
  return anyMatcher(globs, "include");
}

/**
 * A matcher for `--exclude` patterns (true: leave the path out); with none,
 * nothing is excluded.
 *
 * @example
 * ```ts
 * import { excludeMatcher } from "./glob.ts";
 * const exc = excludeMatcher(["*.log", "cache"]);
 * exc("app/x.log"); // false: * stays within one segment, and "app/x.log" has two
 * exc("x.log"); // true
 * exc("cache/a/b"); // true: below an excluded directory
 * ```
 */
export function excludeMatcher(globs: readonly string[]): (rel: string) => boolean {
  if (globs.length === 0) return () => false;
  return anyMatcher(globs, "exclude");
}
