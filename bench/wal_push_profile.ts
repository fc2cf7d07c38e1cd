/**
 * Where the time of one `bendsave wal-push` (PostgreSQL's archive_command)
 * and one `wal-fetch` (restore_command) goes, measured from outside with the
 * CLI: a bare Deno start, the CLI entry (`--version`), the command's modules
 * (`wal-push --help`), a push into an empty repository, a push into a
 * repository holding a base backup of the pgbench database (its index is
 * loaded by every push), a push of a segment already archived (answered
 * without the index), and fetches. Segments are real: pgbench's WAL archived
 * by `cp`. See bench/pg_measure.ts for the comparison with pgBackRest.
 *
 * The asynchronous commands too: a `wal-push --async` answered from the
 * spool, one that starts the background pusher and waits for it, the
 * pusher's own rate over the segments marked ready (per segment, beside the
 * same segments pushed one process each), and `wal-fetch --prefetch`: the
 * first request (which starts the prefetcher) and later ones served from the
 * spool.
 *
 * Run: deno run -A bench/wal_push_profile.ts [--scale 70] [--segments 7] [--bin] [--encrypted]
 *
 * With `--bin`, the commands run the single executable `dist/bendsave`
 * (`./dev compile`) instead of `deno run` of cli/main.ts. With
 * `--encrypted`, every push, fetch and background pusher row is measured on
 * an encrypted repository too (`backup --encrypt`, the default Argon2id
 * cost, the passphrase from `--password-file`), each encrypted run right
 * after its plain one; the table then gives the median and min-max.
 *
 * @module
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { bendsaveCommand, pgInstalled, shellQuote, startPgCluster } from "../testing/pg_cluster.ts";
import { prepareBendsaveForPostgres } from "../testing/pg_cluster.ts";

const { values } = parseArgs({
  options: {
    scale: { type: "string" },
    segments: { type: "string" },
    bin: { type: "boolean" },
    encrypted: { type: "boolean" },
  },
});
const BIN = path.resolve(new URL("..", import.meta.url).pathname, "dist", "bendsave");
if (values.bin && !fs.existsSync(BIN)) {
  console.error(`--bin: ${BIN} does not exist; build it with ./dev compile`);
  Deno.exit(2);
}
const SCALE = Number(values.scale ?? 70);
const N = Number(values.segments ?? 7);

async function timed(line: string): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command("sh", { args: ["-c", line], stdout: "null", stderr: "piped" })
    .output();
  const s = (performance.now() - t0) / 1000;
  if (!out.success) throw new Error(`${line}: ${new TextDecoder().decode(out.stderr)}`);
  return s;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

if (!pgInstalled) {
  console.error("PostgreSQL 15 is not installed or this is not root");
  Deno.exit(2);
}
await prepareBendsaveForPostgres();
const bs = values.bin ? `NO_COLOR=1 ${shellQuote(BIN)}` : bendsaveCommand();
const bare = bendsaveCommand().replace(/ --config .*$/, "").replace(
  / run --allow-all --quiet$/,
  "",
);
const work = fs.mkdtempSync("/tmp/bendsave-walprof-");
const ENC = values.encrypted === true;
const passFile = path.join(work, "passphrase");
fs.writeFileSync(passFile, "wal push profile passphrase\n", { mode: 0o600 });
/** The option that makes a command find the encrypted repositories' passphrase. */
const pw = ` --password-file ${shellQuote(passFile)}`;
try {
  const repoEmpty = path.join(work, "repo-empty");
  const repoBase = path.join(work, "repo-base");
  let segments: string[] = [];
  let dataBytes = 0;
  {
    await using pg = await startPgCluster({ settings: { max_wal_size: "1GB" } });
    await pg.pgbench(["-i", "-s", String(SCALE), "-q"]);
    await pg.sql("CHECKPOINT");
    await pg.pgbench(["-n", "-c", "2", "-j", "2", "-t", String(Math.max(2000, SCALE * 150))]);
    await pg.sql("SELECT pg_switch_wal()");
    await new Promise((r) => setTimeout(r, 3000));
    await pg.stop();
    segments = fs.readdirSync(pg.walArchiveDir).filter((f) => /^[0-9A-F]{24}$/.test(f)).sort()
      .slice(-N - 1, -1).map((f) => path.join(work, f));
    for (const s of segments) fs.copyFileSync(path.join(pg.walArchiveDir, path.basename(s)), s);
    // A base backup's worth of index: the data directory backed up as a directory.
    dataBytes = Number(
      new TextDecoder().decode(
        (await new Deno.Command("du", { args: ["-sb", pg.dataDir], stdout: "piped" }).output())
          .stdout,
      ).split("\t")[0],
    );
    await timed(`${bs} backup --from ${shellQuote(pg.dataDir)} --to ${shellQuote(repoBase)}`);
    if (ENC) {
      await timed(
        `${bs} backup --from ${shellQuote(pg.dataDir)} --to ${
          shellQuote(`${repoBase}-enc`)
        } --encrypt${pw}`,
      );
    }
  }
  fs.mkdirSync(path.join(work, "empty"), { recursive: true });
  await timed(
    `${bs} backup --from ${shellQuote(path.join(work, "empty"))} --to ${shellQuote(repoEmpty)}`,
  );
  if (ENC) {
    await timed(
      `${bs} backup --from ${shellQuote(path.join(work, "empty"))} --to ${
        shellQuote(`${repoEmpty}-enc`)
      } --encrypt${pw}`,
    );
  }
  const rows: [string, number[]][] = [
    ["deno eval 0 (Deno alone)", []],
    ["bendsave --version (the CLI entry)", []],
    ["bendsave wal-push --help (+ the command's modules)", []],
    ["wal-push of a new segment into a repository with one tiny backup", []],
    ["wal-push of a new segment into a repository holding the base backup", []],
    ["wal-push of a segment already archived (no index load)", []],
    ["wal-fetch of an archived segment", []],
    ["wal-fetch of a missing file (recovery probes NNNNNNNN.history)", []],
    ["wal-push --async, its .ok in the spool", []],
    ["wal-push --async of a new segment, starting the pusher and waiting for it", []],
  ];
  const add = async (i: number, line: string) => rows[i]![1].push(await timed(line));
  // The encrypted rows: the same commands on the encrypted repositories, each run right after
  // the plain one (rows[i] -> encRows[i]).
  const encRows = new Map<number, [string, number[]]>();
  const addBoth = async (i: number, line: (enc: string, pass: string) => string) => {
    await add(i, line("", ""));
    if (!ENC) return;
    if (!encRows.has(i)) encRows.set(i, [`${rows[i]![0]}, encrypted`, []]);
    encRows.get(i)![1].push(await timed(line("-enc", pw)));
  };
  for (const [i, seg] of segments.entries()) {
    await add(0, `${bare} eval 0`);
    await add(1, `${bs} --version`);
    await add(2, `${bs} wal-push --help`);
    await addBoth(
      3,
      (e, p) => `${bs} wal-push ${shellQuote(seg)} --to ${shellQuote(repoEmpty + e)}${p}`,
    );
    await addBoth(
      4,
      (e, p) => `${bs} wal-push ${shellQuote(seg)} --to ${shellQuote(repoBase + e)}${p}`,
    );
    await addBoth(
      5,
      (e, p) => `${bs} wal-push ${shellQuote(seg)} --to ${shellQuote(repoBase + e)}${p}`,
    );
    await addBoth(
      6,
      (e, p) =>
        `${bs} wal-fetch ${path.basename(seg)} ${shellQuote(path.join(work, `f${i}${e}`))} --from ${
          shellQuote(repoBase + e)
        }${p}`,
    );
    await timed(`rm -f ${shellQuote(path.join(work, `f${i}`))}*`);
    await add(
      7,
      `${bs} wal-fetch 0000000${i + 2}.history ${shellQuote(path.join(work, `h${i}`))} --from ${
        shellQuote(repoBase)
      } || true`,
    );
  }
  // The asynchronous push: one request per segment, each starting a pusher (no
  // archive_status: nothing is pushed ahead), then the same segment answered from the spool.
  const repoAsync = path.join(work, "repo-async");
  fs.cpSync(repoEmpty, repoAsync, { recursive: true });
  const asyncWal = path.join(work, "async", "pg_wal");
  fs.mkdirSync(asyncWal, { recursive: true });
  for (const seg of segments) {
    const file = path.join(asyncWal, path.basename(seg));
    fs.copyFileSync(seg, file);
    const push = `${bs} wal-push ${shellQuote(file)} --to ${shellQuote(repoAsync)} --async`;
    await add(9, push);
    await add(8, push);
    // The pusher idles out after 5 s; wait for it, so each new segment starts one.
    for (
      let i = 0;
      i < 100 && fs.existsSync(path.join(asyncWal, "bendsave-push", "push.lock"));
      i++
    ) {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  // The pusher's own rate: every segment marked ready, pushed by one background run
  // (asked for the first, as a foreground would: it pushes ahead only while asked).
  const pusherRun = async (e: string, p: string) => {
    const repoQueue = path.join(work, `repo-queue${e}`);
    fs.cpSync(repoEmpty + e, repoQueue, { recursive: true });
    const queueWal = path.join(work, `queue${e}`, "pg_wal");
    fs.mkdirSync(path.join(queueWal, "archive_status"), { recursive: true });
    for (const seg of segments) {
      fs.copyFileSync(seg, path.join(queueWal, path.basename(seg)));
      fs.writeFileSync(path.join(queueWal, "archive_status", `${path.basename(seg)}.ready`), "");
    }
    fs.mkdirSync(path.join(queueWal, "bendsave-push"));
    fs.writeFileSync(
      path.join(queueWal, "bendsave-push", `${path.basename(segments[0]!)}.req`),
      JSON.stringify({
        file: path.join(queueWal, path.basename(segments[0]!)),
        repository: repoQueue,
      }),
    );
    return await timed(
      `${bs} wal-push --background --to ${shellQuote(repoQueue)} --spool ${
        shellQuote(path.join(queueWal, "bendsave-push"))
      } --wal-dir ${shellQuote(queueWal)} --idle 0${p}`,
    );
  };
  const pusherS = await pusherRun("", "");
  const pusherEncS = ENC ? await pusherRun("-enc", pw) : 0;
  // Prefetching fetches, as a server in recovery runs them (in its data directory).
  const recovering = path.join(work, "recovering");
  fs.mkdirSync(path.join(recovering, "pg_wal"), { recursive: true });
  const fetchLine = (seg: string) =>
    `cd ${shellQuote(recovering)} && ${bs} wal-fetch ${
      path.basename(seg)
    } pg_wal/RECOVERYXLOG --from ${shellQuote(repoBase)} --prefetch ${segments.length}`;
  const firstFetchS = await timed(fetchLine(segments[0]!));
  const spool = path.join(recovering, "pg_wal", "bendsave-prefetch");
  const last = path.basename(segments.at(-1)!);
  for (let i = 0; i < 600 && !fs.existsSync(path.join(spool, `${last}.meta`)); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const spooledFetches: number[] = [];
  for (const seg of segments.slice(1)) spooledFetches.push(await timed(fetchLine(seg)));
  rows.push(
    [`background pusher, per segment (${segments.length} marked ready, one run)`, [
      pusherS / segments.length,
    ]],
    ...(ENC
      ? [[
        `background pusher, per segment (${segments.length} marked ready, one run), encrypted`,
        [pusherEncS / segments.length],
      ] as [string, number[]]]
      : []),
    ["wal-fetch --prefetch, first request (starts the prefetcher)", [firstFetchS]],
    ["wal-fetch --prefetch, served from the spool", spooledFetches],
  );
  const indexFiles = fs.readdirSync(repoBase, { recursive: true }).filter((f) =>
    String(f).includes("index")
  ).length;
  console.log(
    `## bendsave wal-push and wal-fetch: where the time goes, ${new Date().toISOString()}`,
  );
  console.log("");
  console.log(
    `- command: \`deno run -A bench/wal_push_profile.ts --scale ${SCALE} --segments ${N}${
      values.bin ? " --bin" : ""
    }\` (bendsave: ${values.bin ? "dist/bendsave" : "deno run of cli/main.ts"}); ` +
      `${segments.length} pgbench WAL segments of 16 MiB; base backup of the data directory ` +
      `(${
        (dataBytes / 1e6).toFixed(0)
      } MB) as a directory backup; ${indexFiles} index entries in ` +
      `the repository at the end; wall seconds, median of ${segments.length}`,
  );
  console.log("");
  console.log("| what | seconds (median) | min-max |");
  console.log("| --- | ---: | ---: |");
  const line = ([label, xs]: [string, number[]]) =>
    console.log(
      `| ${label} | ${median(xs).toFixed(3)} | ${Math.min(...xs).toFixed(3)}-${
        Math.max(...xs).toFixed(3)
      } |`,
    );
  for (const [i, row] of rows.entries()) {
    line(row);
    const enc = encRows.get(i);
    if (enc) line(enc);
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
