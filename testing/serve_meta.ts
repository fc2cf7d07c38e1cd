/**
 * Serves a meta export over the meta service's gRPC export API on loopback,
 * for checks outside the test runner (the single-executable smoke test):
 * prints `127.0.0.1:<port>` on the first line, then serves until killed or
 * for at most `--seconds` (default 120).
 *
 * Run: deno run --allow-all testing/serve_meta.ts <export.jsonl> [--seconds N]
 *
 * @module
 */
import fs from "node:fs";
import { parseArgs } from "node:util";
import { startMetaService } from "./meta_service.ts";

const { values, positionals } = parseArgs({
  options: { seconds: { type: "string" } },
  allowPositionals: true,
});
const file = positionals[0];
if (!file) {
  console.error("usage: serve_meta.ts <export.jsonl> [--seconds N]");
  Deno.exit(2);
}
const lines = fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "");
const svc = await startMetaService({ lines, chunkSize: 5 });
console.log(svc.endpoint);
await new Promise((resolve) => setTimeout(resolve, Number(values.seconds ?? 120) * 1000));
await svc.close();
