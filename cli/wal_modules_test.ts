/**
 * The foregrounds PostgreSQL starts per WAL file load little: `wal-push
 * --async` and a `wal-fetch --prefetch` served from the spool import no
 * protobuf, no fflate and none of the repository code (the module graph
 * that `deno info` reports, following static imports only: the commands load
 * the rest with dynamic imports when they use it).
 *
 * @module
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url);

/** The modules `files` load through static imports. */
async function staticClosure(files: string[]): Promise<string[]> {
  const out = new Set<string>();
  for (const file of files) {
    const info = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", new URL(file, ROOT).pathname],
      stdout: "piped",
      stderr: "null",
    }).output();
    const graph = JSON.parse(new TextDecoder().decode(info.stdout));
    const modules = new Map<string, { dependencies?: unknown[] }>(
      graph.modules.map((m: { specifier: string }) => [m.specifier, m]),
    );
    const stack: string[] = [graph.roots[0]];
    while (stack.length > 0) {
      const s = stack.pop()!;
      if (out.has(s)) continue;
      out.add(s);
      for (
        const d of (modules.get(s)?.dependencies ?? []) as {
          code?: { specifier: string };
          isDynamic?: boolean;
        }[]
      ) {
        if (d.code && !d.isDynamic) stack.push(d.code.specifier);
      }
    }
  }
  return [...out].map((s) => s.replace(ROOT.href, ""));
}

const HEAVY =
  /protobufjs|fflate|^proto\/|store\/repository\.ts|store\/wal_archive\.ts|formats\/wal\.ts|pack/;

Deno.test("wal-push --async and a spooled wal-fetch --prefetch load no protobuf, fflate or repository code", async () => {
  for (
    const files of [
      ["cli/main.ts", "cli/commands/wal_push.ts", "store/wal_push_async.ts"],
      ["cli/main.ts", "cli/commands/wal_fetch.ts", "store/wal_prefetch.ts"],
    ]
  ) {
    const loaded = await staticClosure(files);
    assert.ok(loaded.includes("store/wal_spool.ts"), loaded.join(" "));
    assert.deepEqual(loaded.filter((m) => HEAVY.test(m)), [], `${files.join(", ")} load them`);
  }
});
