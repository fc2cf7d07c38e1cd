/**
 * Repository locations: a local path, `fs://<path>`, `s3://bucket/prefix?...`
 * or `staged:<dir>[,<dir>...]`.
 *
 * @module
 */

/** A parsed repository location. */
export type RepoUri =
  | { readonly scheme: "fs"; readonly path: string }
  | {
    readonly scheme: "s3";
    readonly bucket: string;
    readonly prefix: string;
    readonly options: Readonly<Record<string, string>>;
  }
  | { readonly scheme: "staged"; readonly dirs: readonly string[] };

/** Query options the S3 driver understands. */
export const S3_OPTIONS = [
  "region",
  "endpoint",
  "force_path_style",
  "storage_class",
  "profile",
  "timeout",
];

/**
 * Parses a repository location. Throws TypeError with a one-sentence
 * message on a malformed one.
 *
 * @example
 * ```ts
 * import { parseRepoUri } from "./uri.ts";
 * parseRepoUri("/backups/repo"); // { scheme: "fs", path: "/backups/repo" }
 * parseRepoUri("s3://bk/prod?region=eu-west-1"); // { scheme: "s3", bucket: "bk", prefix: "prod", ... }
 * ```
 */
export function parseRepoUri(s: string): RepoUri {
  if (s === "") throw new TypeError("empty repository location: give a directory path or a URI");
  if (s.startsWith("fs://")) {
    let path: string;
    try {
      path = decodeURIComponent(s.slice(5));
    } catch {
      throw new TypeError(
        `repository URI "${s}" has a malformed %-escape: write a literal % as %25`,
      );
    }
    if (path === "") throw new TypeError(`repository URI "${s}" has no path: use fs:///abs/path`);
    return { scheme: "fs", path };
  }
  if (s.startsWith("s3://")) {
    const rest = s.slice(5);
    const q = rest.indexOf("?");
    const [loc, query] = q >= 0 ? [rest.slice(0, q), rest.slice(q + 1)] : [rest, ""];
    const slash = loc.indexOf("/");
    const bucket = slash >= 0 ? loc.slice(0, slash) : loc;
    const prefix = slash >= 0 ? loc.slice(slash + 1).replace(/^\/+|\/+$/g, "") : "";
    if (!/^[a-z0-9][a-z0-9.\-_]{1,253}$/i.test(bucket)) {
      throw new TypeError(
        `"${bucket}" in "s3://${loc}" is not a valid bucket name: use s3://bucket/prefix`,
      );
    }
    const options: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(query)) {
      if (!S3_OPTIONS.includes(k)) {
        // Quote the location without the query: an unknown option may hold a secret.
        throw new TypeError(
          `unknown S3 option "${k}" in "s3://${loc}": use one of ${S3_OPTIONS.join(", ")}`,
        );
      }
      options[k] = v;
    }
    return { scheme: "s3", bucket, prefix, options };
  }
  if (s.startsWith("staged:")) {
    const dirs = s.slice(7).split(",").map((d) => d.trim()).filter((d) => d !== "");
    if (dirs.length === 0) {
      throw new TypeError(`"${s}" names no directory: use staged:/mnt/tape1,/mnt/tape2`);
    }
    return { scheme: "staged", dirs };
  }
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s);
  if (m) {
    throw new TypeError(
      `unsupported repository scheme "${m[1]}" in "${s}": use a path, fs://, s3:// or staged:`,
    );
  }
  return { scheme: "fs", path: s };
}

/** The location as a string with no secrets (query values other than region/endpoint dropped). */
export function describeRepoUri(u: RepoUri): string {
  switch (u.scheme) {
    case "fs":
      return u.path;
    case "s3":
      return `s3://${u.bucket}${u.prefix ? "/" + u.prefix : ""}`;
    case "staged":
      return `staged:${u.dirs.join(",")}`;
  }
}
