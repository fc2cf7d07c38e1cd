import { ok } from "node:assert/strict";
import { cpuDelta, readCpuTimes, waitForQuiet } from "./cpu.ts";

Deno.test("readCpuTimes counts up", async () => {
  const a = readCpuTimes();
  if (a === null) return; // not Linux
  await new Promise((r) => setTimeout(r, 50));
  const b = readCpuTimes();
  ok(b !== null);
  const d = cpuDelta(a, b);
  ok(d.busy >= 0 && d.idle >= 0 && d.steal >= 0);
});

Deno.test("waitForQuiet gives up after its deadline", async () => {
  const q = await waitForQuiet({ maxBusyCores: -1, maxWaitS: 0.1, sampleMs: 50 });
  ok(!q.quiet);
  ok(q.waitedS < 2);
});
