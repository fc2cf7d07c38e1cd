import { deepStrictEqual, notDeepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import {
  cell,
  fileContent,
  filePath,
  parseManyFilesArgs,
  parseTimeV,
  renderManyFiles,
} from "./many_files.ts";
import { Prng } from "./prng.ts";

Deno.test("parseManyFilesArgs applies defaults and rejects bad counts and tools", () => {
  const o = parseManyFilesArgs(["--", "--counts", "1000,100_000", "--only", "restic"]);
  ok(o !== "help");
  deepStrictEqual(o.counts, [1000, 100_000]);
  deepStrictEqual(o.only, ["restic"]);
  const both = parseManyFilesArgs(["--only", "restic,bendsave"]);
  ok(both !== "help");
  deepStrictEqual(both.only, ["restic", "bendsave"]); // the first round's order
  strictEqual(o.perDir, 1000);
  throws(() => parseManyFilesArgs(["--counts", "0"]), TypeError);
  throws(() => parseManyFilesArgs(["--only", "borg"]), TypeError);
  strictEqual(parseManyFilesArgs(["-h"]), "help");
});

Deno.test("filePath puts perDir files in each directory", () => {
  strictEqual(filePath(0, 1000), "d0000/f0000.txt");
  strictEqual(filePath(999, 1000), "d0000/f0999.txt");
  strictEqual(filePath(1000, 1000), "d0001/f0000.txt");
});

Deno.test("fileContent differs between files and stays small", () => {
  const rng = new Prng(1, "t");
  const a = fileContent(1, rng);
  const b = fileContent(2, rng);
  notDeepStrictEqual(a, b);
  ok(a.length >= 8 && a.length <= 2020);
});

Deno.test("parseTimeV reads peak RSS and CPU from time -v output", () => {
  const out = "x\n\tUser time (seconds): 1.50\n\tSystem time (seconds): 0.25\n" +
    "\tMaximum resident set size (kbytes): 123456\n";
  deepStrictEqual(parseTimeV(out), { maxRssKb: 123456, cpuSeconds: 1.75 });
  strictEqual(parseTimeV("no report"), null);
});

Deno.test("renderManyFiles shows medians with ranges and bendsave÷restic ratios", () => {
  const m = (seconds: number, mb: number) => ({ seconds, maxRssKb: mb * 1024, cpuSeconds: 0 });
  const text = renderManyFiles([
    {
      count: 1000,
      bytes: 1,
      tool: "bendsave",
      backup: [m(1, 100), m(3, 120)],
      restore: [m(2, 50)],
      repoBytes: [1e6],
    },
    {
      count: 1000,
      bytes: 1,
      tool: "restic",
      backup: [m(4, 200)],
      restore: [m(4, 100)],
      repoBytes: [2e6],
    },
  ]);
  ok(text.includes("| 2.0 (1.0–3.0) | 110 (100–120) |"), text);
  ok(text.includes("| 1,000 | 0.50 | 0.55 | 0.50 | 0.50 |"), text);
  strictEqual(cell([], 1), "—");
});
