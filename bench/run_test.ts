import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { mergeRounds, parseBenchArgs } from "./run.ts";
import { renderTable, type StepResult, type ToolResult } from "./report.ts";

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
