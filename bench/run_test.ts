import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { mergeRounds, parseBenchArgs } from "./run.ts";
import { renderMemoryTable, renderTable, type StepResult, type ToolResult } from "./report.ts";

Deno.test("parseBenchArgs applies defaults and skips a leading --", () => {
  const options = parseBenchArgs(["--", "--size-mb", "100", "--only", "borg,restic", "--keep"]);
  ok(options !== "help");
  strictEqual(options.sizeMb, 100);
  deepStrictEqual(options.only, ["restic", "borg"]);
  strictEqual(options.keep, true);
  strictEqual(options.seed, 1);
  strictEqual(options.out, undefined);
});

Deno.test("parseBenchArgs rejects unknown tools and flags", () => {
  throws(() => parseBenchArgs(["--only", "tar"]), TypeError);
  throws(() => parseBenchArgs(["--size-mb", "-3"]), TypeError);
  throws(() => parseBenchArgs(["--frobnicate"]));
  strictEqual(parseBenchArgs(["-h"]), "help");
});

Deno.test("renderTable shows ratios only for steps both tools finished", () => {
  const results: ToolResult[] = [
    {
      name: "bendsave",
      version: "0.1.0",
      steps: { first: { status: "ok", seconds: 2 }, verify: { status: "failed", seconds: 1 } },
      repoBytes: 100e6,
      notes: [],
    },
    {
      name: "restic",
      version: "0.14.0",
      steps: { first: { status: "ok", seconds: 8 }, verify: { status: "ok", seconds: 2 } },
      repoBytes: 200e6,
      notes: [],
    },
  ];
  const table = renderTable(results);
  ok(table.includes("| backup (first) | 2.00 | 8.00 | 0.25 |"), table);
  ok(table.includes("| verify, reading all data | FAILED | 2.00 | — |"), table);
  ok(table.includes("| repository size (MB) | 100.0 | 200.0 | 0.50 |"), table);
  ok(!renderTable(results.slice(1)).includes("÷"));
});

Deno.test("mergeRounds takes medians of successful rounds and keeps the first failure", () => {
  const round = (first: number, verify: StepResult, bytes: number): ToolResult[] => [{
    name: "restic",
    version: "0.14.0",
    steps: { first: { status: "ok", seconds: first, cpuSeconds: first * 2 }, verify },
    repoBytes: bytes,
    notes: ["n"],
  }];
  const merged = mergeRounds([
    round(3, { status: "ok", seconds: 1 }, 10),
    round(1, { status: "failed", seconds: 1, detail: "boom" }, 30),
    round(2, { status: "ok", seconds: 1, contended: "busy" }, 20),
  ]);
  const r = merged[0] as ToolResult;
  deepStrictEqual(r.steps.first, {
    status: "ok",
    seconds: 2,
    samples: [3, 1, 2],
    cpuSeconds: 4,
  });
  strictEqual(r.steps.verify?.status, "failed");
  strictEqual(r.steps.verify?.detail, "round 2 of 3: boom");
  strictEqual(r.repoBytes, 20);
  deepStrictEqual(r.notes, ["n"]);
  ok(renderTable(merged).includes("| backup (first) | 2.00 (1.00–3.00) |"));
});

Deno.test("mergeRounds takes the median peak RSS, and renderMemoryTable shows MB and bendsave÷peer", () => {
  const tool = (name: "bendsave" | "restic", kb: number, restoreKb?: number): ToolResult => ({
    name,
    version: "v",
    steps: {
      first: { status: "ok", seconds: 1, peakRssKb: kb },
      restore: restoreKb === undefined
        ? { status: "ok", seconds: 1 }
        : { status: "ok", seconds: 1, peakRssKb: restoreKb },
    },
    notes: [],
  });
  const merged = mergeRounds([
    [tool("bendsave", 400_000, 50_000), tool("restic", 100_000, 1)],
    [tool("bendsave", 200_000, 70_000), tool("restic", 140_000)],
    [tool("bendsave", 300_000, 60_000), tool("restic", 120_000, 3)],
  ]);
  strictEqual(merged[0]?.steps.first?.peakRssKb, 300_000);
  strictEqual(merged[1]?.steps.first?.peakRssKb, 120_000);
  strictEqual(merged[1]?.steps.restore?.peakRssKb, undefined, "a round without it: no median");
  const table = renderMemoryTable(merged);
  // 300,000 KiB = 307 MB, 120,000 KiB = 123 MB, ratio 2.50.
  ok(table.includes("| backup (first) | 307 | 123 | 2.50 |"), table);
  ok(table.includes("| restore latest into empty dir | 61 | — | — |"), table);
  ok(
    table.startsWith("| step | bendsave peak RSS (MB) | restic peak RSS (MB) | bendsave÷restic |"),
  );
});
