/**
 * Format and tool versions. The repository format's major version is in the
 * repository config and in every manifest; a reader refuses a larger major
 * version and reads every older one.
 *
 * @module
 */

/** Major repository format version this code writes for unencrypted repositories. */
export const FORMAT_VERSION = 1;
/** Minor format version: additions an older reader of the same major may ignore. */
export const FORMAT_MINOR = 2;
/** Major format version of encrypted repositories (FORMAT.md section 21). */
export const ENCRYPTED_FORMAT_VERSION = 2;
/** Minor format version of encrypted repositories. */
export const ENCRYPTED_FORMAT_MINOR = 0;
/** Newest major format version this code reads. */
export const NEWEST_READABLE_FORMAT = 2;
/** Oldest major format version this code reads. */
export const OLDEST_READABLE_FORMAT = 1;
/** bendsave's own version. */
export const TOOL_VERSION = "0.1.0";
