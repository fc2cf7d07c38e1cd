/**
 * `--include` patterns: `*` matches within one path segment, `**` across
 * segments, `?` one character. A pattern selects a path when it matches the
 * path itself or one of its parent directories.
 *
 * @module
 */

/** Compiles a glob to a RegExp over a relative `/`-separated path. */
export function globToRegExp(glob: string): RegExp {
  const g = glob.replace(/^\.?\/+/, "").replace(/\/+$/, "");
  if (g === "") {
    throw new TypeError(
      `include pattern "${glob}" is empty: give a path or a glob such as "etc/*.conf"`,
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

/** A matcher for several patterns; with none, everything matches. */
export function includeMatcher(globs: readonly string[]): (rel: string) => boolean {
  if (globs.length === 0) return () => true;
  const res = globs.map(globToRegExp);
  return (rel: string) => {
    let p = rel;
    for (;;) {
      if (res.some((r) => r.test(p))) return true;
      const slash = p.lastIndexOf("/");
      if (slash < 0) return false;
      p = p.slice(0, slash);
    }
  };
}
