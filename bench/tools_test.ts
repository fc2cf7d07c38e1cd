import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import {
  BendsaveTool,
  BorgTool,
  ENCRYPTED_BENCH_PASSPHRASE,
  readPeakRss,
  ResticTool,
  runTimed,
} from "./tools.ts";

const ctx = { stateDir: "/tmp/state", probeTimeoutMs: 10_000 };

Deno.test("runTimed reports a missing executable without throwing", async () => {
  const r = await runTimed({ cmd: "no-such-tool-bendsave-bench", args: [] }, 5_000);
  ok(!r.ok);
  strictEqual(r.code, null);
  ok(r.error?.includes("could not run"));
});

Deno.test("runTimed captures output and exit code", async () => {
  const r = await runTimed({ cmd: "sh", args: ["-c", "echo out; echo err >&2; exit 3"] }, 5_000);
  strictEqual(r.code, 3);
  strictEqual(r.stdout, "out\n");
  strictEqual(r.stderr, "err\n");
  ok(r.seconds > 0);
});

Deno.test("runTimed kills a command at its time limit", async () => {
  const r = await runTimed({ cmd: "sleep", args: ["10"] }, 300);
  ok(!r.ok);
  ok(r.timedOut);
  ok(r.seconds < 5);
});

Deno.test("BendsaveTool follows the CLI contract", () => {
  const tool = new BendsaveTool(ctx, "/opt/bendsave");
  deepStrictEqual(tool.backup("/r", "/s").args, ["backup", "--from", "/s", "--to", "/r"]);
  deepStrictEqual(tool.restore("/r", "/t").args, [
    "restore",
    "--from",
    "/r",
    "--to",
    "/t",
    "--confirm",
  ]);
  deepStrictEqual(tool.verify("/r")?.args, ["verify", "/r", "--read-data"]);
  deepStrictEqual(tool.list("/r").args, ["list", "/r", "--json"]);
  strictEqual(tool.init(), null);
  ok(tool.unsupported({
    ok: false,
    code: 2,
    seconds: 0,
    stdout: "",
    stderr: 'error: unknown command "verify"',
    timedOut: false,
  }));
});

Deno.test("BendsaveTool encrypted creates its repository with --encrypt and gives every command the passphrase", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const tool = new BendsaveTool(ctx, "/opt/bendsave", true);
    strictEqual(tool.name, "bendsave-enc");
    const first = tool.backup(`${dir}/repo`, "/s");
    deepStrictEqual(first.args, ["backup", "--from", "/s", "--to", `${dir}/repo`, "--encrypt"]);
    deepStrictEqual(first.env, { BENDSAVE_PASSWORD: ENCRYPTED_BENCH_PASSPHRASE });
    Deno.mkdirSync(`${dir}/repo`);
    Deno.writeTextFileSync(`${dir}/repo/config`, "{}");
    deepStrictEqual(tool.backup(`${dir}/repo`, "/s").args, [
      "backup",
      "--from",
      "/s",
      "--to",
      `${dir}/repo`,
    ]);
    deepStrictEqual(tool.restore(`${dir}/repo`, "/t").env, first.env);
    strictEqual(new BendsaveTool(ctx, "/opt/bendsave").backup("/r", "/s").env, undefined);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("peers back up the corpus from inside it", () => {
  const restic = new ResticTool(ctx).backup("/r", "/s");
  strictEqual(restic.cwd, "/s");
  strictEqual(restic.args.at(-1), ".");
  const borg = new BorgTool(ctx);
  deepStrictEqual(borg.backup("/r", "/s", "first").args.slice(-2), ["/r::first", "."]);
  strictEqual(borg.restore("/r", "/t", "first").cwd, "/t");
  strictEqual(borg.init("/r").env?.BORG_BASE_DIR, "/tmp/state/borg-base");
});

Deno.test("runTimed measures the CPU time of a command and its children", async () => {
  const r = await runTimed(
    { cmd: "sh", args: ["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done >&2"] },
    30_000,
    { measureCpu: true },
  );
  ok(r.ok);
  strictEqual(r.stderr, "done\n");
  ok(r.cpuSeconds !== undefined && r.cpuSeconds > 0.05, `cpu ${r.cpuSeconds}`);
  ok(r.cpuSeconds <= r.seconds * 2 + 0.05);
});

Deno.test("runTimed with CPU measurement keeps the exit code and kills on time-out", async () => {
  const failed = await runTimed({ cmd: "sh", args: ["-c", "exit 4"] }, 5_000, { measureCpu: true });
  strictEqual(failed.code, 4);
  const start = performance.now();
  const slow = await runTimed({ cmd: "sleep", args: ["20"] }, 300, { measureCpu: true });
  ok(!slow.ok && slow.timedOut);
  ok(performance.now() - start < 5_000);
});

const GNU_TIME = (() => {
  try {
    return Deno.statSync("/usr/bin/time").isFile;
  } catch {
    return false;
  }
})();

Deno.test("runTimed measures a command's peak RSS under /usr/bin/time, and none without it", async () => {
  // A Deno process that touches 150 MB: its peak RSS is above that, and far below 2 GB.
  const r = await runTimed(
    {
      cmd: Deno.execPath(),
      args: ["eval", "new Uint8Array(150e6).fill(1); console.error('filled')"],
    },
    60_000,
    { measureCpu: true },
  );
  ok(r.ok, r.stderr);
  strictEqual(r.stderr, "filled\n");
  if (GNU_TIME) {
    ok(r.peakRssKb !== undefined, "no peak RSS although /usr/bin/time exists");
    ok(r.peakRssKb * 1024 > 150e6 && r.peakRssKb * 1024 < 2e9, `peak ${r.peakRssKb} KiB`);
  } else {
    strictEqual(r.peakRssKb, undefined);
  }
  const left = [...Deno.readDirSync(Deno.env.get("TMPDIR") ?? "/tmp")]
    .filter((e) => e.name.startsWith("bench-rss-"));
  deepStrictEqual(left, [], "the RSS file is removed");
});

Deno.test("runTimed's time-out kills the command, not only GNU time", async () => {
  const marker = `${20 + Math.floor(Math.random() * 1000) / 1000}`;
  const start = performance.now();
  const slow = await runTimed({ cmd: "sleep", args: [marker] }, 300, { measureCpu: true });
  ok(!slow.ok && slow.timedOut);
  // A command left running keeps the output pipes open: runTimed would wait for it.
  ok(performance.now() - start < 5_000, `returned after ${performance.now() - start} ms`);
  await new Promise((r) => setTimeout(r, 200));
  const alive = [...Deno.readDirSync("/proc")].filter((e) => /^\d+$/.test(e.name)).some((e) => {
    try {
      return Deno.readTextFileSync(`/proc/${e.name}/cmdline`) === `sleep\0${marker}\0`;
    } catch {
      return false;
    }
  });
  strictEqual(alive, false, `sleep ${marker} still runs after the time-out`);
});

Deno.test("readPeakRss reads GNU time's last line and removes the file", () => {
  const ok1 = Deno.makeTempFileSync();
  Deno.writeTextFileSync(ok1, "Command exited with non-zero status 3\n123456\n");
  strictEqual(readPeakRss(ok1), 123456);
  let gone = false;
  try {
    Deno.statSync(ok1);
  } catch {
    gone = true;
  }
  ok(gone, "file removed");
  const bad = Deno.makeTempFileSync();
  Deno.writeTextFileSync(bad, "Command terminated by signal 15\n");
  strictEqual(readPeakRss(bad), undefined);
  strictEqual(readPeakRss(bad), undefined); // already removed: still no throw
});
