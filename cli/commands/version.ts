/**
 * `bendsave --version`
 *
 * @module
 */
import {
  ENCRYPTED_FORMAT_MINOR,
  ENCRYPTED_FORMAT_VERSION,
  FORMAT_MINOR,
  FORMAT_VERSION,
  NEWEST_READABLE_FORMAT,
  OLDEST_READABLE_FORMAT,
  TOOL_VERSION,
} from "../../formats/version.ts";

/** How this executable was built; replaced by the build scripts. */
export const BUILD_INFO: { how: string } = { how: "from source" };

/** The version text. */
export function versionText(): string {
  const runtime = "Deno" in globalThis && typeof Deno.version?.deno === "string"
    ? `deno ${Deno.version.deno}`
    : "unknown runtime";
  const bun = (globalThis as { Bun?: { version: string } }).Bun;
  return [
    `bendsave ${TOOL_VERSION}`,
    `repository format: writes ${FORMAT_VERSION}.${FORMAT_MINOR} (${ENCRYPTED_FORMAT_VERSION}.${ENCRYPTED_FORMAT_MINOR} encrypted), reads ${OLDEST_READABLE_FORMAT} to ${NEWEST_READABLE_FORMAT}`,
    `built: ${BUILD_INFO.how} (${bun ? `bun ${bun.version}` : runtime})`,
  ].join("\n");
}
