/**
 * Restores the newest backup of a repository into the objects of an fs blob
 * store (`restoreToStore`, what a cluster restore into S3 does), for peak
 * memory and wall time under `/usr/bin/time -v`. `--checkout` names the
 * source tree whose mod.ts is used, so that two builds can be compared
 * round by round with one script.
 *
 * Run: /usr/bin/time -v deno run --allow-all bench/restore_store_measure.ts \
 *        --repo REPO --to EMPTY_DIR [--checkout TREE]
 *
 * @module
 */
import path from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    repo: { type: "string" },
    to: { type: "string" },
    checkout: { type: "string" },
  },
});
if (!values.repo || !values.to) {
  console.error("usage: restore_store_measure.ts --repo REPO --to EMPTY_DIR [--checkout TREE]");
  Deno.exit(2);
}
const tree = path.resolve(values.checkout ?? path.join(import.meta.dirname!, ".."));
const m: typeof import("../mod.ts") = await import(`file://${tree}/mod.ts`);
const store = await m.FsStore.open(path.resolve(values.repo));
const target = await m.FsStore.open(path.resolve(values.to), { create: true });
const r = await m.restoreToStore(store, target);
console.log(JSON.stringify({ objects: r.filesWritten, bytes: r.bytesWritten, ms: r.durationMs }));
